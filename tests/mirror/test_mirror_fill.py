"""fill_mirror with a fake snapshot_download: right folders, right revisions, skips, atomicity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror import MARKER_NAME, apply_mirror, fill_mirror, mirror_folder
from qzhou_eval.mirror.layout import read_marker
from qzhou_eval.mirror.provenance import data_provenance
from tests.mirror.repo_writer import write_retrieval_repo, write_sts_repo, write_task_repo

PAIRS = [("a cat", "a cat", 5.0), ("a dog", "a car", 1.0)]
RERANK = {
    "corpus": {"d1": "doc one", "d2": "doc two"},
    "queries": {"q1": "query one"},
    "qrels": {"q1": {"d1": 1}},
    "top_ranked": {"q1": ["d1", "d2"]},
}


class FakeHub:
    """Stands in for huggingface_hub.snapshot_download: writes a repo like the real one would."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        assert kwargs["repo_type"] == "dataset"
        folder = Path(kwargs["local_dir"])
        repo_id, revision = kwargs["repo_id"], kwargs["revision"]
        if repo_id.endswith("-sts") or repo_id.startswith("C-MTEB/"):
            style = "data-parquet" if repo_id.startswith("C-MTEB/") else "root-jsonl-gz"
            splits = ["train", "validation", "test"]
            write_sts_repo(folder, PAIRS, splits=splits, style=style, revision=revision)
        else:
            write_retrieval_repo(folder, split="test", **RERANK, revision=revision)
        if repo_id == self.fail_on:  # the connection drops after part of the files
            (folder / ".cache" / "huggingface" / "download" / "x.etag.incomplete").write_text("")
            raise ConnectionError("connection reset")
        return str(folder)


@pytest.fixture
def tasks(bench_task) -> list[Any]:
    return [
        bench_task("MTEB(eng, v2)", "STSBenchmark"),
        bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions"),
        bench_task("MTEB(cmn, v1)", "AFQMC"),
    ]


def test_fill_downloads_each_repo_at_its_pinned_revision(mirror: Path, tasks: list[Any]) -> None:
    hub = FakeHub()
    written = fill_mirror(tasks, mirror, snapshot_download=hub)

    repos = [(t.metadata.dataset["path"], t.metadata.dataset["revision"]) for t in tasks]
    assert [(c["repo_id"], c["revision"]) for c in hub.calls] == repos
    assert written == [mirror_folder(mirror, repo) for repo, _ in repos]
    for call, (repo, revision) in zip(hub.calls, repos, strict=True):
        assert call["repo_type"] == "dataset"
        # downloaded beside the mirror's folders, then moved into place
        assert Path(call["local_dir"]).parent == mirror / ".staging"
        assert not Path(call["local_dir"]).exists()
        marker = read_marker(mirror_folder(mirror, repo))
        assert marker is not None
        assert (marker["repo_id"], marker["revision"]) == (repo, revision)
        assert marker["files"]
    assert list((mirror / ".staging").iterdir()) == []
    apply_mirror(tasks, mirror, "fetch {task}")


def test_fill_skips_complete_repos_including_ones_filled_by_hand(
    mirror: Path, tasks: list[Any]
) -> None:
    sts, rerank, _ = tasks
    write_task_repo(mirror, sts, pairs=PAIRS)  # a plain snapshot_download: no marker
    assert not (mirror_folder(mirror, "mteb/stsbenchmark-sts") / MARKER_NAME).exists()
    hub, probes = FakeHub(), []
    assert fill_mirror(
        [sts, rerank], mirror, snapshot_download=hub, before_downloading=lambda: probes.append(1)
    ) == [mirror_folder(mirror, "mteb/AskUbuntuDupQuestions")]
    assert [c["repo_id"] for c in hub.calls] == ["mteb/AskUbuntuDupQuestions"] and probes == [1]

    again = FakeHub()
    assert (
        fill_mirror(
            [sts, rerank, sts],
            mirror,
            snapshot_download=again,
            before_downloading=lambda: probes.append(2),
        )
        == []
    )
    assert again.calls == [] and probes == [1]  # nothing to download: no probe


def test_fill_refetches_a_hand_filled_folder_that_lacks_a_needed_split(
    mirror: Path, tasks: list[Any]
) -> None:
    afqmc = tasks[2]  # reads the validation split
    folder = write_task_repo(mirror, afqmc, pairs=PAIRS, splits=["train", "test"])
    hub = FakeHub()
    assert fill_mirror([afqmc], mirror, snapshot_download=hub) == [folder]
    assert [c["repo_id"] for c in hub.calls] == ["C-MTEB/AFQMC"]
    apply_mirror([afqmc], mirror, "fetch {task}")


def test_fill_replaces_a_folder_of_another_revision(mirror: Path, tasks: list[Any]) -> None:
    sts = tasks[0]
    folder = mirror_folder(mirror, "mteb/stsbenchmark-sts")
    write_sts_repo(folder, PAIRS, revision="0" * 40)
    (folder / "stale-file.jsonl").write_text('{"x": 1}\n')

    assert fill_mirror([sts], mirror, snapshot_download=FakeHub()) == [folder]
    assert not (folder / "stale-file.jsonl").exists()
    assert read_marker(folder)["revision"] == sts.metadata.revision
    assert sorted(p.name for p in mirror.iterdir()) == [".staging", "mteb__stsbenchmark-sts"]


def test_interrupted_download_is_never_taken_for_complete(mirror: Path, tasks: list[Any]) -> None:
    sts, rerank, _ = tasks
    hub = FakeHub(fail_on="mteb/AskUbuntuDupQuestions")
    with pytest.raises(ConnectionError):
        fill_mirror([sts, rerank], mirror, snapshot_download=hub)

    assert not mirror_folder(mirror, "mteb/AskUbuntuDupQuestions").exists()
    with pytest.raises(MirrorError, match="AskUbuntuDupQuestions"):
        apply_mirror([sts, rerank], mirror, "fetch {task}")

    # the next run resumes in the same staging folder and finishes
    resumed = FakeHub()
    assert fill_mirror([sts, rerank], mirror, snapshot_download=resumed) == [
        mirror_folder(mirror, "mteb/AskUbuntuDupQuestions")
    ]
    assert resumed.calls[0]["local_dir"] == hub.calls[-1]["local_dir"]
    apply_mirror([sts, rerank], mirror, "fetch {task}")


def test_download_without_data_is_an_error(mirror: Path, tasks: list[Any]) -> None:
    def empty_repo(**kwargs: Any) -> str:
        Path(kwargs["local_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(kwargs["local_dir"]) / "README.md").write_text("# nothing\n")
        return kwargs["local_dir"]

    with pytest.raises(MirrorError, match="holds no data files"):
        fill_mirror(tasks[:1], mirror, snapshot_download=empty_repo)
    assert not mirror_folder(mirror, "mteb/stsbenchmark-sts").exists()


def test_fill_refetches_a_folder_whose_file_differs_from_its_download(
    mirror: Path, tasks: list[Any]
) -> None:
    """A file damaged or edited since its download (the hash snapshot_download recorded for it
    differs) is fetched again, so the run's "fetch the repo again" line works (a helper's trial:
    "already complete 1" over a truncated file); so is a folder without that record, or with a
    file it has none of, which a run files as not shown to be the pinned revision (a trial:
    "already complete 1", then the run filed its tasks as other data's)."""
    sts = tasks[0]
    folder = write_task_repo(mirror, sts, pairs=PAIRS)
    (data,) = [p for p in folder.rglob("*.jsonl.gz") if ".cache" not in p.parts]
    data.write_bytes(data.read_bytes()[:40])  # cut short
    hub = FakeHub()
    assert fill_mirror([sts], mirror, snapshot_download=hub) == [folder]
    assert [c["repo_id"] for c in hub.calls] == ["mteb/stsbenchmark-sts"]
    assert fill_mirror([sts], mirror, snapshot_download=FakeHub()) == []  # whole again
    hand = write_task_repo(mirror / "hand", sts, pairs=PAIRS, snapshot_metadata=False)
    assert not data_provenance(sts, mirror / "hand")["matches_revision"]
    assert fill_mirror([sts], mirror / "hand", snapshot_download=FakeHub()) == [hand]
    assert data_provenance(sts, mirror / "hand")["matches_revision"]
    left = folder / "data" / "test-old.jsonl.gz"  # a file left behind in a copy
    left.parent.mkdir(exist_ok=True)
    left.write_bytes(data.read_bytes())
    assert not data_provenance(sts, mirror)["matches_revision"]
    assert fill_mirror([sts], mirror, snapshot_download=FakeHub()) == [folder]
    assert not left.exists() and data_provenance(sts, mirror)["matches_revision"]
    assert fill_mirror([sts], mirror, snapshot_download=FakeHub()) == []

"""apply_mirror: all-or-nothing checks, one-line errors, metadata isolation, offline loading."""

from __future__ import annotations

from pathlib import Path

import datasets
import mteb
import pytest

from qzhou_eval.errors import MirrorError, UserError
from qzhou_eval.mirror import apply_mirror, mirror_folder
from qzhou_eval.mirror.datasets_cache import content_link
from tests.mirror.repo_writer import write_retrieval_repo, write_task_repo

HINT = "python -m qzhou_eval.mirror benchmark=mteb_eng_v2 data.mirror=/m 'benchmark.tasks=[{task}]'"
PAIRS = [("a cat", "a cat", 5.0), ("a dog", "a car", 1.0)]
RETRIEVAL = {
    "corpus": {"d1": "doc one", "d2": ("Title two", "doc two")},
    "queries": {"q1": "query one"},
    "qrels": {"q1": {"d1": 1}},
}


def reads(task: object) -> Path:
    """The folder ``datasets`` reads for ``task`` (its path is a link to it)."""
    return Path(task.metadata.dataset["path"]).resolve()  # type: ignore[attr-defined]


def _refuse_loading(monkeypatch: pytest.MonkeyPatch, *tasks: object) -> None:
    for task in tasks:

        def load_data(*args: object, **kwargs: object) -> None:
            raise AssertionError("apply_mirror must not load data")

        monkeypatch.setattr(task, "load_data", load_data)


def test_missing_dataset_is_one_line_naming_task_repo_and_command(
    mirror: Path, bench_task, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = bench_task("MTEB(eng, v2)", "STSBenchmark")
    scidocs = bench_task("MTEB(eng, v2)", "SCIDOCS")
    write_task_repo(mirror, sts, pairs=PAIRS)
    _refuse_loading(monkeypatch, sts, scidocs)

    with pytest.raises(MirrorError) as caught:
        apply_mirror([sts, scidocs], mirror, HINT)

    message = str(caught.value)
    assert "\n" not in message
    assert "task SCIDOCS" in message
    assert "mteb/scidocs" in message
    assert str(mirror_folder(mirror, "mteb/scidocs")) in message
    assert message.endswith(
        "fetch it with: python -m qzhou_eval.mirror benchmark=mteb_eng_v2 data.mirror=/m "
        "'benchmark.tasks=[SCIDOCS]'"
    )
    assert isinstance(caught.value, UserError)
    # all or nothing: the task whose data is there was not switched either
    assert sts.metadata.dataset["path"] == "mteb/stsbenchmark-sts"
    assert not sts.data_loaded and not scidocs.data_loaded


def test_a_mirror_named_by_one_of_its_repos_folders_says_so(mirror: Path, bench_task) -> None:
    """data.mirror=<mirror>/<org>__<name> (a helper's trial: the line said to fetch into it,
    which would nest repos inside a repo)."""
    sts = bench_task("MTEB(eng, v2)", "STSBenchmark")
    for metadata in (True, False):  # (by its download's records, or by its name)
        folder = write_task_repo(
            mirror / str(metadata), sts, pairs=PAIRS, snapshot_metadata=metadata
        )
        with pytest.raises(MirrorError) as caught:
            apply_mirror([sts], folder, HINT)
        assert str(caught.value).endswith(
            "data.mirror names a repo's own folder: name the folder that holds the repos' "
            f"folders (<org>__<name>/), e.g. data.mirror={(mirror / str(metadata)).resolve()}"
        )


def test_several_missing_datasets_one_command_fetches_them_all(mirror: Path, bench_task) -> None:
    tasks = [bench_task("MTEB(cmn, v1)", n) for n in ("AFQMC", "LCQMC", "T2Reranking")]
    with pytest.raises(MirrorError) as caught:
        apply_mirror(tasks, mirror, "fetch tasks={task}")
    message = str(caught.value)
    assert "\n" not in message
    assert "task AFQMC" in message and "C-MTEB/AFQMC" in message
    assert "and 2 more task(s): LCQMC, T2Reranking" in message
    assert message.endswith("fetch it with: fetch tasks=AFQMC,LCQMC,T2Reranking")


def test_incomplete_dataset_says_why(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    folder = write_task_repo(mirror, task, **RETRIEVAL, top_ranked={"q1": ["d1", "d2"]})
    for file in (folder / "top_ranked").iterdir():
        file.unlink()
    with pytest.raises(MirrorError, match=r"lacks the files of config 'top_ranked'"):
        apply_mirror([task], mirror, HINT)


def test_missing_split_file_is_reported(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(cmn, v1)", "AFQMC")  # the benchmark evaluates its validation split
    write_task_repo(mirror, task, pairs=PAIRS, splits=["train", "test"])
    with pytest.raises(MirrorError, match=r"lacks the files of split 'validation'"):
        apply_mirror([task], mirror, HINT)


def test_metadata_of_other_instances_and_the_class_is_untouched(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    write_task_repo(mirror, task, pairs=PAIRS)
    cls_metadata = type(task).metadata
    cls_dataset = dict(cls_metadata.dataset)

    apply_mirror([task], mirror, HINT)

    assert task.metadata.dataset == {
        "path": str(content_link(mirror / "mteb__stsbenchmark-sts")),
        "revision": cls_dataset["revision"],
    }
    assert reads(task) == mirror / "mteb__stsbenchmark-sts"
    assert "metadata" in vars(task)  # an instance attribute shadows the class's
    assert type(task).metadata is cls_metadata
    assert cls_metadata.dataset == cls_dataset
    assert mteb.get_task("STSBenchmark").metadata.dataset == cls_dataset
    for other in mteb.get_benchmark("MTEB(eng, v2)").tasks:  # the shared benchmark objects
        assert not other.metadata.dataset["path"].startswith(str(mirror))
    # everything but the path is the same metadata
    assert task.metadata.model_dump(exclude={"dataset"}) == cls_metadata.model_dump(
        exclude={"dataset"}
    )


def test_apply_is_idempotent_and_can_move_to_another_mirror(tmp_path: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    first, second = tmp_path / "m1", tmp_path / "m2"
    write_task_repo(first, task, pairs=PAIRS)
    write_task_repo(second, task, pairs=PAIRS)
    apply_mirror([task], first, HINT)
    apply_mirror([task], first, HINT)
    assert reads(task) == first / "mteb__stsbenchmark-sts"
    apply_mirror([task], second, HINT)
    assert reads(task) == second / "mteb__stsbenchmark-sts"


def test_relative_mirror_dir_becomes_an_absolute_path(
    tmp_path: Path, bench_task, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a relative "m/mteb__x" would look like a Hub repo id to datasets if the folder were absent
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    write_task_repo(tmp_path / "m", task, pairs=PAIRS)
    monkeypatch.chdir(tmp_path)
    apply_mirror([task], "m", HINT)
    assert Path(task.metadata.dataset["path"]).is_absolute()
    assert reads(task) == tmp_path / "m" / "mteb__stsbenchmark-sts"


def test_aggregate_task_gets_mirrored_copies_of_its_sub_tasks(mirror: Path) -> None:
    task = mteb.get_task("CQADupstackRetrieval")
    originals = list(task.metadata.tasks)
    for sub in originals:
        write_task_repo(mirror, sub, **RETRIEVAL)

    apply_mirror([task], mirror, HINT)

    subs = task.metadata.tasks
    assert [s.metadata.name for s in subs] == [s.metadata.name for s in originals]
    for sub, original in zip(subs, originals, strict=True):
        assert sub is not original
        repo_id = original.metadata.dataset["path"]
        assert repo_id.lower().startswith("mteb/cqadupstack")  # the shared original: untouched
        assert reads(sub) == mirror_folder(mirror, repo_id)
    assert type(task).metadata.tasks == originals
    assert task.tasks == subs


def test_datasets_ignores_the_revision_of_a_local_folder(mirror: Path, no_network) -> None:
    """What mteb's loaders call, on a mirror folder, with the pinned (or any) revision."""
    folder = write_retrieval_repo(
        mirror / "mteb__T2Reranking", split="dev", **RETRIEVAL, top_ranked={"q1": ["d1"]}
    )
    for revision in ("a34fe6bc0dff185af1228e49a0f6fb1de1565627", "no-such-revision"):
        path = str(folder)
        names = datasets.get_dataset_config_names(path, revision=revision)
        assert sorted(names) == ["corpus", "default", "queries", "top_ranked"]
        assert datasets.get_dataset_split_names(path, revision=revision, config_name="corpus") == [
            "dev"
        ]
        top = datasets.load_dataset(path, "top_ranked", split="dev", revision=revision)
        assert top["corpus-ids"] == [["d1"]]
    assert no_network == []


def test_tasks_built_locally_need_no_mirror(mirror: Path, bench_task) -> None:
    # a job script that sets data.mirror for every benchmark also runs the demo suites
    from qzhou_eval.demo.eng import DemoEngRetrieval, DemoEngSTS

    demo = [DemoEngRetrieval(), DemoEngSTS()]
    before = [t.metadata.dataset for t in demo]
    apply_mirror(demo, mirror, HINT)  # the mirror holds none of them
    assert [t.metadata.dataset for t in demo] == before
    sts = bench_task("MTEB(eng, v2)", "STSBenchmark")
    with pytest.raises(MirrorError, match="task STSBenchmark"):  # a Hub task beside them still
        apply_mirror([*demo, sts], mirror, HINT)


def test_a_datasets_cache_that_cannot_take_the_link_is_one_line_naming_it(
    mirror: Path, bench_task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    write_task_repo(mirror, task, pairs=PAIRS)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", blocker / "cache")
    with pytest.raises(MirrorError) as caught:
        apply_mirror([task], mirror, HINT)
    message = str(caught.value)
    assert "\n" not in message
    assert f"datasets' cache folder {blocker / 'cache'} (HF_DATASETS_CACHE)" in message
    assert "set HF_DATASETS_CACHE (or HF_HOME) to a writable folder" in message
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_the_link_follows_the_content_and_is_shared_by_equal_content(
    tmp_path: Path, bench_task
) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    first = write_task_repo(tmp_path / "m1", task, pairs=PAIRS)
    second = write_task_repo(tmp_path / "m2", task, pairs=PAIRS)
    link = content_link(first)
    assert link.is_symlink() and link.resolve() == first
    assert link.name.startswith("mteb__stsbenchmark-sts-")
    assert content_link(second) == link and link.resolve() == second  # same tables serve
    write_task_repo(tmp_path / "m2", task, pairs=[*PAIRS, ("a bird", "a plane", 2.0)])
    assert content_link(second) != link

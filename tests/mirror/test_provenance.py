"""Where a task's data came from: the Hub, a demo suite, or a mirror whose content is (or is not)
the pinned revision."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import mteb
import pytest

from qzhou_eval.demo import get_demo_tasks
from qzhou_eval.mirror.provenance import data_identity, data_provenance, describe
from tests.mirror.repo_writer import write_table, write_task_repo

PAIRS = [("a man plays", "a man is playing", 4.0), ("cats", "stocks fell", 0.0)]


@pytest.fixture(scope="module")
def sts():
    tasks = mteb.get_benchmark("MTEB(eng, v2)").tasks
    return copy.copy(next(t for t in tasks if t.metadata.name == "STSBenchmark"))


def test_a_snapshot_of_the_pinned_revision_matches_it(tmp_path, sts):
    folder = write_task_repo(tmp_path, sts, pairs=PAIRS)
    prov = data_provenance(sts, tmp_path)
    assert prov["source"] == "mirror" and prov["matches_revision"] is True
    assert prov["mirror"] == str(tmp_path.resolve()) and prov["folder"] == str(folder.resolve())
    assert prov["repo"] == "mteb/stsbenchmark-sts" and len(prov["sha256"]) == 64
    assert data_identity(prov) is None  # the pinned data: the official identity
    assert describe(prov) == f"mirror {tmp_path.resolve()}, files match the pinned revision"


def test_a_mirror_with_other_rows_is_another_identity(tmp_path, sts):
    write_task_repo(tmp_path, sts, pairs=PAIRS)
    before = data_provenance(sts, tmp_path)
    folder = Path(before["folder"])
    # other rows, the download metadata of the pinned revision left as it was
    (test_file,) = folder.glob("test.jsonl.gz")
    write_table(test_file, [{"sentence1": "x", "sentence2": "y", "score": 1.0}])
    after = data_provenance(sts, tmp_path)
    assert after["matches_revision"] is False and after["sha256"] != before["sha256"]
    assert data_identity(after) == f"sha256:{after['sha256']}"
    assert "NOT shown to be the pinned revision" in describe(after)


def test_a_copy_that_lacks_a_file_its_download_recorded_is_not_shown_to_match(tmp_path, sts):
    """A partial copy (one of a split's files left behind: a helper's trial scored 89.47 against
    98.21 and filed it as the pinned data's); the fill fetches such a repo again."""
    from qzhou_eval.mirror.provenance import matches_revision

    folder = write_task_repo(tmp_path, sts, pairs=PAIRS)
    (folder / "extra.jsonl.gz").write_bytes((folder / "test.jsonl.gz").read_bytes())
    write_task_repo(tmp_path, sts, pairs=PAIRS)  # (its metadata now records extra.jsonl.gz too)
    assert data_provenance(sts, tmp_path)["matches_revision"] is True
    (folder / "extra.jsonl.gz").unlink()
    prov = data_provenance(sts, tmp_path)
    assert prov["matches_revision"] is False and data_identity(prov) is not None
    assert not matches_revision(folder, sts.metadata.dataset["revision"])  # (the fill's rule)


def test_files_copied_without_download_metadata_are_not_shown_to_match(tmp_path, sts):
    write_task_repo(tmp_path, sts, pairs=PAIRS, snapshot_metadata=False)
    prov = data_provenance(sts, tmp_path)
    assert prov["matches_revision"] is False and data_identity(prov) is not None


def test_a_non_lfs_file_matches_by_its_git_blob_id(tmp_path, sts):
    folder = write_task_repo(tmp_path, sts, pairs=PAIRS)
    readme = folder / "README.md"
    readme.write_text("# a small file git stores itself\n")
    blob = hashlib.sha1(b"blob %d\0" % readme.stat().st_size + readme.read_bytes()).hexdigest()
    meta = folder / ".cache" / "huggingface" / "download" / "README.md.metadata"
    revision = sts.metadata.dataset["revision"]
    meta.write_text(f"{revision}\n{blob}\n1712656091.1\n")
    assert data_provenance(sts, tmp_path)["matches_revision"] is True
    meta.write_text(f"{'0' * 40}\n{blob}\n1712656091.1\n")  # recorded for another revision
    assert data_provenance(sts, tmp_path)["matches_revision"] is False


def test_hub_and_demo_data(sts):
    hub = data_provenance(sts, None)
    assert hub == {
        "source": "hub",
        "repo": "mteb/stsbenchmark-sts",
        "revision": sts.metadata.dataset["revision"],
    }
    demo = data_provenance(get_demo_tasks("demo_eng")[0], None)
    assert demo["source"] == "demo" and demo["revision"].startswith("demo-")
    assert data_identity(hub) is None and data_identity(demo) is None

"""When a mirror folder counts as a complete copy of its repo at the pinned revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror import MARKER_NAME, apply_mirror, repo_problem
from qzhou_eval.mirror.layout import write_marker
from qzhou_eval.mirror.repos import reads_lang_column, required_configs
from tests.mirror.repo_writer import write_retrieval_repo, write_sts_repo, write_table

REV = "b0fddb56ed78048fa8b90373c8a3cfc37b684831"
OTHER = "0" * 40
PAIRS = [("a", "b", 1.0), ("c", "d", 2.0)]


def _reranking_repo(folder: Path, revision: str | None = REV) -> Path:
    return write_retrieval_repo(
        folder,
        split="test",
        corpus={"d1": "x", "d2": "y"},
        queries={"q1": "z"},
        qrels={"q1": {"d1": 1}},
        top_ranked={"q1": ["d1", "d2"]},
        revision=revision,
    )


def test_complete_snapshot_without_marker_is_accepted(tmp_path: Path) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, splits=["train", "test"], revision=REV)
    assert not (folder / MARKER_NAME).exists()
    assert repo_problem(folder, REV) is None


def test_files_copied_by_hand_without_any_revision_record_are_accepted(tmp_path: Path) -> None:
    folder = _reranking_repo(tmp_path / "r", revision=None)
    assert repo_problem(folder, REV) is None


@pytest.mark.parametrize("style", ["root-jsonl-gz", "data-parquet"])
def test_split_file_layouts_are_accepted(tmp_path: Path, style: str) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, style=style, revision=REV)  # type: ignore[arg-type]
    assert repo_problem(folder, REV) is None


def test_missing_folder(tmp_path: Path) -> None:
    assert repo_problem(tmp_path / "nope", REV) == "does not exist"


def test_folder_without_data_files(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    (folder / ".cache" / "huggingface" / "download").mkdir(parents=True)
    (folder / "README.md").write_text("# empty\n")
    (folder / ".cache" / "huggingface" / "download" / "x.parquet").write_text("hidden")
    assert repo_problem(folder, REV) == "holds no data files"


def test_config_declared_in_readme_but_absent(tmp_path: Path) -> None:
    folder = _reranking_repo(tmp_path / "r")
    for file in (folder / "top_ranked").iterdir():
        file.unlink()
    problem = repo_problem(folder, REV)
    assert problem is not None
    assert "top_ranked" in problem


def test_a_readme_whose_yaml_does_not_parse(tmp_path: Path) -> None:
    # datasets reads the configs from it: the run would fail later on an unnamed YAML error
    folder = _reranking_repo(tmp_path / "r")
    (folder / "README.md").write_text("---\nconfigs: [\n---\n# card\n")
    assert repo_problem(folder, REV) == (
        "has a README.md whose YAML front matter does not parse (line 2)"
    )


def test_interrupted_snapshot_download(tmp_path: Path) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, revision=REV)
    partial = folder / ".cache" / "huggingface" / "download" / "Zm9v.abc123.incomplete"
    partial.write_bytes(b"half a file")
    assert "interrupted download" in (repo_problem(folder, REV) or "")


def test_git_lfs_pointer_instead_of_data(tmp_path: Path) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, revision=None)
    (folder / "test.jsonl.gz").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 63200\n"
    )
    assert "git-lfs pointer" in (repo_problem(folder, REV) or "")


def test_snapshot_of_another_revision(tmp_path: Path) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, revision=OTHER)
    assert repo_problem(folder, REV) == f"holds revision {OTHER} but the task pins {REV}"


def test_marker_of_another_revision(tmp_path: Path) -> None:
    folder = write_sts_repo(tmp_path / "r", PAIRS, revision=None)
    write_marker(folder, "mteb/stsbenchmark-sts", OTHER)
    assert repo_problem(folder, REV) == f"holds revision {OTHER} but the task pins {REV}"


def test_marker_lists_a_file_that_is_gone(tmp_path: Path) -> None:
    folder = _reranking_repo(tmp_path / "r")
    write_marker(folder, "mteb/AskUbuntuDupQuestions", REV)
    assert repo_problem(folder, REV) is None
    (folder / "queries" / "test-00000-of-00001.parquet").unlink()
    assert "its marker lists" in (repo_problem(folder, REV) or "")


# ---- what each task type loads ------------------------------------------------------------


def _beir_archive(folder: Path) -> Path:
    """How a BEIR zip unpacks: corpus.jsonl, queries.jsonl, qrels/test.tsv, no README configs."""
    write_table(folder / "corpus.jsonl", [{"_id": "d1", "title": "", "text": "x"}])
    write_table(folder / "queries.jsonl", [{"_id": "q1", "text": "z"}])
    write_table(folder / "qrels" / "test.tsv", [{"query-id": "q1", "corpus-id": "d1", "score": 1}])
    return folder


def test_a_beir_archive_is_refused_for_a_retrieval_task(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "SCIDOCS")
    assert required_configs(task) == (("corpus",), ("queries", "query"), ("default", "qrels"))
    _beir_archive(mirror / "mteb__scidocs")
    with pytest.raises(MirrorError) as info:
        apply_mirror([task], mirror, "fetch {task}")
    message = str(info.value)
    assert "task SCIDOCS: repo mteb/scidocs@" in message and "\n" not in message
    assert "declares no configs" in message and "'corpus'" in message and "BEIR" in message


def test_a_reranking_task_needs_its_candidate_lists(bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "AskUbuntuDupQuestions")
    assert ("top_ranked",) in required_configs(task)


def test_a_task_split_by_lang_needs_the_column(tmp_path: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "STS17")  # fast_loading: the default config, by 'lang'
    assert required_configs(task) == (("default",),) and reads_lang_column(task)
    folder = write_sts_repo(tmp_path / "r", PAIRS, splits=["test"], revision=REV)
    problem = repo_problem(folder, REV, configs=required_configs(task), lang_column=True)
    assert problem is not None and "no 'lang' column in test.jsonl.gz" in problem
    rows = [{"sentence1": a, "sentence2": b, "score": s, "lang": "en-en"} for a, b, s in PAIRS]
    write_table(folder / "test.jsonl.gz", rows)
    assert repo_problem(folder, REV, configs=required_configs(task), lang_column=True) is None


def test_a_task_read_per_subset_needs_a_config_per_subset(tmp_path: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "MTOPDomainClassification")  # one config per language
    assert required_configs(task) == (("en",),) and not reads_lang_column(task)
    folder = write_sts_repo(tmp_path / "r", PAIRS, splits=["test"])  # files, no configs
    problem = repo_problem(folder, REV, configs=required_configs(task))
    assert problem is not None and "the task loads 'en' as configs" in problem

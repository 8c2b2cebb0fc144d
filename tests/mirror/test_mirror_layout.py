"""Mirror folder naming and which repos a task reads."""

from __future__ import annotations

from pathlib import Path

import mteb
import pytest

from qzhou_eval.errors import MirrorError
from qzhou_eval.mirror import apply_mirror, mirror_folder, task_repos
from qzhou_eval.mirror.repos import required_splits
from tests.mirror.repo_writer import write_task_repo

BENCHMARKS = ("MTEB(eng, v2)", "MTEB(cmn, v1)")


def test_mirror_folder_maps_org_and_name() -> None:
    assert mirror_folder(Path("/m"), "mteb/scidocs") == Path("/m/mteb__scidocs")
    assert mirror_folder("/m", "C-MTEB/AFQMC") == Path("/m/C-MTEB__AFQMC")


@pytest.mark.parametrize("bad", ["scidocs", "a/b/c", "/abs/path", "./rel/x", "org/", "/name"])
def test_mirror_folder_rejects_what_is_not_a_repo_id(bad: str) -> None:
    with pytest.raises(MirrorError):
        mirror_folder(Path("/m"), bad)


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_every_benchmark_task_reads_exactly_its_metadata_repo(benchmark: str) -> None:
    for task in mteb.get_benchmark(benchmark).tasks:
        assert not task.is_aggregate
        dataset = task.metadata.dataset
        assert task_repos(task) == [(dataset["path"], dataset["revision"])]
        assert set(dataset) == {"path", "revision"}, task.metadata.name


def test_aggregate_task_reads_its_sub_tasks_repos() -> None:
    task = mteb.get_task("CQADupstackRetrieval")
    expected = [(s.metadata.dataset["path"], s.metadata.revision) for s in task.metadata.tasks]
    assert task_repos(task) == expected
    assert len(expected) == 12


def test_task_repos_still_names_the_hub_repo_once_mirrored(mirror: Path, bench_task) -> None:
    task = bench_task("MTEB(eng, v2)", "STSBenchmark")
    write_task_repo(mirror, task, pairs=[("a", "b", 1.0), ("c", "d", 2.0)])
    apply_mirror([task], mirror, "fetch {task}")
    assert Path(task.metadata.dataset["path"]).resolve() == mirror / "mteb__stsbenchmark-sts"
    assert task_repos(task) == [("mteb/stsbenchmark-sts", task.metadata.revision)]


def test_required_splits_add_the_train_split_of_classification(bench_task) -> None:
    assert required_splits(bench_task("MTEB(eng, v2)", "STSBenchmark")) == ("test",)
    assert required_splits(bench_task("MTEB(cmn, v1)", "AFQMC")) == ("validation",)
    assert required_splits(bench_task("MTEB(cmn, v1)", "TNews")) == ("validation", "train")
    assert required_splits(bench_task("MTEB(cmn, v1)", "T2Reranking")) == ("dev",)

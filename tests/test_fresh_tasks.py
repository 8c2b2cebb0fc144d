"""Task copies that score as fresh task objects (qzhou_eval.fresh_tasks)."""

from __future__ import annotations

import mteb
import pytest

from qzhou_eval.benchmarks import filtered_tasks
from qzhou_eval.demo import get_demo_tasks
from qzhou_eval.fresh_tasks import evaluation_copy, fresh_copy, seeded_generators


def _state(task) -> tuple:
    return task.rng_state.getstate(), task.np_rng.bit_generator.state


def _advance(task) -> None:
    task.rng_state.random()
    task.np_rng.random()


@pytest.mark.parametrize("seed", [42, 7])
def test_seeded_generators_are_what_mteb_gives_a_new_task(seed):
    # The guard on the one thing copied from mteb: how AbsTask.__init__ seeds a task.
    for task_cls in {type(t) for t in get_demo_tasks("demo_eng") + get_demo_tasks("demo_zho")}:
        new = task_cls(seed=seed)
        rng, np_rng = seeded_generators(seed)
        assert (rng.getstate(), np_rng.bit_generator.state) == _state(new), task_cls
    sts = type(mteb.get_task("STSBenchmark"))(seed=seed)
    rng, np_rng = seeded_generators(seed)
    assert (rng.getstate(), np_rng.bit_generator.state) == _state(sts)


def test_evaluation_copy_leaves_the_original_untouched():
    (task,) = [t for t in get_demo_tasks("demo_eng") if t.metadata.type == "Clustering"]
    before = _state(task)
    copy = evaluation_copy(task)
    _advance(copy)  # what an evaluate call does
    assert _state(task) == before
    assert _state(evaluation_copy(task)) == before != _state(copy)
    assert copy.metadata is task.metadata and copy.hf_subsets is task.hf_subsets


def test_benchmark_tasks_come_fresh_although_mteb_shares_its_objects():
    shared = mteb.get_benchmark("MTEB(eng, v2)").tasks
    original = next(t for t in shared if t.metadata.name == "StackExchangeClustering.v2")
    assert mteb.get_benchmark("MTEB(eng, v2)").tasks[0] is shared[0]  # one object per process
    before = _state(original)
    _advance(original)  # an earlier evaluation in this process (a multirun job)
    try:
        cfg = {"source": "mteb", "name": "MTEB(eng, v2)", "tasks": ["StackExchangeClustering.v2"]}
        (task,) = filtered_tasks(cfg)
        assert task is not original
        assert _state(task) == before  # as constructed
        assert task.hf_subsets == original.hf_subsets and task.eval_splits == original.eval_splits
    finally:
        original.rng_state, original.np_rng = seeded_generators(original.seed)


def test_fresh_copy_restarts_the_generators():
    (task,) = [t for t in get_demo_tasks("demo_zho") if t.metadata.type == "Clustering"]
    before = _state(task)
    _advance(task)
    assert _state(fresh_copy(task)) == before

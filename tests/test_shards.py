"""Cost-balanced shards: every task in exactly one shard, the same split in every process."""

from __future__ import annotations

import contextlib
import io
import sys

import mteb
import pytest

from qzhou_eval.benchmarks import filtered_tasks
from qzhou_eval.config import compose_config
from qzhou_eval.demo import get_demo_tasks
from qzhou_eval.errors import ConfigError
from qzhou_eval.shards import estimate_cost, shard_tasks, split_tasks, task_costs
from qzhou_eval.shards.__main__ import render_shards


def _names(tasks) -> list[str]:
    return [t.metadata.name for t in tasks]


def _bench(key: str, *overrides: str) -> dict:
    from omegaconf import OmegaConf

    cfg = compose_config("mteb", [f"benchmark={key}", *overrides])
    return OmegaConf.to_container(cfg.benchmark, resolve=True)


@pytest.mark.parametrize("key", ["mteb_eng_v2", "cmteb"])
def test_two_shards_of_each_official_benchmark_are_within_25_percent(key):
    tasks = filtered_tasks(_bench(key))
    shards = split_tasks(tasks, 2)
    costs = [s.cost for s in shards]
    assert max(costs) <= 1.25 * min(costs), costs
    assert all(t.estimated for s in shards for t in s.tasks)  # mteb ships statistics for all
    listing = render_shards(_bench(key, "benchmark.num_shards=2"))
    assert "shard 0:" in listing and "shard 1:" in listing
    for name in _names(tasks):  # each task listed once
        assert sum(line.split()[0] == name for line in listing.splitlines()) == 1, name


@pytest.mark.parametrize("n", [1, 2, 3, 8, 41])
def test_every_task_is_in_exactly_one_shard_in_benchmark_order(n):
    tasks = filtered_tasks(_bench("mteb_eng_v2"))
    parts = [[t.task for t in s.tasks] for s in split_tasks(tasks, n)]
    assert _names(shard_tasks(tasks, n, n - 1)) == _names(parts[-1])
    flat = [name for part in parts for name in _names(part)]
    assert sorted(flat) == sorted(_names(tasks))
    position = {name: i for i, name in enumerate(_names(tasks))}
    for part in parts:
        assert part, "no shard is empty"
        assert [position[x] for x in _names(part)] == sorted(position[x] for x in _names(part))


def test_the_split_does_not_depend_on_the_order_tasks_arrive_in():
    tasks = filtered_tasks(_bench("cmteb"))
    forward = [sorted(t.name for t in s.tasks) for s in split_tasks(tasks, 4)]
    backward = [sorted(t.name for t in s.tasks) for s in split_tasks(tasks[::-1], 4)]
    assert forward == backward


def test_a_split_that_cannot_balance_says_why():
    listing = render_shards(_bench("mteb_eng_v2", "benchmark.num_shards=8"))
    assert "Touche2020Retrieval.v3 alone is" in listing  # about half of MTEB(eng, v2)'s texts


def test_cost_follows_what_mteb_encodes():
    (mtop,) = [
        t
        for t in mteb.get_benchmark("MTEB(eng, v2)").tasks
        if t.metadata.name == "MTOPDomainClassification"
    ]
    assert mtop.hf_subsets == ["en"]  # the benchmark keeps the English subset only
    stats = mtop.metadata.descriptive_stats
    test_en = stats["test"]["hf_subset_descriptive_stats"]["en"]
    train_en = stats["train"]["hf_subset_descriptive_stats"]["en"]
    # the English test texts, plus at most samples_per_label x n_experiments train texts per label
    cap = (
        train_en["label_statistics"]["unique_labels"] * mtop.samples_per_label * mtop.n_experiments
    )
    assert cap < train_en["text_statistics"]["unique_texts"]
    cost = estimate_cost(mtop)
    assert cost.texts == pytest.approx(test_en["text_statistics"]["unique_texts"] + cap)
    assert cost.chars < stats["test"]["text_statistics"]["total_text_length"]  # not all languages

    (stack,) = mteb.get_tasks(tasks=["StackExchangeClustering.v2"])
    text = stack.metadata.descriptive_stats["test"]["text_statistics"]
    n = stack.metadata.descriptive_stats["test"]["num_samples"]
    embedded = int(stack.max_fraction_of_documents_to_embed * n) / n  # clustering subsamples
    assert estimate_cost(stack).texts == pytest.approx(text["unique_texts"] * embedded)


def test_tasks_without_statistics_count_as_the_median_or_as_one_each():
    demo = get_demo_tasks("demo_eng")
    assert all(estimate_cost(t) is None for t in demo)
    assert {c.cost.chars for c in task_costs(demo)} == {1.0}
    assert [len(s.tasks) for s in split_tasks(demo, 2)] == [3, 2]  # count-balanced

    official = mteb.get_tasks(tasks=["STS12", "STS13", "BIOSSES"])
    mixed = task_costs([*official, demo[0]])
    known = sorted(c.cost.chars for c in mixed if c.estimated)
    assert mixed[-1].cost.chars == known[1] and not mixed[-1].estimated


@pytest.mark.parametrize(
    ("num_shards", "shard", "needle"),
    [
        (2, 2, "benchmark.shard=2 is not a shard of benchmark.num_shards=2; use 0 to 1"),
        (2, -1, "benchmark.shard=-1 is not a shard"),
        (0, 0, "benchmark.num_shards=0 must be a positive integer"),
        (6, 0, "benchmark.num_shards=6 is more than the 5 task(s) to split; use at most 5"),
    ],
)
def test_bad_shard_settings_are_one_config_error(num_shards, shard, needle):
    from qzhou_eval.benchmarks import load_benchmark_tasks

    bench = _bench("demo_eng", f"benchmark.num_shards={num_shards}", f"benchmark.shard={shard}")
    with pytest.raises(ConfigError) as info:
        load_benchmark_tasks(bench)
    assert needle in str(info.value) and "\n" not in str(info.value)


def _cli(main, *args: str) -> tuple[int, str, str]:
    """``python <app> <args>`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["app", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def test_run_with_a_bad_shard_is_one_line_exit_2_and_writes_nothing(tmp_path):
    import run_mteb

    code, _, err = _cli(
        run_mteb.main,
        "model=minilm",
        "benchmark=demo_eng",
        "benchmark.num_shards=2",
        "benchmark.shard=2",
        f"runtime.results_dir={tmp_path / 'r'}",
        f"runtime.store_dir={tmp_path / 's'}",
    )
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: benchmark.shard=2 is not a shard")
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_listing_command_prints_every_shard():
    from qzhou_eval.shards.__main__ import main

    code, out, err = _cli(
        main, "benchmark=cmteb", "benchmark.num_shards=2", "benchmark.tasks=[T2Retrieval,BQ,ATEC]"
    )
    assert code == 0, err
    assert "MTEB(cmn, v1): 3 task(s) in 2 shard(s)" in out
    assert "shard 0: 1 task(s)" in out  # T2Retrieval alone outweighs the STS tasks
    assert "shard 1: 2 task(s)" in out


def test_listing_command_refuses_a_shard_number_a_run_would_refuse():
    from qzhou_eval.shards.__main__ import main

    code, out, err = _cli(main, "benchmark=demo_eng", "benchmark.num_shards=2", "benchmark.shard=5")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and out == "", out
    assert lines == [
        "error: benchmark.shard=5 is not a shard of benchmark.num_shards=2; use 0 to 1"
    ]

"""benchmarks/pipeline.py's pieces that decide its figures: the shape tasks' texts and the
critical-path bound (the benchmark itself runs for minutes and is not a test)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench():
    path = REPO / "benchmarks" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("pipeline_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_texts_have_the_words_asked_and_lean_to_their_topic(bench):
    texts = bench._texts(np.random.default_rng(0), 200, [3, 3, 7])
    again = bench._texts(np.random.default_rng(0), 200, [3, 3, 7])
    assert texts == again  # one seed, one data set: scores comparable between runs
    assert [len(t.split()) for t in texts] == [200, 200, 200]
    assert texts[0] != texts[1]
    own = {f"w{3 * 40 + i}" for i in range(40)}  # topic 3's words
    share = sum(w in own for w in texts[0].split()) / 200
    assert 0.35 < share < 0.65  # half from the topic (and 1% of the rest by chance)
    assert sum(w in own for w in texts[2].split()) / 200 < 0.1


def test_critical_path_is_the_task_whose_encoding_and_tails_end_last(bench):
    clock = bench.TaskClock(device=None)
    clock.device_seconds = {"long corpus": 8.0, "long tails": 1.0, "never asked": 20.0}
    clock.tails = {"long corpus": [2.0], "long tails": [3.0, 3.0, 3.0, 3.0]}
    # one process: the four tails one after the other; two: two at a time
    assert clock.critical_path(1) == (13.0, "long tails")
    assert clock.critical_path(2) == (10.0, "long corpus")
    # never less than the longest tail, however many processes
    assert clock.critical_path(16) == (10.0, "long corpus")
    clock.tails["long tails"] = [9.5]
    assert clock.critical_path(16) == (10.5, "long tails")


def test_largest_difference_reads_every_number_and_flags_other_shapes(bench):
    a = {"test": [{"main_score": 0.5, "ndcg": [0.1, 0.2], "hf_subset": "default"}]}
    b = {"test": [{"main_score": 0.5, "ndcg": [0.1, 0.25], "hf_subset": "default"}]}
    assert bench._largest_difference(a, a) == 0.0
    assert abs(bench._largest_difference(a, b) - 0.05) < 1e-12
    c = {"test": [{"main_score": 0.5, "ndcg": [0.1], "hf_subset": "default"}]}
    assert bench._largest_difference(a, c) == float("inf")  # a list of another length
    d = {"test": [{"main_score": 0.5, "ndcg": [0.1, 0.2], "hf_subset": "other"}]}
    assert bench._largest_difference(a, d) == float("inf")  # another subset
    assert bench._main_score(b) == 0.5


def test_sweep_dims_spread_up_to_the_models_size(bench):
    assert bench._sweep_dims(384) == bench.DIMS8  # MiniLM: the CPU rounds' sweep
    dims = bench._sweep_dims(3584)
    assert len(dims) == 8 and dims[-1] == 3584 and dims == sorted(set(dims))


def test_compare_vectors_counts_inputs_whose_bits_differ(bench, tmp_path):
    keys = np.arange(3 * 32, dtype=np.uint8).reshape(3, 32)
    vecs = np.eye(3, 4, dtype=np.float32)
    for run, change in (("a", 0.0), ("b", 1e-3)):
        folder = tmp_path / run / "store" / "model"
        folder.mkdir(parents=True)
        other = vecs.copy()
        other[2, 3] += change
        np.save(folder / "s1.keys.npy", keys)
        np.save(folder / "s1.vecs.npy", other)
    line, differing = bench._compare_vectors(tmp_path / "a", tmp_path / "b")
    assert differing == 1
    assert line.startswith(
        "3 inputs in both stores; 1 differ in some bit; largest |difference| 1.00e-03"
    )
    assert bench._compare_vectors(tmp_path / "a", tmp_path / "a") == (
        "3 inputs in both stores; 0 differ in some bit",
        0,
    )
    line, differing = bench._compare_vectors(tmp_path / "a", tmp_path / "none")
    assert "no input in both" in line and differing == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "cpu"], "--device and --scale-down go with --device-model"),
        (["--device-model", "nonexistent"], "--device-model: model=nonexistent is unknown"),
        (["--device-model", "qzhou_embedding"], "sees no CUDA device here"),
        (["--device-model", "qzhou_embedding", "--device", "cpu"], "add --scale-down"),
    ],
)
def test_a_device_option_that_cannot_work_is_one_error_line(
    bench, monkeypatch, capsys, argv, message
):
    import argparse

    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    parser = argparse.ArgumentParser()
    for flag in ("--device-model", "--device"):
        parser.add_argument(flag)
    parser.add_argument("--scale-down", action="store_true")
    args = parser.parse_args(argv)
    with pytest.raises(SystemExit) as e:
        bench._check_device_args(parser, args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_the_simulated_device_runs_queued_batches_back_to_back_on_its_own_clock(bench):
    import itertools
    import time

    from qzhou_eval.models.inputs import TokenBatch

    device = bench.SimulatedDevice(rate=1000.0)  # 20 padded tokens: 20 ms a batch
    batch = TokenBatch.from_lists([[101, 7592, 102], [101, 2088, 2003, 7592, 102, 0, 0, 0, 0, 0]])

    def host(late_before: int | None = None):
        for k in range(4):
            if k == late_before:
                time.sleep(0.1)  # the host has no batch ready: the device idles
            yield batch

    out = list(device.run(host()))
    assert [n for n, _ in out] == [0, 1, 2, 3]
    assert device.busy == pytest.approx(4 * 0.02) and device.forward_calls == 4
    spans = device.spans
    # queued before the one before ended: each starts as that one ends, whatever the host does
    assert all(b[0] == a[1] for a, b in itertools.pairwise(spans))
    assert all(e - s == pytest.approx(0.02) for s, e in spans)
    assert out[0][1].shape == (2, 384)
    np.testing.assert_array_equal(out[0][1], out[3][1])  # the same input, the same vector
    late = bench.SimulatedDevice(rate=1000.0)
    list(late.run(host(late_before=2)))
    gap = late.spans[2][0] - late.spans[1][1]
    assert gap > 0.05 and late.busy == pytest.approx(4 * 0.02)  # idle time is not busy time


def test_shape_data_read_from_arrow_files_are_the_built_ones_memory_mapped(
    bench, tmp_path, monkeypatch
):
    # loading the retrieval shape scales mteb's corpus chunk (a module-level name): restored
    # after the test, or every later retrieval evaluation in this process would search in
    # chunks of 100 documents
    monkeypatch.setattr(bench.mteb_retrieval, "SearchEncoderWrapper", bench.SearchEncoderWrapper)
    for cls, split in [(bench.ShapeRetrieval, "corpus"), (bench.ShapeSTS, None)]:
        built, read = cls(scale=0.002), cls(scale=0.002, data_dir=tmp_path)
        built.load_data()
        read.load_data()
        a, b = built.dataset, read.dataset
        if split is not None:  # a retrieval split: its datasets, and the qrels as they were
            a, b = a["default"]["test"], b["default"]["test"]
            assert b["relevant_docs"] == a["relevant_docs"]
        a, b = (a[split], b[split]) if split else (a["test"], b["test"])
        assert b.cache_files and not a.cache_files  # read from the files (mteb's maps cache)
        assert b.to_dict() == a.to_dict()
        assert (tmp_path / cls.metadata.name).is_dir()
        # once saved, a load reads them without building them again (as a real task's cache)
        again = cls(scale=0.002, data_dir=tmp_path)
        monkeypatch.setattr(again, "build", lambda: pytest.fail("built again"))
        again.load_data()
        assert again.dataset.keys() == read.dataset.keys()

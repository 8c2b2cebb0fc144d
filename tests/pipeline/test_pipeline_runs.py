"""Pipelined runs score exactly as the sequential runner, score without a model, and survive a
killed scoring process and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from qzhou_eval.config import app, compose_config
from qzhou_eval.fingerprint import file_digest
from qzhou_eval.runs.identity import RESULT_DIGEST
from qzhou_eval.runs.runner import execute, plan_run
from tests.conftest import REPO
from tests.in_process import qzhou_eval
from tests.processes import alive, fork_servers, forked_children

pytestmark = pytest.mark.slow

MINILM = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
SIZES = ("", "experiments/embed_dim_128", "experiments/embed_dim_256")


def _run(results: Path, store: Path, suite: str, *extra: str):
    cfg = compose_config(
        "mteb",
        [
            "model=minilm",
            f"benchmark={suite}",
            f"runtime.results_dir={results}",
            f"runtime.store_dir={store}",
            "runtime.progress=false",
            *extra,
        ],
    )
    return execute(plan_run(cfg))


def _scores(results: Path, experiment: str = "") -> dict[str, dict]:
    folder = results / MINILM / experiment
    return {
        p.stem: json.loads(p.read_text())["scores"]
        for p in folder.glob("*.json")
        if p.name != "model_meta.json"
    }


@pytest.mark.parametrize("suite", ["demo_eng", "demo_zho"])
def test_scoring_processes_score_as_the_sequential_runner(
    tmp_path, minilm_demo, suite, monkeypatch
):
    from qzhou_eval.pipeline import schedule

    # any encoding order scores alike: the demo tasks (no statistics, no estimated tail) are
    # encoded here in reverse
    monkeypatch.setattr(schedule, "encode_order", lambda tasks: list(reversed(tasks)))
    store, sweep = minilm_demo / "store", "mrl.dims=[128,256,384]"
    _run(tmp_path / "seq", store, suite, sweep, "runtime.scoring_workers=0")
    par = _run(tmp_path / "par", store, suite, sweep, "runtime.scoring_workers=2")
    assert par.encoded_inputs == 0 and par.forward_calls == 0
    n = len(par.plan.tasks)
    assert set(par.coverage) == {t.metadata.name for t in par.plan.tasks}
    assert all(asked == stored > 0 for asked, stored in par.coverage.values())
    assert sum(len(v) for v in par.runs.values()) == 3 * n and not par.failures
    for size in SIZES:
        seq = _scores(tmp_path / "seq", size)
        assert len(seq) == n
        assert _scores(tmp_path / "par", size) == seq, size  # every metric, to the last digit
    plain, par_full = _scores(minilm_demo / "results"), _scores(tmp_path / "par")
    assert par_full == {task: plain[task] for task in par_full}  # both suites are in there
    for runner in ("seq", "par"):
        _assert_sealed(tmp_path / runner, 3 * n)


def _assert_sealed(results: Path, count: int) -> None:
    """Each result's record keeps the digest of the result its run wrote."""
    files = [p for p in (results / MINILM).rglob("*.json") if p.name != "model_meta.json"]
    assert len(files) == count
    for path in files:
        record = path.parent / "qzhou_eval_records" / f"{path.stem}.yaml"
        assert yaml.safe_load(record.read_text())[RESULT_DIGEST] == file_digest(path), path


def test_the_pipeline_encodes_what_the_store_lacks(tmp_path, monkeypatch):
    # A fresh store: each task's job is in a scoring process that waits for its inputs before
    # the main process starts encoding them (made certain here: the encoding waits for that),
    # and scores with what the look-ahead stores, nothing handed back.
    from qzhou_eval.pipeline import schedule

    pools: list[schedule.ScoringPool] = []

    class Recorded(schedule.ScoringPool):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    class Awaited(schedule.EncodeFeed):
        def _requests(self):  # each task encoded once a scoring process waits for it
            for request in super()._requests():
                task, deadline = request.desc.split(" [")[0], time.monotonic() + 120
                while not pools[0].handoff.waited(task):
                    assert time.monotonic() < deadline, f"no scoring process waited for {task}"
                    time.sleep(0.05)
                yield request

    monkeypatch.setattr(schedule, "ScoringPool", Recorded)
    monkeypatch.setattr(schedule, "EncodeFeed", Awaited)
    par = _run(
        tmp_path / "par",
        tmp_path / "store",
        "demo_zho",
        "benchmark.tasks=[DemoZhoPairClassification,DemoZhoClustering]",
        "runtime.scoring_workers=2",
        "runtime.lookahead=1",
    )
    assert par.encoded_inputs > 0
    assert par.coverage and all(a == s for a, s in par.coverage.values())
    assert par.overlapped == {"DemoZhoPairClassification", "DemoZhoClustering"}
    seq = _run(
        tmp_path / "seq",
        tmp_path / "store",
        "demo_zho",
        "benchmark.tasks=[DemoZhoPairClassification,DemoZhoClustering]",
        "runtime.scoring_workers=0",
    )
    assert seq.encoded_inputs == 0
    assert _scores(tmp_path / "par") == _scores(tmp_path / "seq")


def test_a_derivation_that_fails_mid_way_leaves_the_rest_to_demand(tmp_path, monkeypatch, caplog):
    # The look-ahead derives a retrieval task's queries, then fails on its corpus (in the main
    # process only): the corpus is encoded when the scoring process asks for it, and the task
    # scores as the sequential runner scores it.
    import logging
    import threading

    import mteb._create_dataloaders as loaders
    from mteb.types import PromptType

    from qzhou_eval.pipeline.schedule import coverage_line

    texts = loaders._retrieval_texts

    def fails_on_the_corpus(dataset, prompt_type):
        if prompt_type == PromptType.document:
            raise RuntimeError("corpus unreadable (test)")
        return texts(dataset, prompt_type)

    monkeypatch.setattr(loaders, "_retrieval_texts", fails_on_the_corpus)
    tasks = "benchmark.tasks=[DemoEngRetrieval,DemoEngSTS]"
    with caplog.at_level(logging.INFO, logger="qzhou_eval.pipeline"):
        par = _run(
            tmp_path / "par", tmp_path / "store", "demo_eng", tasks, "runtime.scoring_workers=2"
        )
    assert not par.failures and par.encoded_inputs > 0
    assert "look-ahead: DemoEngRetrieval derived in part, the rest on demand" in caplog.text
    asked, stored = par.coverage["DemoEngRetrieval"]
    assert 0 < stored < asked  # the queries came from the store, the corpus on demand
    assert par.coverage["DemoEngSTS"][0] == par.coverage["DemoEngSTS"][1]
    line = coverage_line(par.coverage)
    assert line is not None and "below: DemoEngRetrieval" in line, line
    # the record was claimed once over both attempts, and let go: nothing keeps it fresh
    assert not [t for t in threading.enumerate() if t.name.startswith("keep-fresh")]
    monkeypatch.setattr(loaders, "_retrieval_texts", texts)
    seq = _run(tmp_path / "seq", tmp_path / "store", "demo_eng", tasks, "runtime.scoring_workers=0")
    assert seq.encoded_inputs == 0  # the pipelined run stored every input
    assert _scores(tmp_path / "par") == _scores(tmp_path / "seq")


FIRST_RUN = """
import json, sys
from qzhou_eval.config import compose_config
from qzhou_eval.runs.runner import execute, plan_run

assert "transformers" not in sys.modules  # (the model's loading imports it, in the run)
cfg = compose_config("mteb", ["model=minilm", "benchmark=demo_eng", *sys.argv[1:]])
print(json.dumps(execute(plan_run(cfg)).coverage))
"""


def test_a_first_run_derives_every_task_while_the_model_loads(tmp_path, minilm_demo):
    # A fresh process and a fresh store (runner.execute called from Python): the model loads,
    # importing transformers, while the first two tasks are derived in other threads.
    # transformers' lazy imports are not safe from two threads at once, and the derivation,
    # through datasets' hashing of mteb's map functions, met a half-imported transformers
    # ("no attribute 'PreTrainedTokenizerBase'"): both tasks' look-ahead was lost.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            FIRST_RUN,
            # the first two tasks: the ones derived at once while the model loads
            "benchmark.tasks=[DemoEngRetrieval,DemoEngReranking]",
            "runtime.scoring_workers=2",
            f"runtime.results_dir={tmp_path / 'results'}",
            f"runtime.store_dir={tmp_path / 'store'}",
            "runtime.progress=false",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    coverage = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(coverage) == 2 and all(asked == stored > 0 for asked, stored in coverage.values())
    plain, scored = _scores(minilm_demo / "results"), _scores(tmp_path / "results")
    assert len(scored) == 2 and scored == {t: plain[t] for t in scored}


def test_the_pipeline_encodes_in_the_sequential_runners_batches(tmp_path, monkeypatch):
    # On a GPU a row's vector depends, in its last bits, on the batch it ran in (kernels round
    # otherwise for another shape), and the store keeps the first one computed. So that a
    # pipelined run stores the sequential runner's vectors, the look-ahead must form the same
    # batches: each of mteb's calls chunked as if it came alone. Both tasks make two calls of
    # one prompt type (the pairs' two columns; the test texts, then the training sample).
    from collections import Counter

    from qzhou_eval.encoder import engines

    batches: list[tuple] = []

    def recorded(self, stream):
        # the batches as the device gets them; each row's vector from its tokens alone (a bag of
        # token ids) instead of the model's forward, which batching does not depend on
        for number, batch in enumerate(stream):
            ends = np.cumsum(batch.lengths)
            inputs = [batch.flat[e - n : e] for n, e in zip(batch.lengths, ends, strict=True)]
            batches.append(tuple(sorted(tuple(x.tolist()) for x in inputs)))
            rows = [np.bincount(x % 384, minlength=384) + 1.0 for x in inputs]
            yield number, np.stack(rows).astype(np.float32)

    monkeypatch.setattr(engines.LocalEngine, "run", recorded)
    tasks = "benchmark.tasks=[DemoZhoPairClassification,DemoZhoClassification]"
    formed = {}
    for name, workers in (("seq", 0), ("par", 2)):
        batches.clear()
        done = _run(
            tmp_path / name,
            tmp_path / f"{name}-store",
            "demo_zho",
            tasks,
            f"runtime.scoring_workers={workers}",
        )
        assert done.encoded_inputs > 0 and not done.failures
        formed[name] = Counter(batches)
    assert sum(formed["seq"].values()) > 2
    assert formed["par"] == formed["seq"]
    assert _scores(tmp_path / "par") == _scores(tmp_path / "seq")


def _vectors(store: Path) -> dict[bytes, bytes]:
    """Every vector of a store folder (one model configuration), by key, as bytes."""
    from qzhou_eval.store.disk import KEYS, read_rows, read_shard

    (folder,) = [f for f in store.iterdir() if f.is_dir()]
    found = {}
    for keys in sorted(folder.glob(f"*{KEYS}")):
        shard = read_shard(folder, keys.name[: -len(KEYS)])
        rows = read_rows(folder, shard, range(len(shard.keys)))
        found.update({k.tobytes(): v.tobytes() for k, v in zip(shard.keys, rows, strict=True)})
    return found


def test_a_rerun_over_a_partly_filled_store_stores_and_scores_as_one_run(tmp_path, minilm_demo):
    # What Ctrl-C leaves (the batches computed so far of the calls underway) and what other
    # tasks stored: the inputs left are batched as the whole call is, so a resumed pipelined run
    # stores the bits of an uninterrupted one (MiniLM's CPU kernels round a row otherwise in
    # another batch too) and scores every metric alike.
    from qzhou_eval.store.disk import KEYS, VECS

    reference = _vectors(minilm_demo / "store")
    (fingerprint,) = [f.name for f in (minilm_demo / "store").iterdir() if f.is_dir()]
    folder = tmp_path / "store" / fingerprint
    folder.mkdir(parents=True)
    keys = sorted(reference)[::2]  # every other input of every call, by key: a scattered half
    np.save(
        folder / f"half{VECS}", np.stack([np.frombuffer(reference[k], np.float32) for k in keys])
    )
    np.save(folder / f"half{KEYS}", np.stack([np.frombuffer(k, np.uint8) for k in keys]))
    # and a shard whose vectors are NaN (the format intact): the look-ahead takes its inputs
    # for stored, a scoring process reads them and misses them, the main process reads them
    # too, sets the shard aside and encodes them (a traceback or a score before)
    nan = sorted(reference)[1::2][:40]
    np.save(folder / f"nan{VECS}", np.full((len(nan), 384), np.nan, dtype=np.float32))
    np.save(folder / f"nan{KEYS}", np.stack([np.frombuffer(k, np.uint8) for k in nan]))

    done = _run(tmp_path / "results", tmp_path / "store", "demo_eng", "runtime.scoring_workers=2")
    assert not done.failures and done.encoded_inputs > 0
    assert not (folder / f"nan{KEYS}").exists() and list(folder.glob(f"nan{KEYS}.corrupt-*"))
    resumed = _vectors(tmp_path / "store")
    assert {k: reference[k] for k in resumed} == resumed  # bit for bit
    plain = _scores(minilm_demo / "results")
    assert _scores(tmp_path / "results") == {t: plain[t] for t in plain if t.startswith("DemoEng")}


def test_scoring_from_the_store_never_loads_the_model(tmp_path, minilm_demo):
    common = [
        "model=minilm",
        "model.path=/nonexistent",  # a CPU node without the weights
        "runtime.encode=false",
        "runtime.progress=false",
    ]
    run = qzhou_eval(
        "run",
        *common,
        "benchmark=demo_eng",
        f"runtime.results_dir={tmp_path / 'b'}",
        f"runtime.store_dir={minilm_demo / 'store'}",
    )
    assert run.code == 0, run.err
    assert run.encoded == 0
    plain, scored = _scores(minilm_demo / "results"), _scores(tmp_path / "b")
    assert len(scored) == 5
    assert scored == {task: plain[task] for task in scored}  # every task, exactly

    # A store with one task's inputs only: the other task is listed with its count, exit 1
    # (here from scoring processes).
    _run(tmp_path / "c", tmp_path / "partial", "demo_eng", "benchmark.tasks=[DemoEngSTS]")
    run = qzhou_eval(
        "run",
        *common,
        "runtime.scoring_workers=2",
        "benchmark=demo_eng",
        "benchmark.tasks=[DemoEngSTS,DemoEngClustering]",
        f"runtime.results_dir={tmp_path / 'd'}",
        f"runtime.store_dir={tmp_path / 'partial'}",
    )
    assert run.code == 1
    assert "Traceback" not in run.err
    (line,) = [ln for ln in run.err_lines if ln.startswith("error:")]
    assert "1 task(s) lack stored inputs" in line and "DemoEngClustering (319 input(s)" in line
    assert "DemoEngClustering (no result file)" in run.out  # the summary: missing, no subset
    folder = tmp_path / "d" / MINILM
    assert (folder / "DemoEngSTS.json").exists()
    assert not (folder / "DemoEngClustering.json").exists()
    assert not (folder / "qzhou_eval_records" / "DemoEngClustering.yaml").exists()


def test_scoring_from_the_store_says_why_inputs_are_missing(tmp_path, minilm_demo):
    import shutil

    from qzhou_eval.store.disk import VECS

    def score(store: Path, *extra: str):
        run = qzhou_eval(
            "run",
            "model=minilm",
            "model.path=/nonexistent",
            "runtime.encode=false",
            "runtime.progress=false",
            "benchmark=demo_eng",
            "benchmark.tasks=[DemoEngSTS]",
            f"runtime.results_dir={tmp_path / 'r' / store.name}",
            f"runtime.store_dir={store}",
            *extra,
        )
        assert run.code == 1 and "Traceback" not in run.err, run.err
        (line,) = [ln for ln in run.err_lines if ln.startswith("error:")]
        assert "DemoEngSTS (" in line
        return line, run.out + run.err  # (the log's warnings go to stdout here)

    # a damaged shard, read-only here: named in a warning, and the error says it was skipped
    damaged = tmp_path / "damaged"
    _run(tmp_path / "c", damaged, "demo_eng", "benchmark.tasks=[DemoEngSTS]")
    vectors = sorted(damaged.glob(f"*/*{VECS}"))[0]
    with vectors.open("r+b") as f:
        f.truncate(100)
    line, output = score(damaged)
    assert "1 damaged shard(s) of the store were skipped" in line
    assert f"warning: embedding store: shard {str(vectors)[: -len(VECS)]} is damaged" in output
    # with scoring processes (a command of its own: their output too), one warning still: the
    # main process's (they skip the shard it warned about; each warned again before)
    run = subprocess.run(
        [
            sys.executable,
            "run_mteb.py",
            "model=minilm",
            "model.path=/nonexistent",
            "runtime.encode=false",
            "runtime.scoring_workers=2",
            "runtime.progress=false",
            "benchmark=demo_eng",
            "benchmark.tasks=[DemoEngSTS]",
            f"runtime.results_dir={tmp_path / 'r' / 'processes'}",
            f"runtime.store_dir={damaged}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert len([ln for ln in (run.stdout + run.stderr).splitlines() if "is damaged" in ln]) == 1
    assert vectors.exists()  # left in place: the store is only read

    # an empty store: nothing was ever encoded into it
    (tmp_path / "empty").mkdir()
    line, _ = score(tmp_path / "empty")
    assert "holds no vectors at all" in line
    assert not (tmp_path / "r" / "empty").exists()  # the run's results folder, left empty, too

    # vectors of another model configuration only
    other = tmp_path / "other"
    shutil.copytree(minilm_demo / "store", other)
    line, _ = score(other, "model.max_length=128")
    assert "no vector of this model configuration" in line and "1 other configuration" in line


def _sweep(tmp_path: Path, store: Path) -> list[str]:
    """The arguments of ``run_mteb.py`` for a pipelined 3-dimension sweep of demo_eng."""
    return [
        "model=minilm",
        "benchmark=demo_eng",
        "mrl.dims=[64,128,384]",  # enough jobs to outlast the signal
        "runtime.scoring_workers=2",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={store}",
        "runtime.progress=false",
    ]


def _start(tmp_path: Path, store: Path, start_new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "run_mteb.py", *_sweep(tmp_path, store)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=start_new_session,
    )


def _scoring_underway(proc: subprocess.Popen, results: Path) -> list[int]:
    """Wait until a result is written and both scoring processes (children of the fork server)
    are alive; their pids."""
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "no result was written"
        workers = forked_children(proc.pid)
        if len(workers) == 2 and any(results.rglob("Demo*.json")):
            return workers
        time.sleep(0.2)


def _whole_results(results: Path, *, temp_files: bool = False) -> dict[str, dict]:
    """Every result file parses: nothing half-written. ``temp_files``: a killed writer's
    temporary file may be there (no reader sees it; the next run on this host removes it)."""
    if not temp_files:
        assert not [p for p in results.rglob("*") if p.name.endswith(".tmp")]
    return {
        str(p.relative_to(results)): json.loads(p.read_text())["scores"]
        for p in results.rglob("Demo*.json")
    }


def test_a_killed_scoring_process_loses_nothing_finished(tmp_path, minilm_demo):
    proc = _start(tmp_path, minilm_demo / "store")
    try:
        workers = _scoring_underway(proc, tmp_path / "results")
        servers = fork_servers(proc.pid)
        before = _whole_results(tmp_path / "results", temp_files=True)
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=120)
        err = proc.stderr.read()
        assert proc.returncode == 1, err[-2000:]
        assert "Traceback" not in err
        assert "error: a scoring process died" in err
        after = _whole_results(tmp_path / "results", temp_files=True)
        assert {k: after[k] for k in before} == before  # finished results kept
        deadline = time.monotonic() + 30
        while any(alive(w) for w in workers + servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers + servers if alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
    rerun = qzhou_eval("run", *_sweep(tmp_path, minilm_demo / "store"))  # in this process
    assert rerun.code == 0, rerun.err[-2000:]
    final = _whole_results(tmp_path / "results")
    assert len(final) == 5 * 3
    full = {k.rsplit("/", 1)[-1]: v for k, v in final.items() if "experiments" not in k}
    plain = _scores(minilm_demo / "results")
    assert full == {f"{t}.json": plain[t] for t in plain if t.startswith("DemoEng")}


def test_ctrl_c_stops_the_scoring_processes(tmp_path, minilm_demo):
    proc = _start(tmp_path, minilm_demo / "store")
    try:
        workers = _scoring_underway(proc, tmp_path / "results")
        workers += fork_servers(proc.pid)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        err = proc.stderr.read()
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err and err.strip().startswith("interrupted:"), err
        assert len(err.strip().splitlines()) == 1, err
        deadline = time.monotonic() + 5
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if alive(w)], "a scoring process outlived Ctrl-C"
        _whole_results(tmp_path / "results", temp_files=True)  # processes were killed
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_closed_terminal_stops_the_run_with_one_line(tmp_path, minilm_demo):
    # A closed terminal or ssh session sends SIGHUP to the whole process group: the fork
    # server, the scoring processes and multiprocessing's resource tracker too. The tracker,
    # killed by it, was started again by the run's clean-up and printed a KeyError traceback
    # per semaphore it had never seen (5 of them here).
    proc = _start(tmp_path, minilm_demo / "store", start_new_session=True)
    try:
        workers = _scoring_underway(proc, tmp_path / "results") + fork_servers(proc.pid)
        os.killpg(proc.pid, signal.SIGHUP)
        proc.wait(timeout=60)
        err = proc.stderr.read()  # to its end: the tracker holds it until it is done
        assert proc.returncode == 129, err[-2000:]
        assert [ln for ln in err.splitlines() if ln.strip()] == [app.stop_line(signal.SIGHUP)], err
        deadline = time.monotonic() + 5
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if alive(w)], "a process outlived the hang-up"
        _whole_results(tmp_path / "results", temp_files=True)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_while_the_fork_server_imports_prints_one_line(tmp_path, minilm_demo):
    # A terminal's Ctrl-C reaches the whole process group, the fork server too, which the run
    # command starts first (its imports take seconds): it ignores the signal, prints nothing,
    # and exits once its imports are done.
    proc = _start(tmp_path, minilm_demo / "store", start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (servers := fork_servers(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        assert not forked_children(proc.pid)  # still importing
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        err = proc.stderr.read()
        assert proc.returncode == 130, err[-2000:]
        assert err.strip().startswith("interrupted:") and len(err.strip().splitlines()) == 1, err
        deadline = time.monotonic() + 60
        while any(alive(s) for s in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [s for s in servers if alive(s)], "the fork server outlived its imports"
        assert not any((tmp_path / "results").rglob("Demo*.json"))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_scoring_processes_die_with_a_killed_main_process(tmp_path, minilm_demo):
    # main -> fork server -> scoring processes: the server exits as soon as the main process
    # is gone, and its children die with it (PR_SET_PDEATHSIG, and a watchdog)
    proc = _start(tmp_path, minilm_demo / "store")
    try:
        left = _scoring_underway(proc, tmp_path / "results") + fork_servers(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in left if alive(p)], "a process outlived the killed main process"
        # nothing on stderr from what it left (read to its end: the resource tracker, which
        # removes the semaphores of the run's queues, holds it until it is done)
        err = proc.stderr.read()
        assert "leaked semaphore" not in err and "Traceback" not in err, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_stores_count_is_the_same_whatever_the_runner(tmp_path, minilm_demo):
    # "every vector (N) came from the embedding store": N counts each task's vectors once for
    # all its sweep points, with or without scoring processes, encoding or scoring only (it
    # was 2x for a 2-point sweep without them, and for one with runtime.encode=false)
    tasks = "benchmark.tasks=[DemoEngSTS]"  # (texts in both columns: reused within a point)
    runs = {"one point": ("runtime.scoring_workers=0", "runtime.encode=true", "mrl.dims=[384]")}
    for workers in (0, 2):
        for encode in ("true", "false"):
            setting = (f"runtime.scoring_workers={workers}", f"runtime.encode={encode}")
            runs[setting] = (*setting, "mrl.dims=[128,384]")
    counts = {}
    for i, (name, overrides) in enumerate(runs.items()):
        outcome = _run(tmp_path / str(i), minilm_demo / "store", "demo_eng", tasks, *overrides)
        assert outcome.encoded_inputs == 0 and not outcome.missing
        counts[name] = outcome.stored_inputs
    assert len(set(counts.values())) == 1, counts


def test_a_command_that_stops_early_leaves_no_fork_server_importing(tmp_path):
    # The run command starts the scoring processes' fork server before its own imports; a
    # command stopped before it needs it (a bad value, Ctrl-C) left it importing torch and mteb
    # for seconds after its exit. Here the command ends right after starting it.
    script = (
        "import multiprocessing.forkserver as f, pathlib, sys\n"
        "from qzhou_eval.pipeline.scoring_pool import start_server\n"
        "assert start_server()\n"
        "pathlib.Path(sys.argv[1]).write_text(str(f._forkserver._forkserver_pid))\n"
    )
    pid_file = tmp_path / "server.pid"
    # (no pipes: the server would hold them, and the wait for them would outlast its imports)
    done = subprocess.run(
        [sys.executable, "-c", script, str(pid_file)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert done.returncode == 0
    server = int(pid_file.read_text())
    deadline = time.monotonic() + 1
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server), "the fork server outlived the command"


def test_the_coverage_counts_only_the_tasks_the_run_evaluates(tmp_path, minilm_demo):
    # a task finished already (by an earlier run, or by another run meanwhile) asks mteb for
    # nothing: it was counted as a task whose every input came from the store
    from qzhou_eval.pipeline.schedule import coverage_line

    results, store = tmp_path / "results", minilm_demo / "store"
    workers = "runtime.scoring_workers=2"
    first = _run(results, store, "demo_eng", "benchmark.tasks=[DemoEngSTS]", workers)
    assert set(first.coverage) == {"DemoEngSTS"}
    both = "benchmark.tasks=[DemoEngSTS,DemoEngClassification]"
    resumed = _run(results, store, "demo_eng", both, workers)
    assert set(resumed.coverage) == {"DemoEngClassification"}
    assert "on 1 of 1 task(s)" in coverage_line(resumed.coverage)
    assert _run(results, store, "demo_eng", both, workers).coverage == {}

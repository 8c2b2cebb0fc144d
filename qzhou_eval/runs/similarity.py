"""Where mteb computes similarities while a task is scored: on the CPU, in every process.

mteb 2.26 moves the vectors of a similarity (retrieval and reranking search, summarization, STS
and pair classification through the model's ``similarity``) to the GPU whenever one is visible,
and compiles cosine and dot scores with ``torch.compile`` on compute capability 7.0/8.0/9.0
(``mteb/similarity_functions.py``). The harness pins them to the CPU instead:

- **The official runs computed them on the CPU.** Their scripts (GitHub
  ``Kingsoft-LLM/QZhou-Embedding`` and ``-Zh``, ``embedder.py``) return the vectors as numpy
  arrays gathered from CPU tensors, the model wrapper has no ``similarity``, and mteb 1.38
  scored such arrays with ``torch`` on the CPU (``RetrievalEvaluator``'s ``cos_sim``) or with
  scikit-learn.
- **A score does not depend on where it was computed.** A float32 matrix product sums in
  another order on a GPU, so a near-tie can rank otherwise: a task re-scored from the store on
  a CPU-only node (``runtime.encode=false``) would differ from the GPU node's run, and a
  sequential run from a pipelined one on the same node.
- **Scoring stays off the devices.** Each scoring process would otherwise open a context on
  ``cuda:0`` (0.5-0.8 GiB each, seen on an H200) and compute beside the model there, and compile
  its kernels again for every new shape.

mteb has no public setting for this: the two module-level helpers it consults on every call
(``_select_device``, ``_use_torch_compile``) are replaced, once per process, before a task is
scored. Vectors already on an accelerator would still be scored there; the harness hands mteb
numpy arrays.
"""

from __future__ import annotations

import logging

import mteb
import torch
from mteb import similarity_functions

logger = logging.getLogger(__name__)

_PINNED = "_qzhou_eval_on_cpu"


def _select_device(a: torch.Tensor, b: torch.Tensor) -> torch.device:
    """mteb's rule less its move to an accelerator: where the inputs already are."""
    return b.device if a.device.type == "cpu" else a.device


def _no_torch_compile() -> bool:
    return False


def similarities_on_cpu() -> None:
    """Make mteb compute similarities where their inputs are (the CPU for the harness's numpy
    vectors), uncompiled; idempotent. An mteb release without these helpers is left as it is,
    with a warning: its similarities may run on a GPU."""
    if getattr(similarity_functions, _PINNED, False):
        return
    helpers = ("_select_device", "_use_torch_compile")
    if not all(callable(getattr(similarity_functions, h, None)) for h in helpers):
        logger.warning(
            "mteb %s chooses the device of its similarities in a way this harness does not "
            "know; they may be computed on a GPU (the official runs used the CPU)",
            mteb.__version__,
        )
    else:
        similarity_functions._select_device = _select_device
        similarity_functions._use_torch_compile = _no_torch_compile
    setattr(similarity_functions, _PINNED, True)

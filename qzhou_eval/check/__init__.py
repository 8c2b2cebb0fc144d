"""``qzhou-eval check``: prove on this machine, in minutes, that a long run will be right.

Same config as ``qzhou-eval run`` (``model=...``, ``runtime.devices=...``) plus a ``check``
section (``conf/check.yaml``). One job per file:

- ``environment.py``: versions, GPUs, driver, attention kernels;
- ``subject.py``: the configured model, or its architecture with random weights (no download),
  scaled down on a CPU;
- ``inputs.py``: sample texts through the recipe, synthetic token lengths for the timing;
- ``numerics.py``: batch == each input alone, no NaN under padding, packed == padded, the async
  device loop == a synchronous forward;
- ``devices.py``: every listed device == the first, the worker pool == the in-process path;
- ``memory.py``: out-of-memory recovery under a capped memory fraction (CUDA);
- ``speed.py``: tokens/s, MFU, peak memory at two budgets, a suggested ``tokens_per_batch``;
- ``runner.py``: runs them, one PASS/FAIL/SKIP line each, a JSON summary line last.

Nothing here imports mteb, datasets, pyarrow or polars (the native backend's path needs only
torch, transformers, tokenizers, numpy and the config packages).
"""

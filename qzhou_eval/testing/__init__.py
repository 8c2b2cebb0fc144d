"""Test helpers: offline builders for a real Qwen tokenizer and tiny random-weight decoders.

Nothing here is imported by the evaluation code; tests (ours and downstream) use it to get
models and tokenizers without the Hugging Face Hub. It is part of the package rather than of
``tests/`` because the measurement scripts need it too: ``benchmarks/mrl_sweep.py`` builds its
tiny Qwen3 with :func:`build_tiny_model`, and benchmarks are run without the test suite.
"""

from qzhou_eval.testing.tiny_models import (
    QWEN_SPECIAL_TOKENS,
    build_qwen_tokenizer,
    build_tiny_model,
    cached_qwen_tokenizer,
    cached_tiny_model,
    qwen_tiktoken_path,
)

__all__ = [
    "QWEN_SPECIAL_TOKENS",
    "build_qwen_tokenizer",
    "build_tiny_model",
    "cached_qwen_tokenizer",
    "cached_tiny_model",
    "qwen_tiktoken_path",
]

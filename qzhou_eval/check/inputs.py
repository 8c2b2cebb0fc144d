"""The texts ``qzhou-eval check`` encodes: fixed samples, and synthetic ones for the timing.

The samples go through the configured recipe (instruction, PromptEOL template, empty-text rule),
so that they are model inputs as a run builds them: Token Prepending's placeholder included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from qzhou_eval.recipe import recipe_from_config

_TEXT = (
    "the model reads every text once and returns one vector for it so that similar texts end "
    "up close together while unrelated ones stay apart a retrieval task asks which documents "
    "answer a question and a clustering task groups news articles by topic without labels "
    "long documents are cut at the maximum length and short queries are padded in a batch"
)
_WORDS = _TEXT.split()

SAMPLES = [
    "",  # the recipe's empty-text rule ("Null" for the QZhou models)
    "a",
    "What is the capital of France?",
    "深度学习模型如何把句子变成向量？",
    "Paris is the capital and most populous city of France.",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
]


def sample_texts(count: int) -> list[str]:
    """``count`` texts of very different lengths (1 to a few hundred words)."""
    rng = np.random.default_rng(0)
    out = list(SAMPLES[:count])
    while len(out) < count:
        words = int(min(2 ** (len(out) - len(SAMPLES) + 3), 600))
        out.append(" ".join(rng.choice(_WORDS, size=words)))
    return out


def model_inputs(prompts: Mapping[str, Any], texts: list[str]) -> list[str]:
    """``texts`` as queries of the first task the recipe names (any task when none)."""
    recipe = recipe_from_config(prompts)
    task = min(recipe.instructions) if recipe.instructions else "AnyTask"
    return [recipe.format(task, "query", t) for t in texts]


def synthetic_lengths(total_tokens: int, max_length: int, seed: int = 0) -> list[int]:
    """Token lengths shaped like MTEB retrieval corpora (lognormal, median 160), summing to about
    ``total_tokens``."""
    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    while sum(lengths) < total_tokens:
        n = int(np.clip(round(rng.lognormal(math.log(160), 0.9)), 8, max_length))
        lengths.append(n)
    return lengths


def synthetic_ids(lengths: list[int], vocab: int, seed: int = 0) -> list[list[int]]:
    """Token ids of those lengths (ids 1000..vocab-1000: ordinary tokens, no special ones)."""
    rng = np.random.default_rng(seed)
    high = max(vocab - 1000, 1001)
    return [rng.integers(1000, high, size=n).tolist() for n in lengths]

"""The mteb encoder: recipe -> model inputs -> length-sorted token-budget batches -> vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qzhou_eval.encoder.encoder import RecipeEncoder

__all__ = ["RecipeEncoder"]


def __getattr__(name: str) -> Any:
    # Lazy: data-parallel worker processes import qzhou_eval.encoder.workers and should not pay
    # for importing mteb, which RecipeEncoder needs.
    if name == "RecipeEncoder":
        from qzhou_eval.encoder.encoder import RecipeEncoder

        return RecipeEncoder
    raise AttributeError(name)

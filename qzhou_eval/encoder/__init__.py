"""The mteb encoder: recipe -> model inputs -> length-sorted token-budget batches -> vectors."""

from qzhou_eval.encoder.encoder import RecipeEncoder

__all__ = ["RecipeEncoder"]

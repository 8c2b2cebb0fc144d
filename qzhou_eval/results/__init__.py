"""Results in mteb's own layout, written atomically."""

from qzhou_eval.results.folder import ResultsFolder

__all__ = ["ResultsFolder"]

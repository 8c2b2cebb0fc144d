"""What every demo task does differently from an official mteb task: where its data come from."""

from __future__ import annotations

from typing import Any


class BuiltLocally:
    """Mixin for an mteb task whose data are built in memory instead of downloaded.

    Put it before the mteb abstract task class in the bases and implement :meth:`build`, which
    returns what the task class expects in ``self.dataset`` (see :mod:`qzhou_eval.demo.build`).
    """

    data_loaded: bool
    dataset: Any

    def build(self) -> Any:
        raise NotImplementedError

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Build the data from installed packages' files; nothing is downloaded or cached."""
        if self.data_loaded:
            return
        self.dataset = self.build()
        self.data_loaded = True

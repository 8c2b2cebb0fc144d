"""Leaderboard tables and reproduction reports over results in mteb's layout.

``python -m qzhou_eval.report`` (:mod:`.cli`) reads whole results folders and writes Markdown,
CSV, JSON and PNG files; ``render_run_summary`` is what the runners print at the end of a run.
One job per module, data flowing down the list:

- :mod:`.discover`: the runs in results folders (``<org>__<model>/<revision>/[experiments/..]``);
- :mod:`.score`: which splits count, per-task scores, per-type and overall means;
- :mod:`.compare`: references (the published results shipped in the package, a folder, a CSV)
  and the comparison of each run with its reference;
- :mod:`.build`: the report of a task list (runs, comparisons, MRL sweeps), decided once;
- :mod:`.render`: the report as terminal text or Markdown; :mod:`.plots`: as PNG figures;
- :mod:`.files`: the report's files, written atomically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qzhou_eval.lazy import lazy_names

if TYPE_CHECKING:
    from qzhou_eval.report.build import BenchmarkInfo, benchmark_info
    from qzhou_eval.report.discover import RunId
    from qzhou_eval.report.render import render_run_summary

__all__ = ["BenchmarkInfo", "RunId", "benchmark_info", "render_run_summary"]
__getattr__ = lazy_names(
    __name__,
    {
        "BenchmarkInfo": ".build",
        "benchmark_info": ".build",
        "RunId": ".discover",
        "render_run_summary": ".render",
    },
)

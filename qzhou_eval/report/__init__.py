"""Leaderboard tables and reproduction reports over results in mteb's layout.

``render_run_summary`` is what the runners print at the end of a run; ``python -m
qzhou_eval.report`` reads whole results folders, compares them with a reference and writes
Markdown, CSV, JSON and PNG files.
"""

from __future__ import annotations

from qzhou_eval.report.summary import render_run_summary

__all__ = ["render_run_summary"]

"""Compare a run with its reference: per task, per type and overall, with a one-line verdict.

Differences are in score points on the tables' ×100 scale and computed from unrounded scores; a
difference is flagged when its absolute value exceeds the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from qzhou_eval.report.aggregate import MEAN_TASK, MEAN_TASK_TYPE, Summary

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCOMPLETE = "incomplete"
DEFAULT_TOLERANCE = 0.01
_EPS = 1e-9  # float noise when the tolerance sits exactly on a difference


@dataclass(frozen=True)
class Delta:
    """One compared value: scores on the 0–1 scale, ``diff`` in points (×100)."""

    name: str
    task_type: str | None
    run: float | None
    reference: float | None
    tolerance: float

    @property
    def diff(self) -> float | None:
        if self.run is None or self.reference is None:
            return None
        return (self.run - self.reference) * 100.0

    @property
    def flagged(self) -> bool:
        diff = self.diff
        return diff is not None and abs(diff) > self.tolerance + _EPS


@dataclass(frozen=True)
class Comparison:
    """A run against its reference."""

    run: Summary
    reference: Summary
    reference_label: str
    tolerance: float
    tasks: tuple[Delta, ...]
    types: tuple[Delta, ...]
    means: tuple[Delta, ...]

    @property
    def flagged_tasks(self) -> list[Delta]:
        return [d for d in self.tasks if d.flagged]

    @property
    def missing_in_run(self) -> list[str]:
        return [d.name for d in self.tasks if d.run is None]

    @property
    def missing_in_reference(self) -> list[str]:
        return [d.name for d in self.tasks if d.reference is None]

    @property
    def verdict(self) -> str:
        if any(d.flagged for d in (*self.tasks, *self.types, *self.means)):
            return NOT_REPRODUCED
        if self.missing_in_run or self.missing_in_reference:
            return INCOMPLETE
        return REPRODUCED

    def verdict_line(self) -> str:
        """``REPRODUCED: ...`` / ``NOT REPRODUCED: ...`` / ``INCOMPLETE: ...`` in one line."""
        tol = f"±{self.tolerance:g} points"
        compared = [d for d in self.tasks if d.diff is not None]
        n = len(self.tasks)
        largest = max(compared, key=lambda d: abs(d.diff or 0.0), default=None)
        worst = ""
        if largest is not None:
            size = abs(largest.diff or 0.0)
            worst = f"; largest |Δ| {size:.2f}" + (f" ({largest.name})" if size > 0 else "")
        gaps = []
        if self.missing_in_run:
            gaps.append(f"missing in the run: {_names(self.missing_in_run)}")
        if self.missing_in_reference:
            gaps.append(f"missing in the reference: {_names(self.missing_in_reference)}")
        verdict = self.verdict
        if verdict == NOT_REPRODUCED:
            flagged = self.flagged_tasks
            listed = ", ".join(f"{d.name} ({d.diff:+.2f})" for d in flagged[:8])
            more = f" and {len(flagged) - 8} more" if len(flagged) > 8 else ""
            text = f"{len(flagged)} of {n} tasks differ by more than {tol}: {listed}{more}"
            if not flagged:
                text = f"the means differ by more than {tol}"
            return f"NOT REPRODUCED: {text}" + (f"; {'; '.join(gaps)}" if gaps else "")
        if verdict == INCOMPLETE:
            return (
                f"INCOMPLETE: {len(compared)} of {n} tasks compared, all within {tol}; "
                + "; ".join(gaps)
            )
        return f"REPRODUCED: all {n} tasks within {tol}{worst}"


def compare(
    run: Summary, reference: Summary, tolerance: float = DEFAULT_TOLERANCE, label: str = ""
) -> Comparison:
    """Compare ``run`` with ``reference`` (both summarized over the same task objects)."""
    ref_tasks = reference.scores.by_name()
    tasks = tuple(
        Delta(
            t.name,
            t.task_type,
            t.score,
            ref_tasks[t.name].score if t.name in ref_tasks else None,
            tolerance,
        )
        for t in run.scores.tasks
    )
    types = tuple(
        Delta(name, name, m.value, _value(reference, name), tolerance)
        for name, m in run.types.items()
    )
    means = tuple(
        Delta(name, None, run.value(name), reference.value(name), tolerance)
        for name in (MEAN_TASK, MEAN_TASK_TYPE)
    )
    return Comparison(run, reference, label, tolerance, tasks, types, means)


def _value(summary: Summary, column: str) -> float | None:
    mean = summary.types.get(column)
    return mean.value if mean is not None else None


def _names(names: list[str], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more

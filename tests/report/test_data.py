"""The report's Data line: where each run's task data came from."""

from __future__ import annotations

from qzhou_eval.report.data import data_line

MIRROR = "mirror /m, files match the pinned revision"


def test_one_source_is_named_alone_also_when_tasks_lack_results():
    # a task without a result is the table's missing one, not a task of another source: the
    # line named the four tasks that had results, as if only they came from the demo suite
    assert data_line({MIRROR: ["A", "B", "C"]}) == MIRROR
    assert data_line({MIRROR: ["A"], "the Hugging Face Hub": ["B", "C"]}) == (
        f"{MIRROR} (A); the Hugging Face Hub (B, C)"
    )

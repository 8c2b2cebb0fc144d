"""The table a runner prints at the end of a run: one model, exactly the tasks it ran."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mteb.abstasks import AbsTask

from qzhou_eval.report.definitions import DEFAULT_DEFINITION, check_definition
from qzhou_eval.report.discover import run_dir
from qzhou_eval.report.render import render_text
from qzhou_eval.report.report import build_report, detect_benchmark


def render_run_summary(
    results_dir: Path,
    tasks: Sequence[AbsTask],
    model_name: str,
    revision: str,
    experiment: str | None = None,
    *,
    definition: str = DEFAULT_DEFINITION,
    benchmark_name: str | None = None,
    compare_published: bool = True,
) -> str:
    """The leaderboard-style table of one run over exactly ``tasks``.

    Score per task, mean per task type, Mean(Task) and Mean(TaskType); missing tasks, splits and
    subsets are listed and incomplete means shown as missing. A task list that is part of a known
    benchmark (``benchmark_name``, else MTEB(eng, v2) / MTEB(cmn, v1)) is labelled as a subset of
    it. For the QZhou models the published results are the reference (``compare_published``).

    Args:
        results_dir: the folder holding ``<org>__<model>/`` (mteb's ``cache_path / "results"``).
        tasks: the task objects the run evaluated (they carry the split/subset filters).
        model_name: ``org/name`` as in the results layout.
        revision: the revision folder.
        experiment: the experiment folder under ``<revision>/experiments/``, if any.
        definition: MultilingualSentiment definition, ``published`` or ``current``.
        benchmark_name: the benchmark ``tasks`` come from, to label subsets.
        compare_published: compare with the published QZhou results when there are some.
    """
    run = run_dir(Path(results_dir), model_name, revision, experiment)
    report = build_report(
        [run],
        tasks,
        detect_benchmark(tasks, benchmark_name),
        [run.path],
        definition=check_definition(definition),
        reference=None if compare_published else False,
        keep_empty=True,
    )
    report.no_reference = []  # a run of any other model needs no "no reference" note
    return f"Run summary: {run.id}\n{render_text(report, per_task=True)}"

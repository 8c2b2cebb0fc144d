"""Two runs of one configuration into one results folder: a task that the other is evaluating
now is left to it, and waited for once this run's own tasks are done.

Without this both evaluated it, and each wrote its result and sealed its record in turn: the
work was done twice, and a run that read the folder between the other's two writes called its
own task's result one of unknown provenance. A run that meets this configuration's record of a
task without a result, touched lately by another live process (:meth:`TaskRecord.claim` raises
:class:`EvaluatedElsewhere`), defers that task; at its end it waits until each deferred task is
either finished (by the other run: its result counts here too, as one finished before) or left
(its writer is gone, or failed it): then this run evaluates it after all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping

from qzhou_eval.runs.identity import TaskRecord

logger = logging.getLogger(__name__)

POLL_S = 2.0
Key = tuple[str, Hashable]  # (task, sweep point)


def wait_for_other_runs(
    records: Mapping[Key, TaskRecord], poll_s: float = POLL_S
) -> tuple[list[Key], list[Key]]:
    """Block until each record is finished by the run that holds it, or left by it; return the
    keys of each kind (finished, left). One line says what is waited for."""
    waiting, finished, left = dict(records), [], []
    said = False
    while waiting:
        writers: set[str] = set()
        for key, record in list(waiting.items()):
            done = record.finished()
            writer = None if done else record.evaluated_elsewhere()
            if writer is not None:
                if writer:
                    writers.add(f"pid {writer.get('pid')} on {writer.get('host')}")
                continue
            # finished by it; or its writer is gone, or failed it: evaluated here
            (finished if done else left).append(key)
            del waiting[key]
        if waiting and not said:
            logger.warning(
                "waiting for another run of this configuration%s, which is evaluating %s into "
                "the same results folder: what it finishes counts for this run too",
                f" ({', '.join(sorted(writers))})" if writers else "",
                ", ".join(dict.fromkeys(task for task, _ in waiting)),
            )
            said = True
        if waiting:
            time.sleep(poll_s)
    return finished, left


def wait_for_deferred(
    deferred: list[Key], by_others: set[Key], records: Mapping[Key, TaskRecord]
) -> list[str]:
    """Wait for the (task, point)s of ``deferred`` (emptied), which another run of this
    configuration was evaluating; add those it finished to ``by_others``; return the tasks to go
    through again, in order: each now has that run's result, or is this run's to evaluate (one
    line says so)."""
    keys = list(deferred)
    deferred.clear()
    finished, left = wait_for_other_runs({k: records[k] for k in keys})
    by_others.update(finished)
    if left:
        logger.warning(
            "the other run left %s without a result (stopped, or failed it): evaluated here",
            ", ".join(dict.fromkeys(task for task, _ in left)),
        )
    return list(dict.fromkeys(task for task, _ in keys))

"""The main process of a pipelined run: the devices encode ahead while processes score.

For each task, in the order of :mod:`.order` (the longest scoring tail first), the main process
derives the model inputs the task will ask for (:mod:`.lookahead`), call by call in a thread
(:mod:`.derivation`) while the task before is encoded, and puts them into the devices' one stream
(:mod:`.feed`), which encodes those the store lacks in the order mteb asks for them, each call as
it is derived. Once the stream takes the task, its evaluations, one per output size, go to the
scoring processes (:mod:`.scoring_pool`), which load the task and read the vectors as they are
stored (:mod:`.handoff`): a retrieval task scores its first corpus chunks while the devices encode
the next. The main process then puts the next task, so that its first chunk is tokenized while the
devices finish this one, at most ``runtime.lookahead`` tasks ahead of the oldest task still being
scored (``all``, the default: no bound; 0: a task is encoded only once every earlier task is
scored). The first two tasks are derived at once and the one whose first call is ready first goes
first; after them, one task is derived at a time. What a scoring process finds missing (the
look-ahead's misses) comes back to the main process, which puts it into the stream and submits the
job again once it is stored: the look-ahead is a hint; scores never depend on it.

Records are claimed by the main process before a job is first submitted (once over all its
attempts) and released when the job fails, exactly as in a sequential run; the first failure stops
the run (the pool is killed, finished results stay) unless ``runtime.continue_on_error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING

from qzhou_eval.encoder.embedder import MissingInputs
from qzhou_eval.pipeline.derivation import Derivation
from qzhou_eval.pipeline.feed import EncodeFeed
from qzhou_eval.pipeline.lookahead import Call, model_input_calls
from qzhou_eval.pipeline.order import encode_order
from qzhou_eval.pipeline.scoring_pool import Job, JobDone, ScoringPool, ScoringProcessDied
from qzhou_eval.runs.identity import EvaluatedElsewhere, TaskRecord, claimed
from qzhou_eval.runs.other_runs import wait_for_deferred
from qzhou_eval.runs.scoring import failed, missing_description

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

    from qzhou_eval.precision import Point
    from qzhou_eval.runs.runner import RunOutcome, RunPlan
    from qzhou_eval.runs.scoring import Encoders

logger = logging.getLogger(__name__)

# Rounds of encoding what a scoring process missed, per job: each round is one encode call of
# mteb's that the look-ahead did not foresee (retrieval: queries, then corpus chunks).
MAX_ATTEMPTS = 50
# After an error or Ctrl-C, how long the encoding stream may take to stop at its next batch and
# store what it computed (one batch's forward; a model still loading is not waited for).
STOP_SECONDS = 10.0


def run_pipeline(
    plan: RunPlan,
    records: dict[tuple[str, Point], TaskRecord],
    encoders: Encoders,
    outcome: RunOutcome,
    load_model: bool = False,
) -> None:
    """Evaluate every task of ``plan`` at every dimension; see the module docstring.
    ``load_model``: the model will surely be needed: it loads in this thread at once, while the
    first two tasks are derived (else the stream loads it at the first input the store lacks)."""
    runtime = plan.runtime
    embedder = encoders.embedder
    pool = ScoringPool(runtime.scoring_workers, plan, getattr(embedder.store, "damaged", ()))
    embedder.on_stored = pool.handoff.stored  # waiting scoring processes look again
    feed = EncodeFeed(embedder) if runtime.encode else None  # the devices' one stream
    encoding: dict[Future[None], str | Job] = {}  # a task's look-ahead, or a job's misses
    inflight: dict[Future[JobDone], Job] = {}
    unfinished: dict[str, int] = {}  # task -> its jobs not done yet
    started: dict[str, float] = {}  # task -> when its turn came
    # the records of (task, point)s in flight, over every attempt; released if they fail
    claims: dict[tuple[str, Point], ExitStack] = {}
    handed_back: dict[tuple[str, Point], int] = {}  # inputs its earlier attempts missed
    read: set[str] = set()  # tasks whose reads of the store are counted (encode=false)
    tasks = {t.metadata.name: t for t in plan.tasks}
    order = encode_order(plan.tasks)  # the longest scoring tail first
    if order != list(plan.tasks):
        logger.info("encoding order: %s", ", ".join(t.metadata.name for t in order))

    def submit(job: Job) -> None:
        key = (job.task, job.point)
        if key not in claims:  # (a later attempt's record is claimed already)
            record = records[key]
            outcome.claiming(key, record, runtime.overwrite)
            claim = ExitStack()
            try:
                claim.enter_context(claimed(record, runtime.overwrite))
            except EvaluatedElsewhere:  # left to it; waited for at the end
                outcome.deferred.append(key)
                unfinished[job.task] -= 1
                return
            claim.enter_context(record.live())  # a live run's: never stale, nor left
            claims[key] = claim
        inflight[pool.submit(job)] = job

    def finish(job: Job, error: BaseException | None) -> None:
        claim = claims.pop((job.task, job.point))
        if error is None:
            claim.close()  # the record stays: its result exists
        else:
            claim.__exit__(type(error), error, error.__traceback__)  # the record goes
        unfinished[job.task] -= 1
        if not unfinished[job.task]:  # from its look-ahead to its last evaluation
            outcome.task_seconds[job.task] = time.monotonic() - started[job.task]

    def settle(block: bool, until: Future[None] | None = None) -> None:
        """Take what is done of the jobs and encodings; ``block``: wait for one of them, or
        for ``until``."""
        waiting = [*inflight, *encoding, *([until] if until is not None else [])]
        if not waiting:
            return
        done, _ = wait(waiting, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            if future in encoding:
                after = encoding.pop(future)
                future.result()  # the stream failed: the run stops
                if isinstance(after, Job):
                    submit(after)  # what it missed is stored: again
                else:
                    pool.handoff.finished(after)  # the task's look-ahead is all stored
                continue
            if future not in inflight:  # ``until``
                continue
            job = inflight.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                raise died(job) from None
            except MissingInputs as e:
                if not runtime.encode:
                    finish(job, e)
                    task = tasks[job.task]
                    outcome.missing[job.task] = missing_description(plan, task, embedder, e)
                    continue
                if job.attempt >= MAX_ATTEMPTS:  # the store does not keep what is written
                    finish(job, e)
                    raise RuntimeError(
                        f"{job.task}: {len(e.inputs)} input(s) still missing from the embedding "
                        f"store after {job.attempt} rounds of encoding them"
                    ) from None
                assert feed is not None
                key = (job.task, job.point)
                handed_back[key] = handed_back.get(key, 0) + len(e.inputs)
                # the whole call that missed them: batched as the sequential runner would
                missing = feed.put_missing(job.task, e.side, e.call, e.call_spans)
                encoding[missing] = Job(job.task, job.point, job.attempt + 1)
                continue
            except Exception as e:
                finish(job, e)
                if failed(plan, tasks[job.task], e, outcome):
                    continue
                raise
            finish(job, None)
            if not runtime.encode and result.asked and job.task not in read:
                # every vector came from the store (read in the process); counted for one of
                # the task's points: each reads the same vectors, as in a sequential run
                read.add(job.task)
                outcome.stored_inputs += result.stored
            # what mteb asked for, less what earlier attempts missed (encoded on demand)
            missed = handed_back.pop((job.task, job.point), 0)
            if result.asked:  # (nothing asked: finished already, here or by another run)
                asked, stored = outcome.coverage.get(job.task, (0, 0))
                outcome.coverage[job.task] = (
                    asked + result.asked,
                    stored + result.stored - missed,
                )
            if result.waited:
                outcome.overlapped.add(job.task)
            outcome.add(job.task, encoders(job.task, job.point), result.errors)

    derived: dict[int, Derivation] = {}  # task position -> its look-ahead

    def derive(i: int) -> None:  # in a thread, while the devices encode the task before
        if runtime.encode and i < len(order) and i not in derived:
            # the first two at once (the quicker may go first), then one at a time
            after = derived.get(i - 1) if i >= 2 else None
            task = order[i]
            derived[i] = Derivation(
                task.metadata.name, partial(calls_ahead, plan, task, records), after
            )

    try:
        derive(0)
        derive(1)
        if load_model:
            embedder.load()
        if quicker_second({k: d.first for k, d in derived.items()}):  # the devices start sooner
            order[0], order[1] = order[1], order[0]
            derived[0], derived[1] = derived[1], derived[0]
        for i, task in enumerate(order):
            name = task.metadata.name
            while (
                runtime.lookahead is not None
                and sum(1 for n in unfinished.values() if n) > runtime.lookahead
            ):
                settle(block=True)
            wanted = derived[i] if runtime.encode else None
            if wanted is not None and not wanted.first.result():
                wanted = None  # nothing to encode ahead for it
            derive(i + 1)
            if feed is not None and wanted is not None:
                encoding[feed.put(name, wanted)] = name  # its handoff ends once stored
                while not feed.ready.done():  # its encoding starts: the next may follow
                    settle(block=True, until=feed.ready)
            else:
                pool.handoff.finished(name)  # before anything can block on the task's jobs
            started[name] = time.monotonic()
            unfinished[name] = len(plan.points)
            for point in plan.points:  # its processes load its data and wait for its inputs
                submit(Job(name, point))
            settle(block=False)
        while inflight or encoding:
            settle(block=True)
        while outcome.deferred:  # what another run was evaluating: its result, or ours now
            keys = list(outcome.deferred)
            wait_for_deferred(outcome.deferred, outcome.by_others, records)
            for name, point in keys:
                unfinished[name] += 1
                submit(Job(name, point))
            while inflight or encoding:
                settle(block=True)
    except BaseException as e:
        pool.close(force=True)
        if feed is not None:
            feed.close(force=True, timeout=STOP_SECONDS)
        for claim in claims.values():
            claim.__exit__(type(e), e, e.__traceback__)
        raise
    finally:
        embedder.on_stored = None
    if feed is not None:
        feed.close()
    pool.close()


def quicker_second(first: dict[int, Future[bool]]) -> bool:
    """Whether the second task's first call is derived before the first's (both are derived at
    once at the start): then it is encoded first, while the first is derived, instead of the
    devices waiting for that. Only the first two swap: the order after them stands."""
    if 1 not in first:
        return False
    wait([first[0], first[1]], return_when=FIRST_COMPLETED)
    return first[1].done() and not first[0].done()


def died(job: Job) -> ScoringProcessDied:
    return ScoringProcessDied(
        f"a scoring process died while {job.task} was being scored (killed, or out of "
        "memory); finished results and stored vectors are kept: rerun the same command to resume"
    )


def calls_ahead(
    plan: RunPlan, task: AbsTask, records: dict[tuple[str, Point], TaskRecord]
) -> Iterator[Call] | None:
    """The model inputs of each of mteb's calls for ``task``, lazily, in its order; None when
    nothing will be asked (finished at every point) or the task's type is not derived."""
    name = task.metadata.name
    if not plan.pending(records, name):
        return None  # finished at every point: nothing will be asked
    calls = model_input_calls(task, plan.recipe)
    if calls is None:
        logger.info("look-ahead: %s (%s) not derived, encoded on demand", name, task.metadata.type)
    return calls


def coverage_line(
    coverage: dict[str, tuple[int, int]], overlapped: Collection[str] = ()
) -> str | None:
    """The run log's line on the look-ahead: how much of what mteb asked for came from the store
    (stored ahead, or waited for while the devices encoded it) per task, and how many tasks
    scored while their inputs were being encoded (None without a look-ahead)."""
    if not coverage:
        return None
    below = {t: stored / asked for t, (asked, stored) in coverage.items() if stored < asked}
    text = (
        f"look-ahead coverage: every input came from the store on "
        f"{len(coverage) - len(below)} of {len(coverage)} task(s)"
    )
    if overlapped:
        text += f" ({len(overlapped)} scored while their inputs were encoded)"
    if below:
        text += "; below: " + ", ".join(f"{t} {100 * r:.1f}%" for t, r in sorted(below.items()))
    return text

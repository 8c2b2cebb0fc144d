"""The texts a loaded task will ask the encoder for, known before mteb asks: the look-ahead.

The embedding store keys a vector by the exact model input, so what this module derives is only a
hint: an input it misses is encoded when mteb asks for it, an input it adds costs encoding time,
and neither changes a score (on a GPU, beyond the last bits of a vector batched otherwise than
the sequential runner would: see below). Per task type, mteb 2.26's rules (which splits and
subsets, which columns, which prompt type per side):

- Retrieval and Reranking: every query (``PromptType.query``) and every corpus document
  (``PromptType.document``) of each evaluated split and subset, as mteb's dataloaders build their
  text (title and text joined and stripped; instructions and conversations folded in). A
  reranking task's corpus is encoded whole, in one call, then each query's candidates ranked
  (``rerank_top_ranked_documents``). mteb searches a whole corpus in chunks
  (``corpus_chunk_size`` of its search wrapper, 50,000 documents), one encode call each, so
  that the scoring process searches one chunk while the devices encode the next.
- STS and PairClassification: both text columns, with the task's ``input1/2_prompt_type``.
- Classification: the union of the training undersamples of all experiments (the task's own
  sampler, from a copy of the task, so the task's state is untouched; where that sampler is not
  there, the whole training split), then the test split, mteb's two calls in its order.
- Clustering (v2): the documents mteb embeds: its random sample (``max_document_to_embed`` /
  ``max_fraction_of_documents_to_embed``) drawn the way ``evaluate`` draws it, from a copy of the
  task's generator, split by split; legacy clustering: every sentence.
- Other types: not derived (None); mteb's requests are encoded on demand.

Each of mteb's encode calls is derived as a call of its own, in mteb's order
(:func:`model_input_calls`; :func:`model_inputs` groups them by side, with a break between two
calls): the embedder batches each call as the sequential runner would (see
:func:`qzhou_eval.encoder.embedder.chunk_bounds`), so that on a GPU, whose vectors depend in
their last bits on the batch, the look-ahead stores the sequential runner's vectors. The calls
are derived lazily, one when the one before was taken: the devices start on a task's first call
(a retrieval task's queries) while its corpus is still being derived chunk by chunk.

mteb has no public API for any of this; ``_retrieval_texts`` (the text of each query or document
as the model reads it) and ``_undersample_data`` are its private helpers, used so that the
derived texts follow mteb's rules rather than a copy of them. A change in mteb lowers the hit
rate, which the run log reports per task, and never a score.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from mteb.abstasks import AbsTask
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering import AbsTaskClustering
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.types import PromptType

from qzhou_eval.encoder.embedder import VectorStore
from qzhou_eval.errors import one_line
from qzhou_eval.fresh_tasks import evaluation_copy
from qzhou_eval.recipe import Recipe, side_of

logger = logging.getLogger(__name__)

try:  # what ``dataset[column]`` returns since datasets 4 (a list before)
    from datasets.arrow_dataset import Column as _COLUMN
except ImportError:
    _COLUMN = ()  # type: ignore[assignment,misc]

Span = tuple[int, int]


class Asked(NamedTuple):
    """One of mteb's encode calls: its prompt type and texts (before the recipe)."""

    prompt_type: PromptType | None
    texts: Any


class SideInputs(NamedTuple):
    """The exact model inputs of one side, their task-text spans, and the breaks between
    mteb's encode calls (see :meth:`qzhou_eval.encoder.embedder.Embedder.fill`)."""

    inputs: list[str]
    spans: list[Span]
    breaks: list[int]


class Call(NamedTuple):
    """One of mteb's encode calls, derived: its side and model inputs (no breaks)."""

    side: str
    inputs: SideInputs


Inputs = dict[str, SideInputs]  # side -> its inputs


# the task types whose inputs are derived
_DERIVED = (
    AbsTaskRetrieval,
    AbsTaskSTS,
    AbsTaskPairClassification,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskClusteringLegacy,
)


def derived(task: AbsTask) -> bool:
    """Whether ``task``'s type is one whose inputs are derived (the others: on demand)."""
    return task.metadata.modalities == ["text"] and isinstance(task, _DERIVED)


def _mteb_calls(task: AbsTask) -> Iterator[Asked]:
    """The encode calls mteb makes evaluating the loaded ``task`` (a derived type), in its
    order: (prompt type, texts before the recipe), each derived only when the one before was taken,
    so that the devices start on the first while the rest is derived (a large corpus's chunks
    one by one: its text is mteb's ``datasets.map`` over every document)."""
    # mteb.evaluate runs split by split, and each split subset by subset
    for split in task.eval_splits:
        for subset in task.hf_subsets:
            splits = _subset_data(task, subset)  # split -> that split's data
            data = splits[split]
            if isinstance(task, AbsTaskRetrieval):
                from mteb._create_dataloaders import _retrieval_texts

                yield Asked(PromptType.query, _retrieval_texts(data["queries"], PromptType.query))
                # a full-corpus search encodes the corpus chunk by chunk; reranking the
                # pre-ranked candidates (top_ranked) encodes them in one call
                corpus = data["corpus"]
                size = _corpus_chunk_size() if data.get("top_ranked") is None else 0
                size = size or max(1, len(corpus))
                for start in range(0, len(corpus), size):
                    chunk = corpus if size >= len(corpus) else _rows(corpus, start, size)
                    yield Asked(PromptType.document, _retrieval_texts(chunk, PromptType.document))
            elif isinstance(task, AbsTaskSTS):
                first, second = task.column_names
                yield Asked(task.input1_prompt_type, data[first])
                yield Asked(task.input2_prompt_type, data[second])
            elif isinstance(task, AbsTaskPairClassification):
                yield Asked(task.input1_prompt_type, data[task.input1_column_name])
                yield Asked(task.input2_prompt_type, data[task.input2_column_name])
            elif isinstance(task, AbsTaskClassification):  # as mteb: the training sample first
                yield Asked(None, _training_texts(task, splits[task.train_split]))
                yield Asked(None, data[task.input_column_name])
            elif isinstance(task, AbsTaskClustering):
                yield Asked(None, _clustering_sample(task, data))
            else:  # legacy clustering
                yield Asked(None, data[task.input_column_name])


def _rows(dataset: Any, start: int, size: int) -> Any:
    """Rows ``start`` to ``start + size`` of a datasets table (mteb's maps are row by row)."""
    return dataset.select(range(start, min(start + size, len(dataset))))


def _corpus_chunk_size() -> int:
    """The documents mteb's retrieval search encodes per call: the default of the search
    wrapper that ``AbsTaskRetrieval`` makes (mteb has no other public place for it); 0 where
    that wrapper does not say (the corpus is then derived as one call)."""
    from mteb.abstasks import retrieval

    parameter = inspect.signature(retrieval.SearchEncoderWrapper).parameters.get(
        "corpus_chunk_size"
    )
    default = parameter.default if parameter is not None else None
    return default if isinstance(default, int) and default > 0 else 0


def _subset_data(task: AbsTask, subset: str) -> Any:
    """Split -> data of one subset, as ``AbsTask.evaluate`` indexes it."""
    dataset = task.dataset
    assert dataset is not None
    if subset not in dataset and subset == "default":
        return dataset
    return dataset[subset]


def _read(values: Iterable[Any]) -> list[Any]:
    """``values`` as a list; a datasets column read at once: iterated, it formats row by row
    (9x slower; 0.7 s for T2Retrieval's 118,605 documents, in the main process, while the
    devices wait for the task)."""
    return values[:] if isinstance(values, _COLUMN) else list(values)


def _flat_texts(values: Iterable[Any]) -> list[str]:
    values = _read(values)
    out: list[str] = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(_flat_texts(v))
    return out


def _training_texts(task: Any, train: Any) -> list[str]:
    """The union of the training undersamples of all experiments (the task's own sampler)."""
    column = task.input_column_name
    try:
        sim_idxs, union = None, set()
        for i in range(task.n_experiments):
            _, sim_idxs, selected = task._undersample_data(train, i, sim_idxs)
            union.update(selected)
    except (AttributeError, TypeError, ValueError):  # another mteb: every candidate
        return _read(train[column])
    return _read(train.select(sorted(union))[column])


def _clustering_sample(task: Any, rows: Any) -> list[str]:
    """The documents ``AbsTaskClustering._evaluate_subset`` embeds, drawn the same way from the
    (copied) task's own generator, which this advances as evaluate does."""
    limit = task.max_document_to_embed
    if task.max_fraction_of_documents_to_embed is not None:
        limit = int(task.max_fraction_of_documents_to_embed * len(rows))
    if limit is None:
        return _read(rows[task.input_column_name])
    picked = task.rng_state.sample(range(len(rows)), k=min(len(rows), limit))
    return _read(rows.select(picked)[task.input_column_name])


def model_input_calls(task: AbsTask, recipe: Recipe) -> Iterator[Call] | None:
    """The exact model inputs (and task-text spans) of each of mteb's encode calls for ``task``,
    as :class:`~qzhou_eval.encoder.RecipeEncoder` formats them, in mteb's order; None when the
    task's type is not derived. Lazy: the data of a copy are loaded (when the task is not) at the
    first call taken, and each call is derived when the one before was taken. Raises what loading
    or deriving raises, mid-way too (the caller decides: the look-ahead is a hint)."""
    if not derived(task):
        return None
    return _formatted_calls(task, recipe)


def _formatted_calls(task: AbsTask, recipe: Recipe) -> Iterator[Call]:
    name = task.metadata.name
    loaded = task
    if not task.data_loaded:
        loaded = evaluation_copy(task)
        loaded.load_data()
    try:
        # a copy of the loaded task: its samplers' state is advanced as evaluate advances it
        for prompt_type, texts in _mteb_calls(evaluation_copy(loaded)):
            side = side_of(prompt_type)
            formatted = [recipe.format_with_span(name, side, t) for t in _flat_texts(texts)]
            if formatted:
                inputs = [x for x, _ in formatted]
                yield Call(side, SideInputs(inputs, [span for _, span in formatted], []))
    finally:
        if loaded is not task:
            loaded.unload_data()


def model_inputs(task: AbsTask, recipe: Recipe) -> Inputs | None:
    """Every model input per side that ``task`` will ask for, with a break between two of
    mteb's calls (:func:`model_input_calls`, all at once); None when the task's type is not
    derived, or its data do not load or its derivation fails (logged: a hint only)."""
    calls = model_input_calls(task, recipe)
    if calls is None:
        return None
    out: Inputs = {}
    try:
        for side, (texts, spans, _) in calls:
            inputs, side_spans, breaks = out.setdefault(side, SideInputs([], [], []))
            if inputs:
                breaks.append(len(inputs))
            inputs.extend(texts)
            side_spans.extend(spans)
    except Exception as e:  # a hint only: never stop a run for it
        logger.info("look-ahead: %s not derived (%s)", task.metadata.name, one_line(e))
        return None
    return out


def count_missing(task: AbsTask, recipe: Recipe, store: VectorStore) -> int | None:
    """How many of ``task``'s derived model inputs ``store`` lacks (None: not derived)."""
    wanted = model_inputs(task, recipe)
    if wanted is None:
        return None
    return sum(
        sum(v is None for v in store.get_many(side, list(dict.fromkeys(inputs))))
        for side, (inputs, _, _) in wanted.items()
    )

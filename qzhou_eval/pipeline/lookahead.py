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
  (``corpus_chunk_size`` of its search wrapper, 50,000 documents), one encode call each:
  the derived documents say where each chunk ends (:attr:`SideInputs.breaks`), so that the
  devices finish one chunk before they start the next and the scoring process searches it while
  they encode the next.
- STS and PairClassification: both text columns, with the task's ``input1/2_prompt_type``.
- Classification: the union of the training undersamples of all experiments (the task's own
  sampler, from a copy of the task, so the task's state is untouched; where that sampler is not
  there, the whole training split), then the test split, mteb's two calls in its order.
- Clustering (v2): the documents mteb embeds: its random sample (``max_document_to_embed`` /
  ``max_fraction_of_documents_to_embed``) drawn the way ``evaluate`` draws it, from a copy of the
  task's generator, split by split; legacy clustering: every sentence.
- Other types: not derived (None); mteb's requests are encoded on demand.

Each of mteb's encode calls is derived as a call of its own, in mteb's order (a break between
two calls of one prompt type): the embedder batches each call as the sequential runner would
(see :func:`qzhou_eval.encoder.embedder.chunk_bounds`), so that on a GPU, whose vectors depend
in their last bits on the batch, the look-ahead stores the sequential runner's vectors.

mteb has no public API for any of this; ``_retrieval_texts`` (the text of each query or document
as the model reads it) and ``_undersample_data`` are its private helpers, used so that the
derived texts follow mteb's rules rather than a copy of them. A change in mteb lowers the hit
rate, which the run log reports per task, and never a score.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from mteb.abstasks import AbsTask
from mteb.types import PromptType

from qzhou_eval.encoder.embedder import VectorStore
from qzhou_eval.fresh_tasks import evaluation_copy
from qzhou_eval.recipe import Recipe, side_of

logger = logging.getLogger(__name__)

try:  # what ``dataset[column]`` returns since datasets 4 (a list before)
    from datasets.arrow_dataset import Column as _COLUMN
except ImportError:
    _COLUMN = ()  # type: ignore[assignment,misc]

Span = tuple[int, int]


class Asked(NamedTuple):
    """Texts of one prompt type in the order mteb asks for them, and the positions where one of
    its encode calls ends and the next begins (retrieval corpus chunks; not every call)."""

    texts: list[str]
    breaks: list[int]


class SideInputs(NamedTuple):
    """The exact model inputs of one side, their task-text spans, and the breaks between
    mteb's encode calls (see :meth:`qzhou_eval.encoder.embedder.Embedder.fill`)."""

    inputs: list[str]
    spans: list[Span]
    breaks: list[int]


Expected = dict[PromptType | None, Asked]
Inputs = dict[str, SideInputs]  # side -> its inputs


def expected_texts(task: AbsTask) -> Expected | None:
    """Texts (before the recipe) that evaluating the loaded ``task`` asks for, per prompt type.

    None when the task's type is not derived. Never raises for a task whose data is unusual: a
    derivation that fails is logged and returns None (the inputs are encoded on demand instead).
    """
    if not task.data_loaded:
        raise ValueError(f"{task.metadata.name}: load the data first")
    try:
        return _derive(evaluation_copy(task))
    except Exception as e:  # a hint only: never stop a run for it
        logger.info("look-ahead: %s not derived (%s: %s)", task.metadata.name, type(e).__name__, e)
        return None


def _derive(task: AbsTask) -> Expected | None:
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.clustering import AbsTaskClustering
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
    from mteb.abstasks.pair_classification import AbsTaskPairClassification
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS

    if task.metadata.modalities != ["text"]:
        return None
    out: Expected = {}

    def add(prompt_type: PromptType | None, texts: Iterable[Any], chunk: int = 0) -> None:
        """``chunk``: mteb encodes these ``chunk`` at a time, one call each (0: in one call)."""
        asked = out.setdefault(prompt_type, Asked([], []))
        flat = _flat_texts(texts)
        size = chunk or max(1, len(flat))
        for start in range(0, len(flat), size):
            if asked.texts:
                asked.breaks.append(len(asked.texts))
            asked.texts.extend(flat[start : start + size])

    # mteb.evaluate runs split by split, and each split subset by subset
    for split in task.eval_splits:
        for subset in task.hf_subsets:
            splits = _subset_data(task, subset)  # split -> that split's data
            data = splits[split]
            if isinstance(task, AbsTaskRetrieval):
                from mteb._create_dataloaders import _retrieval_texts

                add(PromptType.query, _retrieval_texts(data["queries"], PromptType.query))
                # a full-corpus search encodes the corpus chunk by chunk; reranking the
                # pre-ranked candidates (top_ranked) encodes them in one call
                full_search = data.get("top_ranked") is None
                add(
                    PromptType.document,
                    _retrieval_texts(data["corpus"], PromptType.document),
                    _corpus_chunk_size() if full_search else 0,
                )
            elif isinstance(task, AbsTaskSTS):
                first, second = task.column_names
                add(task.input1_prompt_type, data[first])
                add(task.input2_prompt_type, data[second])
            elif isinstance(task, AbsTaskPairClassification):
                add(task.input1_prompt_type, data[task.input1_column_name])
                add(task.input2_prompt_type, data[task.input2_column_name])
            elif isinstance(task, AbsTaskClassification):  # as mteb: the training sample first
                add(None, _training_texts(task, splits[task.train_split]))
                add(None, data[task.input_column_name])
            elif isinstance(task, AbsTaskClustering):
                add(None, _clustering_sample(task, data))
            elif isinstance(task, AbsTaskClusteringLegacy):
                add(None, data[task.input_column_name])
            else:
                return None
    return out


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


def _flat_texts(values: Iterable[Any]) -> list[str]:
    if isinstance(values, _COLUMN):  # read at once: a datasets column iterates row by row,
        values = values[:]  # formatting each (0.7 s for T2Retrieval's 118,605 documents)
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
        return list(train[column])
    return list(train.select(sorted(union))[column])


def _clustering_sample(task: Any, rows: Any) -> list[str]:
    """The documents ``AbsTaskClustering._evaluate_subset`` embeds, drawn the same way from the
    (copied) task's own generator, which this advances as evaluate does."""
    limit = task.max_document_to_embed
    if task.max_fraction_of_documents_to_embed is not None:
        limit = int(task.max_fraction_of_documents_to_embed * len(rows))
    if limit is None:
        return list(rows[task.input_column_name])
    picked = task.rng_state.sample(range(len(rows)), k=min(len(rows), limit))
    return list(rows.select(picked)[task.input_column_name])


def model_inputs(task: AbsTask, recipe: Recipe) -> Inputs | None:
    """The exact model inputs (and task-text spans) per side that ``task`` will ask for, as
    :class:`~qzhou_eval.encoder.RecipeEncoder` formats them; loads the data of a copy when the
    task is not loaded. None when the task's type is not derived."""
    loaded = task
    if not task.data_loaded:
        loaded = evaluation_copy(task)
        loaded.load_data()
    try:
        expected = expected_texts(loaded)
    finally:
        if loaded is not task:
            loaded.unload_data()
    if expected is None:
        return None
    name = task.metadata.name
    out: Inputs = {}
    for prompt_type, (texts, breaks) in expected.items():
        side = side_of(prompt_type)
        inputs, spans, side_breaks = out.setdefault(side, SideInputs([], [], []))
        if inputs:
            side_breaks.append(len(inputs))
        side_breaks.extend(len(inputs) + b for b in breaks)
        for text in texts:
            formatted, span = recipe.format_with_span(name, side, text)
            inputs.append(formatted)
            spans.append(span)
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

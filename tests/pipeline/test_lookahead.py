"""The look-ahead derives every input mteb asks for, on every demo task type: evaluating a task
with an embedder that may only read what the look-ahead stored never misses."""

from __future__ import annotations

import itertools

import mteb
import numpy as np
import pytest
from mteb.abstasks import retrieval as mteb_retrieval
from mteb.models import SearchEncoderWrapper

from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.demo import get_demo_tasks
from qzhou_eval.encoder import RecipeEncoder
from qzhou_eval.encoder.embedder import Embedder, MemoryStore, MissingInputs
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.pipeline.lookahead import count_missing, model_inputs
from qzhou_eval.recipe import recipe_from_config
from qzhou_eval.runs.identity import build_model_meta

TASKS = [
    (suite, t.metadata.name) for suite in ("demo_eng", "demo_zho") for t in get_demo_tasks(suite)
]


def _no_model():
    raise AssertionError("the model is never needed")


class SmallChunks(SearchEncoderWrapper):
    """mteb's search with a corpus chunk of 7 documents: the demo corpora span several chunks."""

    def __init__(self, model, corpus_chunk_size: int = 7, index_backend=None) -> None:
        super().__init__(model, corpus_chunk_size, index_backend)


@pytest.mark.parametrize(("suite", "name"), TASKS)
def test_every_input_mteb_asks_for_was_derived(suite, name, monkeypatch):
    monkeypatch.setattr(mteb_retrieval, "SearchEncoderWrapper", SmallChunks)
    cfg = compose_config("mteb", ["model=minilm", f"benchmark={suite}"])
    spec = model_spec(cfg.model)
    # an instructed recipe: the derived inputs must carry the instruction exactly as mteb's do
    recipe = recipe_from_config(
        compose_config("mteb", ["model=qzhou_embedding"]).prompts, KNOWN_TASKS
    )
    (task,) = [t for t in get_demo_tasks(suite) if t.metadata.name == name]
    store = MemoryStore()
    wanted = model_inputs(task, recipe)
    assert wanted is not None and not task.data_loaded  # derived from a copy, left unloaded
    rng = np.random.default_rng(0)
    for side, (inputs, _, _) in wanted.items():
        store.put_many(side, inputs, rng.standard_normal((len(inputs), 8)).astype(np.float32))
    assert count_missing(task, recipe, store) == 0
    embedder = Embedder(_no_model, tokens_per_batch=1, max_batch_size=1, store=store, encode=False)
    encoder = RecipeEncoder(
        meta=build_model_meta(spec, recipe, dim=None, variant=None),
        recipe=recipe,
        embedder=embedder,
    )
    calls: list[tuple[str, list[str]]] = []  # mteb's encode calls: (side, model inputs)
    embed = embedder.embed

    def recorded(inputs, side, **kwargs):
        calls.append((side, list(inputs)))
        return embed(inputs, side, **kwargs)

    embedder.embed = recorded
    mteb.evaluate(encoder, task, cache=None, raise_error=True, show_progress_bar=False)
    assert embedder.asked_inputs > 0
    assert embedder.stored_inputs == embedder.asked_inputs  # coverage 100%
    # the breaks: mteb's calls, each derived as it makes it, in its order (a corpus searched in
    # chunks: exactly those chunks; a reranking's: the whole corpus, once), so that the devices
    # finish one before the next and batch each as the sequential runner does
    for side, (inputs, _, breaks) in wanted.items():
        bounds = [0, *breaks, len(inputs)]
        groups = [inputs[a:b] for a, b in itertools.pairwise(bounds)]
        asked = [c for s, c in calls if s == side]
        assert groups == asked, side
        if task.metadata.type == "Retrieval" and side == "document":
            assert len(asked) > 1


def test_an_input_not_stored_is_named_by_side():
    (task,) = [t for t in get_demo_tasks("demo_eng") if t.metadata.type == "STS"]
    recipe = recipe_from_config(compose_config("mteb", ["model=minilm"]).prompts, KNOWN_TASKS)
    store = MemoryStore()
    assert count_missing(task, recipe, store) == 47  # every distinct sentence of the pairs
    embedder = Embedder(_no_model, tokens_per_batch=1, max_batch_size=1, store=store, encode=False)
    with pytest.raises(MissingInputs) as e:
        embedder.embed(["a", "b", "a"], "none")
    assert e.value.side == "none" and e.value.inputs == ["a", "b"]


def test_a_datasets_column_is_read_at_once_and_flattened_in_order(monkeypatch):
    import datasets

    from qzhou_eval.pipeline import lookahead

    rows = datasets.Dataset.from_dict({"t": [["a", "b"], ["c"]], "s": ["x", "y"]})
    # read as one slice, never row by row
    monkeypatch.setattr(datasets.arrow_dataset.Column, "__iter__", lambda self: iter(()))
    assert lookahead._flat_texts(rows["t"]) == ["a", "b", "c"]
    assert lookahead._flat_texts(rows["s"]) == ["x", "y"]


def test_a_corpus_is_derived_chunk_by_chunk_as_the_calls_are_taken(monkeypatch):
    import mteb._create_dataloaders as loaders

    from qzhou_eval.pipeline.lookahead import model_input_calls

    monkeypatch.setattr(mteb_retrieval, "SearchEncoderWrapper", SmallChunks)
    derived: list[int] = []  # rows of each of mteb's text helper calls
    texts = loaders._retrieval_texts

    def counted(dataset, prompt_type):
        derived.append(len(dataset))
        return texts(dataset, prompt_type)

    monkeypatch.setattr(loaders, "_retrieval_texts", counted)
    recipe = recipe_from_config(compose_config("mteb", ["model=minilm"]).prompts, KNOWN_TASKS)
    (task,) = [t for t in get_demo_tasks("demo_eng") if t.metadata.type == "Retrieval"]
    calls = model_input_calls(task, recipe)
    assert calls is not None and derived == []  # nothing before the first call is taken
    queries = next(calls)
    assert queries.side == "query" and len(derived) == 1
    first_chunk = next(calls)
    assert first_chunk.side == "document" and derived[1] == len(first_chunk.inputs.inputs) == 7
    rest = list(calls)
    assert len(rest) == len(derived) - 2 >= 1  # one helper call per chunk, as each is taken
    # the same inputs as derived at once: chunk by chunk, mteb's texts of every document
    wanted = model_inputs(task, recipe)
    documents = [x for c in [first_chunk, *rest] for x in c.inputs.inputs]
    assert wanted is not None and wanted["document"].inputs == documents
    assert wanted["document"].breaks == list(range(7, len(documents), 7))


@pytest.mark.parametrize(
    ("suite", "name"),
    [(s, n) for s, n in TASKS if "Retrieval" not in n and "Reranking" not in n],
)
def test_text_columns_of_a_derived_task_are_never_read_row_by_row(suite, name, monkeypatch):
    # a datasets column iterated row by row formats each row: 9x slower than one slice, time
    # the main process spends while the devices wait for the task (retrieval's texts are
    # mteb's own map)
    import datasets

    def row_by_row(self):
        raise AssertionError("a datasets column read row by row")

    recipe = recipe_from_config(compose_config("mteb", ["model=minilm"]).prompts, KNOWN_TASKS)
    (task,) = [t for t in get_demo_tasks(suite) if t.metadata.name == name]
    task.load_data()  # (the derivation reads a loaded task's columns)
    monkeypatch.setattr(datasets.arrow_dataset.Column, "__iter__", row_by_row)
    wanted = model_inputs(task, recipe)  # (None: the derivation failed, and logged why)
    assert wanted is not None and all(inputs for inputs, _, _ in wanted.values())

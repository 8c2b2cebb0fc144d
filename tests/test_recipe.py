import hashlib
import json
import shutil

import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.config.deprecation import forget_warnings
from qzhou_eval.errors import ConfigError
from qzhou_eval.recipe import (
    OPTIONAL_KEYS,
    RECIPE_KEYS,
    RENAMED_KEYS,
    Recipe,
    recipe_from_config,
    side_of,
)

QZ = Recipe(
    name="t",
    instruction_template="Instruct: {instruction}\nQuery: ",
    instructions={"A": "Do a", "B": "Do b"},
    instruction_on_all_texts=frozenset({"B"}),
    empty_text="Null",
)


def recipe_cfg(**keys) -> dict:
    """A recipe config stating every key (as conf/prompts/none.yaml does), with ``keys`` set."""
    base = {
        "name": "r",
        "instruction_template": "{instruction}",
        "instructions": {},
        "instruction_on_all_texts": [],
        "empty_text": None,
        "input_template": None,
        "on_missing_instruction": "error",
    }
    return {**base, **keys}


def test_query_gets_prefix_document_does_not():
    assert QZ.format("A", "query", "x") == "Instruct: Do a\nQuery: x"
    assert QZ.format("A", "document", "x") == "x"
    assert QZ.format("A", "none", "x") == "x"


def test_instruction_on_all_texts_prefixes_every_side():
    for side in ("query", "document", "none"):
        assert QZ.format("B", side, "x") == "Instruct: Do b\nQuery: x"


def test_only_exactly_empty_text_becomes_null():
    assert QZ.format("A", "query", "") == "Instruct: Do a\nQuery: Null"
    assert QZ.format("A", "document", "") == "Null"
    assert QZ.format("A", "document", " ") == " "


def test_input_template_wraps_prefix_and_text():
    r = Recipe(
        name="eol",
        instruction_template="Instruct: {instruction}\nQuery: ",
        instructions={"A": "Do a"},
        input_template="This sentence: <|im_start|>“{text}” means in one word: “",
    )
    assert r.format("A", "query", "hi") == (
        "This sentence: <|im_start|>“Instruct: Do a\nQuery: hi” means in one word: “"
    )
    assert (
        r.format("A", "document", "{x}") == "This sentence: <|im_start|>“{x}” means in one word: “"
    )


def test_unknown_task_in_recipe_is_an_error():
    cfg = recipe_cfg(instructions={"STS12": "x", "NoSuchTask": "y"})
    with pytest.raises(ConfigError, match="NoSuchTask"):
        recipe_from_config(cfg, known_tasks={"STS12"})
    with pytest.raises(ConfigError, match="NoSuchTask"):
        recipe_from_config(recipe_cfg(instruction_on_all_texts=["NoSuchTask"]), {"STS12"})


def test_missing_instruction_for_task_to_run_is_an_error():
    with pytest.raises(ConfigError, match="C"):
        QZ.check_tasks(["A", "C"])
    Recipe(name="none").check_tasks(["C"])  # an uninstructed recipe runs anything


def test_templates_must_have_their_placeholder():
    with pytest.raises(ConfigError, match=r"prompts\.instruction_template of r must contain"):
        recipe_from_config(recipe_cfg(instruction_template="Instruct: x"))
    with pytest.raises(ConfigError, match=r"prompts\.input_template of r must contain"):
        recipe_from_config(recipe_cfg(input_template="no placeholder"))


@pytest.mark.parametrize(
    "override, said",
    [
        # a lone name was read letter by letter: "unknown task name(s) D, E, S, T, ..."
        (
            "prompts.instruction_on_all_texts=STS12",
            "prompts.instruction_on_all_texts of minilm is 'STS12': give a list of task names, "
            "e.g. 'prompts.instruction_on_all_texts=[STS12]' ([] for none)",
        ),
        (
            "prompts.instruction_on_all_texts=[STS12,5]",
            "prompts.instruction_on_all_texts of minilm names 5: give task names",
        ),
        # Hydra's [a] or 5 went into the model input as Python prints it: "['a']", "5"
        (
            "prompts.empty_text=[a]",
            "prompts.empty_text of minilm is ['a']: give a text (quote it), or null for none",
        ),
        (
            "prompts.empty_text=5",
            "prompts.empty_text of minilm is 5: give a text (quote it), or null for none",
        ),
        (
            "prompts.input_template=5",
            "prompts.input_template of minilm is 5: give a text (quote it), or null for none",
        ),
    ],
)
def test_a_setting_of_another_type_is_refused_in_one_line(override, said):
    from qzhou_eval.known_tasks import KNOWN_TASKS

    cfg = compose_config("mteb", ["model=minilm", override])
    with pytest.raises(ConfigError) as e:
        recipe_from_config(cfg.prompts, KNOWN_TASKS)
    assert str(e.value) == said
    fine = ["prompts.instruction_on_all_texts=[STS12]", "prompts.empty_text='5'"]
    recipe = recipe_from_config(compose_config("mteb", ["model=minilm", *fine]).prompts)
    assert recipe.instruction_on_all_texts == {"STS12"} and recipe.empty_text == "5"


def test_every_key_is_read_from_the_config():
    for key in RECIPE_KEYS:
        cfg = recipe_cfg()
        del cfg[key]
        with pytest.raises(ConfigError, match=rf"does not set {key} \(conf/prompts/none\.yaml"):
            recipe_from_config(cfg)
    assert set(compose_config("mteb", ["prompts=none"]).prompts) == {*RECIPE_KEYS, *OPTIONAL_KEYS}


def test_deprecated_keys_work_with_one_warning_each(capsys):
    forget_warnings()
    new = recipe_from_config(
        recipe_cfg(
            instruction_template="I: {instruction} ",
            instructions={"A": "a"},
            instruction_on_all_texts=["A"],
            input_template="<{text}>",
        )
    )
    capsys.readouterr()
    old_cfg = {
        "name": "r",
        "template": "I: {instruction} ",
        "instructions": {"A": "a"},
        "both_sides": ["A"],
        "empty_text": None,
        "wrapper": "<{text}>",
        "on_missing_instruction": "error",
    }
    old = recipe_from_config(old_cfg)
    assert old == new
    assert old.format("A", "none", "x") == "<I: a x>"
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: prompts.{o} is deprecated; use prompts.{n} (same meaning)"
        for o, n in RENAMED_KEYS.items()
    ]
    recipe_from_config(old_cfg)
    assert capsys.readouterr().err == ""  # once per process


SET = {"instruction_template": "Q: {instruction}", "instruction_on_all_texts": ["A"]}
SET["input_template"] = "<{text}>"


@pytest.mark.parametrize(("old", "new"), list(RENAMED_KEYS.items()))
def test_old_and_new_key_together_is_one_line_error(old, new):
    with pytest.raises(ConfigError, match=f"set {new} or the deprecated {old}, not both") as e:
        recipe_from_config({**recipe_cfg(**{new: SET[new]}), old: SET[new]})
    assert "\n" not in str(e.value)
    # the new name as conf/prompts/none.yaml states it (inherited): the old name's value stands
    recipe = recipe_from_config({**recipe_cfg(instructions={"A": "a"}), old: SET[new]})
    assert recipe.format("A", "query", "x") == recipe_from_config(
        recipe_cfg(instructions={"A": "a"}, **{new: SET[new]})
    ).format("A", "query", "x")


def test_a_user_recipe_file_with_old_keys_composes_and_runs(tmp_path, monkeypatch):
    """An old-style recipe started from none.yaml, which states the new key: the old key's
    value stands over the new key's value there."""
    from qzhou_eval.config import app

    conf = tmp_path / "conf"
    shutil.copytree(app.CONF_DIR, conf)
    (conf / "prompts" / "mine.yaml").write_text(
        "defaults:\n  - none\n  - _self_\nname: mine\ninstructions: {STS12: x}\n"
        'template: "Q: {instruction} "\n'
    )
    monkeypatch.setattr(app, "CONF_DIR", conf)
    for dropped in ([], ["~prompts.instruction_template"]):  # (none.yaml's value, inherited)
        cfg = compose_config("mteb", ["prompts=mine", *dropped])
        assert recipe_from_config(cfg.prompts).format("STS12", "query", "t") == "Q: x t"
    cfg = compose_config("mteb", ["prompts=mine", "prompts.instruction_template='I {instruction}'"])
    with pytest.raises(ConfigError, match="not both"):
        recipe_from_config(cfg.prompts)


# sha256 of the fields qzhou-eval 0.1 hashed for the shipped official recipes, computed before the
# keys were renamed (commit f9c88d3): the migration of 0.1 folders recomputes exactly these.
OFFICIAL_RECIPE_FINGERPRINTS = {
    "qzhou_embedding": "6bfa78163dc820623b7cedb68f4f7cc7afd048d02f47d1dd76fb60fa35542b16",
    "qzhou_embedding_zh": "4cea382bed400b57983c41946961eacccf833b3714c0c83091ca29075aac6d45",
}


@pytest.mark.parametrize("model", sorted(OFFICIAL_RECIPE_FINGERPRINTS))
def test_the_rename_keeps_the_official_recipes_fingerprints(model):
    recipe = recipe_from_config(compose_config("mteb", [f"model={model}"]).prompts)
    blob = json.dumps(recipe.legacy_fields(), sort_keys=True, ensure_ascii=False)
    assert hashlib.sha256(blob.encode()).hexdigest() == OFFICIAL_RECIPE_FINGERPRINTS[model]


def test_side_of_prompt_types():
    from mteb.types import PromptType

    assert side_of(PromptType.query) == "query"
    assert side_of(PromptType.document) == "document"
    assert side_of(None) == "none"


def test_span_marks_the_text_inside_input_template_and_prefix():
    r = Recipe(
        name="eol",
        instruction_template="I: {instruction}\nQ: ",
        instructions={"A": "a"},
        input_template="S: <|im_start|>“{text}” means: “",
        empty_text="Null",
    )
    for text in ("hello", "", "x{text}y"):
        s, (a, b) = r.format_with_span("A", "query", text)
        assert s == r.format("A", "query", text)
        assert s[a:b] == (text or "Null")
        assert s[:a] == "S: <|im_start|>“I: a\nQ: "
        assert s[b:] == "” means: “"


def test_an_instruction_no_text_of_its_task_gets_is_said(capsys):
    forget_warnings()
    cfg = recipe_cfg(instructions={"A": "a", "B": "b", "C": "c"}, instruction_on_all_texts=["C"])
    recipe = recipe_from_config(cfg)
    capsys.readouterr()
    recipe.warn_unreached({"A": ("none",), "B": ("query", "document"), "C": ("none",)})
    assert capsys.readouterr().err.splitlines() == [
        "warning: prompts.instructions.A of r never reaches the model: mteb encodes its texts "
        "without a query side, and an instruction goes on queries only; list the task in "
        "prompts.instruction_on_all_texts to put it on every text"
    ]

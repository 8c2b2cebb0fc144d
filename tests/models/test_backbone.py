"""The native backbone on a tiny random Qwen2 with the real Qwen tokenizer."""

from __future__ import annotations

import pytest
import torch

from qzhou_eval.models.backbone import TransformersBackbone
from qzhou_eval.models.pooling import pool
from tests.models.conftest import native_spec

TEMPLATE = "Instruct: Retrieve semantically similar text\nQuery: "


def test_real_qwen_tokenizer_and_template(tiny_qwen2):
    bb = TransformersBackbone(native_spec(tiny_qwen2))
    tok = bb.tokenizer
    assert tok("Hello world", add_special_tokens=True)["input_ids"] == [9707, 1879]
    assert tok("你好")["input_ids"] == [108386]
    ids = bb.tokenize([TEMPLATE + "Hello world"])[0]
    # No EOS/BOS is added, and the template's trailing space joins the first word of the text
    # (Qwen's pre-tokenizer attaches a leading space to the word): " Hello" is one token.
    assert ids[-2:] == [21927, 1879]
    assert tok.convert_ids_to_tokens(21927) == "ĠHello"
    assert ids[:-2] == tok(TEMPLATE.rstrip(" "))["input_ids"]
    assert tok.decode(ids) == TEMPLATE + "Hello world"
    assert tok.decode(bb.tokenize([TEMPLATE])[0]) == TEMPLATE


def test_right_truncation_at_max_length(tiny_qwen2):
    bb = TransformersBackbone(native_spec(tiny_qwen2, max_length=8))
    ids = bb.tokenize([TEMPLATE + "word " * 50])[0]
    assert len(ids) == 8
    assert ids == bb.tokenizer(TEMPLATE)["input_ids"][:8]  # the start survives, the tail is cut


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_bidirectional_attention_sees_later_tokens(tiny_qwen2, attn):
    ids_a = [[9707, 1879, 11, 1052, 374]]
    ids_b = [[9707, 1879, 11, 1052, 1008]]  # only the last token differs

    backbones: dict[str, TransformersBackbone] = {}

    def first_state(attention: str, ids) -> torch.Tensor:
        if attention not in backbones:
            backbones[attention] = TransformersBackbone(
                native_spec(tiny_qwen2, attention=attention, attn_implementation=attn)
            )
        bb = backbones[attention]
        with torch.inference_mode():
            out = bb.model(input_ids=torch.tensor(ids)).last_hidden_state
        return out[0, 0]

    # bidirectional: token 0 sees token 4
    assert not torch.allclose(
        first_state("bidirectional", ids_a), first_state("bidirectional", ids_b)
    )
    # control: causal attention does not (so the test above could fail)
    torch.testing.assert_close(first_state("causal", ids_a), first_state("causal", ids_b))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("pooling", ["mean", "last_token"])
def test_left_padded_batch_equals_one_by_one(tiny_qwen2, attn, pooling):
    bb = TransformersBackbone(native_spec(tiny_qwen2, attn_implementation=attn, pooling=pooling))
    texts = ["Hello world", TEMPLATE + "a much longer input text with many more tokens", "你好"]
    ids = bb.tokenize(texts)
    batch = bb.embed_ids(ids)
    for i, one in enumerate(ids):
        torch.testing.assert_close(batch[i], bb.embed_ids([one])[0], rtol=1e-4, atol=1e-5)


def test_pooled_vector_is_the_mean_of_real_token_states(tiny_qwen2):
    bb = TransformersBackbone(native_spec(tiny_qwen2))
    ids = bb.tokenize(["Hello world", "a longer input text"])
    batch = bb._pad(ids)
    with torch.inference_mode():
        hidden = bb.model(**batch).last_hidden_state
        expected = torch.stack(
            [hidden[i][batch["attention_mask"][i].bool()].mean(0) for i in range(2)]
        )
    torch.testing.assert_close(bb.embed_ids(ids), expected)
    torch.testing.assert_close(pool(hidden, batch["attention_mask"], "mean"), expected)


def test_inner_truncation_keeps_the_template(tiny_qwen2):
    from qzhou_eval.recipe import Recipe

    recipe = Recipe(
        name="eol",
        instruction_template="Instruct: {instruction}\nQuery: ",
        instructions={"T": "Retrieve semantically similar text"},
        input_template="This sentence: <|im_start|>“{text}” means in one word: “",
    )
    long_text = "many words here " * 40
    inputs, spans = zip(
        *(recipe.format_with_span("T", "query", t) for t in ("short text", long_text)), strict=True
    )
    right = TransformersBackbone(native_spec(tiny_qwen2, max_length=40))
    inner = TransformersBackbone(native_spec(tiny_qwen2, max_length=40, truncation="inner"))
    r_ids, i_ids = right.tokenize(inputs, spans), inner.tokenize(inputs, spans)
    assert r_ids[0] == i_ids[0]  # an input that fits is tokenized identically
    decode = right.tokenizer.decode
    assert len(i_ids[1]) == 40
    assert decode(i_ids[1]).endswith(" ” means in one word: “")  # the PromptEOL tail survives
    assert "means in one word" not in decode(r_ids[1])  # right truncation cuts it (official)
    assert i_ids[1][:12] == r_ids[1][:12]  # same head: wrapper start + instruction

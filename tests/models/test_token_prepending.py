"""Token Prepending hooks vs an explicit layer-by-layer reference, on tiny random Qwen models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from qzhou_eval.models.token_prepending import (
    QWEN_IM_START_ID,
    TokenPrepending,
    attach_for_spec,
    find_decoder,
    locate_positions,
)
from qzhou_eval.testing.tiny_models import cached_qwen_tokenizer, cached_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT_EOL = "This sentence: <|im_start|>“{text}” means in one word: “"
TEXTS = [
    "A man is playing a guitar.",
    "今天天气很好,我们去公园散步吧。",
    "hi",
    "Token Prepending writes the last state into the placeholder, layer after layer, "
    "so that earlier tokens can see the whole sentence.",
]
# Half-open, as the reference: layers 1..6 (the tiny models have 8 layers: indices 0..7).
START, EXIT = 1, 7
ARCHS = ["qwen3", "qwen2"]
ATTNS = ["sdpa", "eager"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    path = cached_qwen_tokenizer(tmp_path_factory, padding_side="left")
    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def load_model(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoModel

    loaded: dict[tuple[str, str], nn.Module] = {}

    def load(arch: str, attn: str) -> nn.Module:
        if (arch, attn) not in loaded:
            path = cached_tiny_model(arch, tmp_path_factory, seed=0)
            model = AutoModel.from_pretrained(path, attn_implementation=attn, dtype=torch.float32)
            loaded[arch, attn] = model.eval()
        return loaded[arch, attn]

    return load


def _batch(tokenizer, texts: list[str], side: str = "left") -> dict[str, torch.Tensor]:
    tokenizer.padding_side = side
    try:
        return dict(tokenizer(texts, padding=True, return_tensors="pt"))
    finally:
        tokenizer.padding_side = "left"


def _reference_forward(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tp: tuple[int, int] | None,
) -> torch.Tensor:
    """Plain loop over ``model.layers`` with Token Prepending spelled out row by row, before each
    layer with ``tp[0] <= index < tp[1]`` (the reference's ``tp_starting_index <= index <
    tp_exiting_index``).

    Builds its own additive causal+padding mask and uses the same position ids as the model
    (0..L-1 for every row; RoPE only sees relative offsets, so left padding is harmless).
    """
    batch, length = input_ids.shape
    assert set(model.config.layer_types) == {"full_attention"}
    hidden = model.embed_tokens(input_ids)
    position_ids = torch.arange(length).unsqueeze(0)
    valid = attention_mask.bool()
    allowed = torch.ones(length, length, dtype=torch.bool).tril()[None] & valid[:, None, :]
    mask = torch.zeros(batch, 1, length, length, dtype=hidden.dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(hidden.dtype).min)
    rotary = model.rotary_emb(hidden, position_ids)
    for index, layer in enumerate(model.layers):
        if tp is not None and tp[0] <= index < tp[1]:
            hidden = hidden.clone()
            for row in range(batch):
                real = [j for j in range(length) if valid[row, j]]
                marks = [j for j in real if int(input_ids[row, j]) == QWEN_IM_START_ID]
                if marks:  # first occurrence only
                    hidden[row, marks[0]] = hidden[row, real[-1]]
        hidden = layer(
            hidden, attention_mask=mask, position_ids=position_ids, position_embeddings=rotary
        )
    return model.norm(hidden)


def _last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    last = attention_mask.shape[1] - 1 - attention_mask.flip(1).argmax(1)
    return hidden[torch.arange(hidden.shape[0]), last]


@pytest.mark.parametrize("attn", ATTNS)
@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_hooks_match_layer_by_layer_reference(load_model, tokenizer, arch, attn) -> None:
    model = load_model(arch, attn)
    texts = [PROMPT_EOL.format(text=t) for t in TEXTS]
    texts.append("two marks: <|im_start|> first, <|im_start|> second")  # first one counts
    texts.append("no placeholder in this one")
    batch = _batch(tokenizer, texts)
    valid = batch["attention_mask"].bool()

    plain = model(**batch).last_hidden_state
    torch.testing.assert_close(
        plain[valid], _reference_forward(model, **batch, tp=None)[valid], rtol=1e-4, atol=1e-5
    )
    with TokenPrepending(QWEN_IM_START_ID, START, EXIT).attach(model):
        hooked = model(**batch).last_hidden_state
    expected = _reference_forward(model, **batch, tp=(START, EXIT))
    torch.testing.assert_close(hooked[valid], expected[valid], rtol=1e-4, atol=1e-5)
    # The reading matters: one more layer (inclusive 1..7, reference exit 8) is another vector.
    # (the last row has no placeholder, so it is the same under both readings)
    inclusive = _reference_forward(model, **batch, tp=(START, EXIT + 1))
    change = (hooked[:-1, -1] - inclusive[:-1, -1]).abs().amax(dim=1)
    assert (change > 1e-3).all(), change


@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_writes_happen_before_exactly_layers_1_to_6(load_model, tokenizer, arch, fired_layers):
    """(1, 7) fires the hook of layers 1..6 once per forward, and only there does the placeholder
    enter a layer holding the last token's state."""
    model = load_model(arch, "sdpa")
    batch = _batch(tokenizer, [PROMPT_EOL.format(text=t) for t in TEXTS])
    fired = fired_layers
    positions = locate_positions(batch["input_ids"], QWEN_IM_START_ID, batch["attention_mask"])
    assert positions.has_placeholder.all()
    rows = torch.arange(len(TEXTS))
    written: list[int] = []

    def observe(index):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            at_mark = hidden[rows, positions.placeholder]
            if torch.equal(at_mark, hidden[rows, positions.last]):
                written.append(index)

        return hook

    with TokenPrepending(QWEN_IM_START_ID, 1, 7).attach(model):
        # registered after Token Prepending's hooks, so they see the layer's actual input
        observers = [
            layer.register_forward_pre_hook(observe(i), with_kwargs=True)
            for i, layer in enumerate(model.layers)
        ]
        try:
            model(**batch)
        finally:
            for handle in observers:
                handle.remove()
    assert fired == [1, 2, 3, 4, 5, 6]
    assert written == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("attn", ATTNS)
@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_detached_equals_plain_and_tp_changes_output(load_model, tokenizer, arch, attn) -> None:
    model = load_model(arch, attn)
    batch = _batch(tokenizer, [PROMPT_EOL.format(text=t) for t in TEXTS])
    before = model(**batch).last_hidden_state
    handle = TokenPrepending().attach(model)
    assert handle.attached
    on = model(**batch).last_hidden_state
    handle.remove()
    handle.remove()  # idempotent
    after = model(**batch).last_hidden_state
    assert torch.equal(before, after)
    # TP really changes the pooled (last-token) state of every templated row.
    change = (on[:, -1] - before[:, -1]).abs().amax(dim=1)
    assert (change > 1e-2).all(), change


@pytest.mark.parametrize("attn", ATTNS)
@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_padded_batch_equals_one_by_one(load_model, tokenizer, arch, attn) -> None:
    model = load_model(arch, attn)
    texts = [PROMPT_EOL.format(text=t) for t in TEXTS]
    with TokenPrepending().attach(model):
        singles = torch.stack(
            [model(**_batch(tokenizer, [t])).last_hidden_state[0, -1] for t in texts]
        )
        left = _batch(tokenizer, texts, "left")
        right = _batch(tokenizer, texts, "right")
        assert not left["attention_mask"].all()  # really padded
        pooled_left = model(**left).last_hidden_state[:, -1]
        pooled_right = _last_token(model(**right).last_hidden_state, right["attention_mask"])
    torch.testing.assert_close(pooled_left, singles, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pooled_right, singles, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_rows_without_placeholder_unchanged(load_model, tokenizer, arch) -> None:
    model = load_model(arch, "sdpa")
    templated = PROMPT_EOL.format(text=TEXTS[3])
    ids = tokenizer(templated)["input_ids"]
    cut = ids[: ids.index(QWEN_IM_START_ID)]  # right truncation removed the placeholder
    rows = [ids, cut, tokenizer("plain text without a placeholder")["input_ids"]]
    tokenizer.padding_side = "left"
    batch = dict(tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt"))
    positions = locate_positions(batch["input_ids"], QWEN_IM_START_ID, batch["attention_mask"])
    assert positions.has_placeholder.tolist() == [True, False, False]
    off = model(**batch).last_hidden_state
    with TokenPrepending().attach(model):
        on = model(**batch).last_hidden_state
    assert torch.equal(on[1:], off[1:])
    assert not torch.allclose(on[0, -1], off[0, -1])


@torch.no_grad()
def test_inputs_embeds_need_explicit_positions(load_model, tokenizer) -> None:
    model = load_model("qwen3", "sdpa")
    batch = _batch(tokenizer, [PROMPT_EOL.format(text=t) for t in TEXTS[:3]], "right")
    embeds = model.embed_tokens(batch["input_ids"])
    with TokenPrepending().attach(model) as handle:
        from_ids = model(**batch).last_hidden_state
        with pytest.raises(ValueError, match="inputs_embeds"):
            model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
        with handle.for_batch(batch["input_ids"], batch["attention_mask"]):
            from_embeds = model(
                inputs_embeds=embeds, attention_mask=batch["attention_mask"]
            ).last_hidden_state
        # Without a mask in for_batch, the forward's own 2D mask finds the last real tokens.
        with handle.for_batch(batch["input_ids"]):
            from_embeds_fwd_mask = model(
                inputs_embeds=embeds, attention_mask=batch["attention_mask"]
            ).last_hidden_state
    torch.testing.assert_close(from_embeds, from_ids)
    torch.testing.assert_close(from_embeds_fwd_mask, from_ids)


def test_layer_range_validation(load_model) -> None:
    model = load_model("qwen3", "sdpa")
    with pytest.raises(ValueError, match="8 layers"):
        TokenPrepending(starting_index=1, exiting_index=9).attach(model)
    for start, exit_ in ((3, 2), (3, 3), (-1, 2)):  # empty or negative ranges
        with pytest.raises(ValueError, match="starting_index"):
            TokenPrepending(starting_index=start, exiting_index=exit_)
    assert list(TokenPrepending().layer_indices) == [1, 2, 3, 4, 5, 6]
    assert list(TokenPrepending(starting_index=1, exiting_index=8).layer_indices) == list(
        range(1, 8)
    )
    handle = TokenPrepending(starting_index=0, exiting_index=8).attach(model)  # every layer
    try:
        with pytest.raises(RuntimeError, match="already attached"):
            TokenPrepending().attach(model)
    finally:
        handle.remove()
    TokenPrepending().attach(model).remove()  # attachable again after removal


def test_find_decoder_through_wrappers(load_model) -> None:
    model = load_model("qwen3", "sdpa")
    wrapper = nn.Module()
    wrapper.model = model  # like *ForCausalLM.model
    st_like = nn.Module()
    st_like.auto_model = wrapper  # like sentence-transformers' Transformer module
    assert find_decoder(model) is model
    assert find_decoder(st_like) is model
    with pytest.raises(ValueError, match="layers"):
        find_decoder(nn.Linear(2, 2))


def test_locate_positions() -> None:
    p = QWEN_IM_START_ID
    ids = torch.tensor([[0, 0, 5, p, 6, p, 7], [5, p, 6, 7, 0, 0, 0], [5, 6, 7, 8, 9, 1, 2]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    pos = locate_positions(ids, p, mask)
    assert pos.placeholder.tolist() == [3, 1, 6]  # no placeholder: points at its last token
    assert pos.last.tolist() == [6, 3, 6]
    assert pos.has_placeholder.tolist() == [True, True, False]
    # A placeholder id inside the padding is ignored.
    padded = locate_positions(torch.tensor([[p, 5, 6]]), p, torch.tensor([[0, 1, 1]]))
    assert padded.has_placeholder.tolist() == [False]


def test_attach_for_spec(load_model, tokenizer) -> None:
    model = load_model("qwen3", "sdpa")
    spec = SimpleNamespace(placeholder="<|im_start|>", starting_index=1, exiting_index=7)
    handle = attach_for_spec(model, tokenizer, spec)
    try:
        assert handle.config.placeholder_id == QWEN_IM_START_ID
        assert list(handle.config.layer_indices) == [1, 2, 3, 4, 5, 6]
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="single token"):
        attach_for_spec(
            model,
            tokenizer,
            SimpleNamespace(placeholder="<PST>", starting_index=1, exiting_index=7),
        )

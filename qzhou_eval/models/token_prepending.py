"""Token Prepending (Fu et al., ACL 2025) for stock transformers decoders, via forward pre-hooks.

What it does (as QZhou-Embedding-Zh uses it): the input carries a placeholder token (the
PromptEOL template ``This sentence: <|im_start|>“{text}” means in one word: “``); right
before each decoder layer whose 0-based index ``i`` satisfies ``starting_index <= i <
exiting_index`` (half-open, the reference's convention), the residual-stream hidden state of
the sequence's LAST token is written into the placeholder's position. Example: the default
``starting_index=1, exiting_index=7`` writes before layers 1, 2, 3, 4, 5 and 6 (six layers);
layer 0 and layers 7.. run unchanged; "layers 1 to 7 inclusive" is ``exiting_index=8``.
Attention masks and position ids are not touched. In a causal model this lets tokens after the
placeholder (the last one included) see a running summary of the whole sentence one layer later.

Conventions, checked against the reference (GitHub ``fuyuchenIfyw/token_prepending``,
``senllm/modeling_qwen2.py``, ``Qwen2Model.forward``):

* Layer range. The reference overwrites before layer ``index`` when ``tp_starting_index <=
  index < tp_exiting_index``: its exiting index is exclusive, and so is ours, under the same
  names (a reference configuration (s, e) is ``starting_index=s, exiting_index=e``).
  ``starting_index=0`` writes the last token's input embedding into the placeholder.
* The state copied is the residual stream entering the layer (the previous layer's output,
  before the layer's input RMSNorm), the same tensor the reference indexes.
* "Last token". The reference takes position ``-1`` (it assumes left padding). We take the
  last position whose attention mask is 1, which is ``-1`` for left padding and also right
  for right padding.
* Placeholder. Only the FIRST occurrence in a sequence counts (the reference uses
  ``argmax`` over ``input_ids == token``); occurrences inside padding are ignored. The
  reference asserts that every sequence has one; we leave sequences without a placeholder
  (e.g. when right truncation cut the template) unchanged, which is exactly what the
  unhooked model computes for them.
* The write is out of place (a new tensor is passed to the layer), so states recorded by
  ``output_hidden_states`` are the layers' real outputs, before the write.

Inference only: it is not meant for incremental decoding with a KV cache (positions are
those of the current forward's input), and training with gradient checkpointing is refused
(transformers before 5.x checkpointed the layer's ``__call__``, so the backward recomputation
would replay the hooks after the batch positions are gone).

Usage::

    tp = TokenPrepending(placeholder_id=151644, starting_index=1, exiting_index=7)  # layers 1..6
    with tp.attach(model):                 # or: handle = tp.attach(model); ...; handle.remove()
        out = model(input_ids=ids, attention_mask=mask)   # positions found from input_ids

When the model is called without ``input_ids`` (``inputs_embeds``), give the ids::

    with handle.for_batch(input_ids, attention_mask):
        out = model(inputs_embeds=embeds, attention_mask=mask)

The hooks sit on the module that owns ``.layers`` (found through ``*ForCausalLM.model`` or a
sentence-transformers ``Transformer.auto_model``); they only touch the hidden states between
layers, so the attention kernel does not matter (tested with sdpa and eager).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = [
    "QWEN_IM_START_ID",
    "PrependPositions",
    "TokenPrepending",
    "TokenPrependingHandle",
    "attach_for_spec",
    "find_decoder",
    "locate_positions",
    "prepend_last_state",
]

#: ``<|im_start|>`` in the Qwen2/2.5/3 tokenizers: QZhou-Embedding-Zh's placeholder.
QWEN_IM_START_ID = 151644

_ATTACHED_ATTR = "_qzhou_token_prepending_handle"


@dataclass(frozen=True)
class PrependPositions:
    """Where to copy from and to, per batch row.

    ``placeholder[b]`` is the position that receives the state of position ``last[b]``. Rows
    without a placeholder have ``placeholder[b] == last[b]`` (copying a state onto itself is
    an exact no-op), so applying the write needs no data-dependent shapes and no host sync.
    """

    placeholder: torch.Tensor  # (batch,) long
    last: torch.Tensor  # (batch,) long
    has_placeholder: torch.Tensor  # (batch,) bool, for inspection and tests
    seq_len: int

    @property
    def batch_size(self) -> int:
        return int(self.placeholder.shape[0])

    def to(self, device: torch.device) -> PrependPositions:
        return PrependPositions(
            self.placeholder.to(device),
            self.last.to(device),
            self.has_placeholder.to(device),
            self.seq_len,
        )


def locate_positions(
    input_ids: torch.Tensor,
    placeholder_id: int,
    attention_mask: torch.Tensor | None = None,
) -> PrependPositions:
    """First placeholder and last real token of each row of a (batch, seq) id tensor.

    Args:
        input_ids: (batch, seq) token ids, left or right padded.
        placeholder_id: the placeholder token id (``<|im_start|>`` = 151644 for Qwen).
        attention_mask: (batch, seq), 1 for real tokens. None means no padding.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
    batch, seq_len = input_ids.shape
    is_placeholder = input_ids == placeholder_id
    if attention_mask is None:
        last = torch.full((batch,), seq_len - 1, dtype=torch.long, device=input_ids.device)
    else:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                "Token Prepending needs a 2D attention mask shaped like input_ids, got "
                f"{tuple(attention_mask.shape)} for input_ids {tuple(input_ids.shape)}"
            )
        valid = attention_mask.to(input_ids.device) != 0
        is_placeholder &= valid
        # Index of the last valid position: seq_len - 1 - (first valid position from the right).
        last = seq_len - 1 - valid.flip(1).to(torch.int8).argmax(dim=1)
    has_placeholder = is_placeholder.any(dim=1)
    first = is_placeholder.to(torch.int8).argmax(dim=1)  # first True (0 when none)
    placeholder = torch.where(has_placeholder, first, last)
    return PrependPositions(placeholder.long(), last.long(), has_placeholder, int(seq_len))


def prepend_last_state(hidden_states: torch.Tensor, positions: PrependPositions) -> torch.Tensor:
    """Copy of ``hidden_states`` with each row's last-token state written at its placeholder."""
    if hidden_states.shape[:2] != (positions.batch_size, positions.seq_len):
        raise ValueError(
            f"Token Prepending positions are for a ({positions.batch_size}, {positions.seq_len}) "
            f"batch but the decoder layer got hidden states {tuple(hidden_states.shape)}; "
            "incremental decoding with a KV cache is not supported"
        )
    rows = torch.arange(positions.batch_size, device=hidden_states.device)
    source = hidden_states[rows, positions.last.to(hidden_states.device)]
    return hidden_states.index_put((rows, positions.placeholder.to(hidden_states.device)), source)


def find_decoder(model: nn.Module) -> nn.Module:
    """The module that owns the decoder ``layers`` (``Qwen2Model``, ``Qwen3Model``,
    ``LlamaModel``...), given it, a ``*ForCausalLM`` / task model around it, or a
    sentence-transformers ``Transformer`` module (``auto_model``)."""
    seen: set[int] = set()
    frontier: list[Any] = [model]
    while frontier:
        candidate = frontier.pop(0)
        if candidate is None or id(candidate) in seen or not isinstance(candidate, nn.Module):
            continue
        seen.add(id(candidate))
        layers = getattr(candidate, "layers", None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return candidate
        for name in ("model", "base_model", "decoder", "auto_model", "transformer"):
            frontier.append(getattr(candidate, name, None))
    raise ValueError(
        f"{type(model).__name__} has no decoder with a `.layers` ModuleList (looked at "
        "the model and its .model / .base_model / .decoder / .auto_model / .transformer)"
    )


class TokenPrepending:
    """Token Prepending settings; :meth:`attach` installs it on a model.

    Args:
        placeholder_id: token id of the placeholder (Qwen ``<|im_start|>``: 151644).
        starting_index: first decoder layer (0-based index into ``decoder.layers``) BEFORE
            which the last-token state is written into the placeholder.
        exiting_index: first layer after the range (exclusive), as the reference's
            ``tp_exiting_index``. The defaults (1, 7) give layers 1..6.
    """

    def __init__(
        self,
        placeholder_id: int = QWEN_IM_START_ID,
        starting_index: int = 1,
        exiting_index: int = 7,
    ) -> None:
        if not 0 <= starting_index < exiting_index:
            raise ValueError(
                "Token Prepending needs 0 <= starting_index < exiting_index (0-based, half-open), "
                f"got starting_index={starting_index}, exiting_index={exiting_index}"
            )
        self.placeholder_id = int(placeholder_id)
        self.starting_index = int(starting_index)
        self.exiting_index = int(exiting_index)

    def __repr__(self) -> str:
        return (
            f"TokenPrepending(placeholder_id={self.placeholder_id}, "
            f"starting_index={self.starting_index}, exiting_index={self.exiting_index})"
        )

    @property
    def layer_indices(self) -> range:
        """0-based indices of the layers that get the write before they run."""
        return range(self.starting_index, self.exiting_index)

    def locate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> PrependPositions:
        return locate_positions(input_ids, self.placeholder_id, attention_mask)

    def attach(self, model: nn.Module) -> TokenPrependingHandle:
        """Install the hooks on ``model``'s decoder; returns the handle that removes them.

        Raises:
            ValueError: the layer range does not fit the model's layer count.
            RuntimeError: Token Prepending is already attached to this decoder.
        """
        decoder = find_decoder(model)
        num_layers = len(decoder.layers)
        if self.exiting_index > num_layers:
            raise ValueError(
                f"Token Prepending layers {self.starting_index}..{self.exiting_index - 1} "
                f"(starting_index={self.starting_index}, exiting_index={self.exiting_index}) "
                f"do not fit {type(decoder).__name__} with {num_layers} layers "
                f"(exiting_index at most {num_layers})"
            )
        if getattr(decoder, _ATTACHED_ATTR, None) is not None:
            raise RuntimeError(
                f"Token Prepending is already attached to this {type(decoder).__name__}; "
                "remove() the existing handle first"
            )
        return TokenPrependingHandle(self, decoder)


class TokenPrependingHandle:
    """Live Token Prepending on one decoder. Use as a context manager or call :meth:`remove`.

    Positions for each forward come from, in order: an active :meth:`for_batch` block, else
    the ``input_ids`` / ``attention_mask`` the decoder's forward receives. State is
    thread-local, so threads sharing the model do not see each other's batches.
    """

    def __init__(self, config: TokenPrepending, decoder: nn.Module) -> None:
        self.config = config
        self.decoder = decoder
        self._local = threading.local()
        self._hooks: list[RemovableHandle] = [
            decoder.register_forward_pre_hook(self._on_decoder_forward, with_kwargs=True),
            decoder.register_forward_hook(self._after_decoder_forward, always_call=True),
        ]
        for index in config.layer_indices:
            self._hooks.append(
                decoder.layers[index].register_forward_pre_hook(
                    self._before_layer, with_kwargs=True
                )
            )
        setattr(decoder, _ATTACHED_ATTR, self)

    # -- public API ---------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return bool(self._hooks)

    def remove(self) -> None:
        """Detach: the model computes exactly what it did before :meth:`attach`. Idempotent."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if getattr(self.decoder, _ATTACHED_ATTR, None) is self:
            delattr(self.decoder, _ATTACHED_ATTR)

    def __enter__(self) -> TokenPrependingHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    @contextlib.contextmanager
    def for_batch(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Take the placeholder positions from these ids for forwards inside the block.

        Needed when the model is called with ``inputs_embeds``; harmless otherwise (the same
        ids the model gets). Without ``attention_mask`` here, the 2D mask the forward receives
        decides each row's last real token; without either, the last position is used (right
        for left padding only).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq), got {tuple(input_ids.shape)}")
        previous = getattr(self._local, "explicit", None)
        self._local.explicit = (input_ids, attention_mask)
        try:
            yield
        finally:
            self._local.explicit = previous

    # -- hooks --------------------------------------------------------------------------------

    def _on_decoder_forward(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if module.training and getattr(module, "gradient_checkpointing", False):
            raise RuntimeError("Token Prepending does not support gradient checkpointing")
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        attention_mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        explicit = getattr(self._local, "explicit", None)
        if explicit is not None:
            input_ids = explicit[0]
            if explicit[1] is not None:
                attention_mask = explicit[1]
        if input_ids is None:
            raise ValueError(
                "Token Prepending finds the placeholder in input_ids; when calling the model "
                "with inputs_embeds, wrap the call in `handle.for_batch(input_ids, mask)`"
            )
        if attention_mask is not None and not (
            isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2
        ):
            raise ValueError(
                "Token Prepending reads the last real token from a 2D attention mask; with a "
                "prepared 4D / dict mask, wrap the call in `handle.for_batch(input_ids, mask2d)`"
            )
        self._local.current = self.config.locate(input_ids, attention_mask)

    def _after_decoder_forward(self, *_: Any) -> None:
        self._local.current = None

    def _before_layer(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        positions: PrependPositions | None = getattr(self._local, "current", None)
        if positions is None:
            raise RuntimeError(
                "a Token Prepending layer hook ran outside a forward of the decoder it was "
                "attached to; call the decoder (or its wrapper), not the layers directly"
            )
        # transformers 5.x passes hidden_states positionally; accept the keyword form too.
        if args:
            hidden = prepend_last_state(args[0], positions)
            return (hidden, *args[1:]), kwargs
        hidden = prepend_last_state(kwargs["hidden_states"], positions)
        return args, {**kwargs, "hidden_states": hidden}


class _TokenPrependingSpecLike(Protocol):
    placeholder: str
    starting_index: int
    exiting_index: int


def attach_for_spec(
    model: nn.Module, tokenizer: Any, spec: _TokenPrependingSpecLike
) -> TokenPrependingHandle:
    """Attach Token Prepending as a model spec describes (placeholder given as a token string).

    The placeholder must be one token of the tokenizer's vocabulary that text containing it
    tokenizes to (e.g. ``<|im_start|>`` -> 151644 for Qwen).
    """
    placeholder_id = tokenizer.convert_tokens_to_ids(spec.placeholder)
    encoded = tokenizer(spec.placeholder, add_special_tokens=False)["input_ids"]
    unk = getattr(tokenizer, "unk_token_id", None)
    if placeholder_id is None or placeholder_id == unk or encoded != [placeholder_id]:
        raise ValueError(
            f"Token Prepending placeholder {spec.placeholder!r} is not a single token of this "
            f"tokenizer (encodes to {encoded})"
        )
    tp = TokenPrepending(int(placeholder_id), spec.starting_index, spec.exiting_index)
    return tp.attach(model)

import pytest
import torch

from qzhou_eval.config.spec import POOLING_MODES
from qzhou_eval.models.pooling import pool


def _reference(hidden, mask, mode):
    """Straightforward per-row loops over the real tokens."""
    out = []
    for h, m in zip(hidden, mask, strict=True):
        real = h[m.bool()].float()
        if mode == "mean":
            out.append(real.mean(0))
        elif mode == "last_token":
            out.append(real[-1])
        elif mode == "cls":
            out.append(real[0])
        elif mode == "weighted_mean":
            w = torch.arange(1, len(real) + 1, dtype=torch.float32)
            out.append((real * w[:, None]).sum(0) / w.sum())
        elif mode == "max":
            out.append(real.max(0).values)
        elif mode == "mean_sqrt_len":
            out.append(real.sum(0) / len(real) ** 0.5)
    return torch.stack(out)


@pytest.mark.parametrize("mode", POOLING_MODES)
@pytest.mark.parametrize("side", ["left", "right"])
def test_pooling_matches_reference_under_padding(mode, side):
    torch.manual_seed(0)
    lengths = [5, 2, 7, 1]
    width = max(lengths)
    hidden = torch.randn(len(lengths), width, 6)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        if side == "left":
            mask[i, width - n :] = 1
        else:
            mask[i, :n] = 1
    torch.testing.assert_close(pool(hidden, mask, mode), _reference(hidden, mask, mode))


def test_padding_values_do_not_leak():
    hidden = torch.randn(1, 4, 3)
    mask = torch.tensor([[0, 0, 1, 1]])
    loud = hidden.clone()
    loud[0, :2] = 1e6
    for mode in POOLING_MODES:
        torch.testing.assert_close(pool(loud, mask, mode), pool(hidden, mask, mode))


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool(torch.zeros(1, 1, 1), torch.ones(1, 1), "min")

"""Masked pooling of per-token states into sentence vectors; padding never contributes.

All poolings are vectorised over the batch. For a bidirectional layer (features [fwd; bwd]) the forward
half's "last" is the last real token and the backward half's "last" is the first token, where the
backward LSTM ends.
"""

from __future__ import annotations

import torch
from torch import Tensor

POOLS = ("last", "mean", "max", "concat")  # concat = ULMFiT's [last, max, mean]
POOL_LAYERS = ("top", "all")  # the last layer, or the concat of every layer's pooled vector


def length_mask(lengths: Tensor, sl: int) -> Tensor:
    """[bs, sl] bool, True on real tokens."""
    return torch.arange(sl, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def last_pool(x: Tensor, lengths: Tensor, bidir: bool) -> Tensor:  # x [bs, sl, d] -> [bs, d]
    idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.size(-1))  # [bs, 1, d]
    last = x.gather(1, idx).squeeze(1)  # [bs, d]
    if not bidir:
        return last
    h = x.size(-1) // 2
    return torch.cat([last[:, :h], x[:, 0, h:]], dim=-1)  # backward direction ends on token 0


def mean_pool(x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
    return (x * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1).to(x.dtype)  # [bs, d]


def max_pool(x: Tensor, mask: Tensor) -> Tensor:
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values  # [bs, d]


def pool(x: Tensor, lengths: Tensor, kind: str, bidir: bool = False) -> Tensor:
    """Pools one layer's states x [bs, sl, d] over the real tokens: [bs, d], or [bs, 3*d] for concat."""
    mask = length_mask(lengths, x.size(1))  # [bs, sl]
    if kind == "last":
        return last_pool(x, lengths, bidir)
    if kind == "mean":
        return mean_pool(x, mask, lengths)
    if kind == "max":
        return max_pool(x, mask)
    if kind == "concat":
        return torch.cat([last_pool(x, lengths, bidir), max_pool(x, mask), mean_pool(x, mask, lengths)], dim=-1)
    raise ValueError(f"unknown pooling {kind!r} (one of {', '.join(POOLS)})")


def pool_layers(outs: list[Tensor], lengths: Tensor, kind: str, layers: str, bidir: bool = False) -> Tensor:
    """Pools the top layer, or every layer and concatenates them ([bs, sum of pooled widths])."""
    if layers == "top":
        return pool(outs[-1], lengths, kind, bidir)
    if layers == "all":
        return torch.cat([pool(o, lengths, kind, bidir) for o in outs], dim=-1)
    raise ValueError(f"unknown pool_layers {layers!r} (one of {', '.join(POOL_LAYERS)})")


def pooled_dim(layer_dims: list[int], kind: str, layers: str) -> int:
    """Width of the sentence vector for these layer widths, pooling and layer choice."""
    per = 3 if kind == "concat" else 1
    return per * (sum(layer_dims) if layers == "all" else layer_dims[-1])

"""Masked pooling of per-token states into sentence vectors; padding never contributes.

All poolings are vectorised over the batch. For a bidirectional layer (features [fwd; bwd]) the forward
half's "last" is the last real token and the backward half's "last" is the first token, where the
backward LSTM ends. Mean pooling may weigh each token (`weights`, e.g. its idf); SIF's common-component
removal (Arora et al. 2017, https://openreview.net/forum?id=SyK00v5xx) works on the pooled vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor

POOLS = ("last", "mean", "max", "concat")  # concat = ULMFiT's [last, max, mean]
# the last layer, the concat of every layer's pooled vector, or that concat under a learned mix (heads.LayerMix)
POOL_LAYERS = ("top", "all", "mix")
POOL_WEIGHTINGS = ("none", "idf")  # mean pooling: plain, or weighted by a per-token weight (idf from the TS side)


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


def mean_pool(x: Tensor, mask: Tensor, lengths: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean over the real tokens, or with `weights` [bs, sl] their weighted mean (sum w x / sum w)."""
    if weights is None:
        return (x * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1).to(x.dtype)  # [bs, d]
    w = weights.to(x.dtype) * mask  # [bs, sl], 0 on padding
    # a sentence whose weights are all 0 pools to 0 rather than 0/0
    return (x * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)  # [bs, d]


def max_pool(x: Tensor, mask: Tensor) -> Tensor:
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values  # [bs, d]


def pool(x: Tensor, lengths: Tensor, kind: str, bidir: bool = False, weights: Tensor | None = None) -> Tensor:
    """Pools one layer's states x [bs, sl, d] over the real tokens: [bs, d], or [bs, 3*d] for concat.
    `weights` [bs, sl] (per token, in x's order) turn every mean (mean, concat's mean part) into a weighted one."""
    mask = length_mask(lengths, x.size(1))  # [bs, sl]
    if kind == "last":
        return last_pool(x, lengths, bidir)
    if kind == "mean":
        return mean_pool(x, mask, lengths, weights)
    if kind == "max":
        return max_pool(x, mask)
    if kind == "concat":
        return torch.cat([last_pool(x, lengths, bidir), max_pool(x, mask), mean_pool(x, mask, lengths, weights)], dim=-1)
    raise ValueError(f"unknown pooling {kind!r} (one of {', '.join(POOLS)})")


def pool_layers(
    outs: list[Tensor], lengths: Tensor, kind: str, layers: str, bidir: bool = False, weights: Tensor | None = None
) -> Tensor:
    """Pools the top layer, or every layer and concatenates them ([bs, sum of pooled widths])."""
    if layers == "top":
        return pool(outs[-1], lengths, kind, bidir, weights)
    if layers == "all":
        return torch.cat([pool(o, lengths, kind, bidir, weights) for o in outs], dim=-1)
    raise ValueError(f"unknown pool_layers {layers!r} (one of {', '.join(POOL_LAYERS)})")


def pooled_dim(layer_dims: list[int], kind: str, layers: str) -> int:
    """Width of the sentence vector for these layer widths, pooling and layer choice."""
    per = 3 if kind == "concat" else 1
    return per * (layer_dims[-1] if layers == "top" else sum(layer_dims))


def remove_pc(v: Tensor, pc: Tensor) -> Tensor:
    """SIF's common-component removal: v - (v . pc) pc for every row of v [bs, d], pc [d] of unit norm.
    A zero pc (not fitted) leaves v as it is."""
    return v - (v @ pc.to(v.dtype)).unsqueeze(1) * pc.to(v.dtype)  # [bs, 1] * [d] -> [bs, d]


def principal_component(v: Tensor, max_iter: int = 1000, tol: float = 1e-12) -> tuple[Tensor, float]:
    """The first right singular vector pc [d] of v [n, d] (not centred, as SIF uses it) and the share of v's
    squared norm along it, ||v pc||^2 / ||v||^2.

    Power iteration on v^T v through matrix-vector products (O(n d) memory and work per iteration, where a full
    SVD of thousands of wide vectors costs O(n d^2)), in float64, from the mean vector (close to the common
    component whenever there is one). Its sign makes most rows project positively, so a refit agrees.
    """
    v64 = v.double()
    total = float(v64.pow(2).sum())
    if total == 0.0:
        raise ValueError(f"all {v.size(0)} sentence vectors are zero: there is no component to fit")
    u = v64.mean(0)
    if float(u.norm()) == 0.0:  # rows that cancel out: any start works
        u = torch.ones_like(u)
    u = u / u.norm()
    for _ in range(max_iter):
        w = v64.T @ (v64 @ u)  # [d]: v^T v u
        w = w / w.norm()
        done = 1.0 - float((w @ u).abs()) < tol
        u = w
        if done:
            break
    proj = v64 @ u  # [n]
    if float(proj.sum()) < 0:
        u, proj = -u, -proj
    return u.to(v.dtype), float(proj.pow(2).sum()) / total

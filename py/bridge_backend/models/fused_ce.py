"""Summed cross-entropy of a linear layer's logits, computed in row chunks that stay in cache.

On CPU, `F.cross_entropy(head(x), t)` makes the [n, classes] logits, their log-softmax, and in the backward a
zero-filled dense gradient, a scatter and log-softmax's backward: five passes over a matrix of tens of MB, which
this machine's memory bandwidth makes a fifth of an LM step at a 60k vocabulary (docs/pretraining.md). Here the
logits of a few hundred rows at a time are made, used and dropped (forward: log-sum-exp and the target's logit;
backward: made again, softmax - one-hot, then the two matmuls), so the big matrix never exists.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

CHUNK_ROWS = 256  # [256, 4k] floats: 4 MB, about what a core's cache holds


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor) -> Tensor:
        # x [n, d], weight [c, d], bias [c] or None, target [n] -> summed loss []
        total = x.new_zeros((), dtype=torch.float32)
        for s in range(0, x.size(0), CHUNK_ROWS):
            logits = torch.nn.functional.linear(x[s : s + CHUNK_ROWS], weight, bias)  # [chunk, c]
            t = target[s : s + CHUNK_ROWS]
            total += (torch.logsumexp(logits, dim=1) - logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
        ctx.save_for_backward(x, weight, bias, target)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        x, weight, bias, target = ctx.saved_tensors
        gx = torch.empty_like(x)
        gw = torch.zeros_like(weight)
        gb = torch.zeros_like(bias) if bias is not None else None
        for s in range(0, x.size(0), CHUNK_ROWS):
            xc = x[s : s + CHUNK_ROWS]
            g = torch.softmax(torch.nn.functional.linear(xc, weight, bias), dim=1)  # [chunk, c]
            g[torch.arange(g.size(0), device=g.device), target[s : s + CHUNK_ROWS]] -= 1.0
            g.mul_(grad)
            torch.mm(g, weight, out=gx[s : s + CHUNK_ROWS])
            gw.addmm_(g.t(), xc)
            if gb is not None:
                gb.add_(g.sum(0))
        return gx, gw, gb, None


def linear_cross_entropy(x: Tensor, linear: torch.nn.Linear, target: Tensor) -> Tensor:
    """sum_i -log softmax(linear(x[i]))[target[i]], as F.cross_entropy(linear(x), target, reduction="sum")."""
    return _LinearCrossEntropy.apply(x, linear.weight, linear.bias, target)

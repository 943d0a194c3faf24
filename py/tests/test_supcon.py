"""supcon on groups of sentences: the vectorised loss is the definition's sum, a tiny batch is learnt through the
real ops, gradients reach the encoder, and a bad group tensor is refused."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY, built_session, call
from test_training import sents

from bridge_backend.errors import BadArgs
from bridge_backend.losses import supcon_loss

LEARNS = {**TINY, "drop_mult": 0.0, "lr": 1e-2, "wd": 0.0}


def grouped_batch(sizes: tuple[int, ...] = (3, 2, 4, 1), seed: int = 0) -> dict[str, torch.Tensor]:
    """Random sentences in groups of `sizes` (a group of one has no positive: it is only a negative)."""
    n = sum(sizes)
    x, lengths = sents([2 + (i * 5) % 6 for i in range(n)], seed)
    group = torch.tensor([g for g, k in enumerate(sizes) for _ in range(k)], dtype=torch.int64)
    return {"x": x, "lengths": lengths, "group": group}


def slow_supcon(z: torch.Tensor, groups: list[int], t: float) -> float:
    """The definition, one anchor and one positive at a time."""
    z = torch.nn.functional.normalize(z.double(), dim=-1)
    losses = []
    for i in range(len(groups)):
        others = [a for a in range(len(groups)) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / t) for a in others)
        pos = [p for p in others if groups[p] == groups[i]]
        if pos:
            losses.append(-sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos))
    return sum(losses) / len(losses)


def test_the_loss_is_the_definitions_sum() -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 6, generator=g)
    groups = [0, 0, 1, 1, 1, 2, 3, 3, 4, 0]
    loss, sim, pos = supcon_loss(z, torch.tensor(groups), 0.1)
    assert float(loss) == pytest.approx(slow_supcon(z, groups, 0.1), rel=1e-5)
    assert bool(torch.isinf(sim.diagonal()).all()) and int(pos.sum()) == 2 * (3 + 3 + 1)
    alone, _, _ = supcon_loss(z[:3], torch.tensor([0, 1, 2]), 0.1)  # no positives at all
    assert float(alone) == 0.0


def test_a_tiny_batch_is_learnt_and_gradients_reach_the_encoder() -> None:
    s = built_session(**LEARNS)
    b = grouped_batch()
    losses = [call(s, "train_step", {"objective": "supcon", "temperature": 0.1}, b).result["loss"] for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0], f"{losses[0]:.4f} -> {losses[-1]:.4f}"
    e = call(s, "eval_step", {"objective": "supcon", "return_logits": True}, b)
    assert e.result["count"] == 9  # the group of one is no anchor
    assert e.result["correct"] == 9  # every anchor's nearest other sentence is of its group
    assert e.tensors["sim"].shape == (10, 10)
    g = built_session(**LEARNS, accum_steps=2)
    call(g, "train_step", {"objective": "supcon"}, grouped_batch(seed=1))
    grad = g.trainer.model.encoder.emb.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_a_bad_group_tensor_is_refused() -> None:
    s = built_session(**TINY)
    b = grouped_batch()
    with pytest.raises(BadArgs, match="group must be >= 0"):
        call(s, "train_step", {"objective": "supcon"}, {**b, "group": -b["group"] - 1})
    with pytest.raises(BadArgs, match="missing tensor 'group'"):
        call(s, "train_step", {"objective": "supcon"}, {"x": b["x"], "lengths": b["lengths"]})

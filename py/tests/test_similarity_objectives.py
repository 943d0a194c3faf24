"""The similarity objectives on scored pairs (cosent, cosine_mse): they learn through the real ops, their gradients
reach the encoder, CoSENT's vectorised loss is the definition's double sum, and a bad scores tensor is refused."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY, built_session, call
from test_training import sents

from bridge_backend.errors import BadArgs
from bridge_backend.losses import cosent_loss, cosine_mse_loss
from bridge_backend.session import Session

SIMILARITY = ["cosent", "cosine_mse"]
LEARNS = {**TINY, "drop_mult": 0.0, "lr": 1e-2, "wd": 0.0}  # no dropout: a tiny batch to memorise


def scored_batch(rows: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """`rows` pairs of random sentences with distinct gold scores in 0..1 (float32, as the TS side sends them)."""
    p, pl = sents([3 + (i * 5) % 6 for i in range(rows)], seed)
    h, hl = sents([2 + (i * 3) % 7 for i in range(rows)], seed + 1)
    scores = torch.linspace(0, 1, rows)[torch.randperm(rows, generator=torch.Generator().manual_seed(seed))]
    return {"premise": p, "premise_lengths": pl, "hypothesis": h, "hypothesis_lengths": hl, "scores": scores.float()}


def session(**build) -> Session:
    return built_session(**build)


@pytest.mark.parametrize("objective", SIMILARITY)
def test_a_tiny_batch_is_learnt_through_the_ops(objective: str) -> None:
    s = session(**LEARNS)
    b = scored_batch()
    losses = [call(s, "train_step", {"objective": objective}, b).result["loss"] for _ in range(50)]
    assert losses[-1] < 0.3 * losses[0], f"{objective}: {losses[0]:.4f} -> {losses[-1]:.4f}"
    e = call(s, "eval_step", {"objective": objective}, b)
    assert e.result["count"] == 8 and e.result["correct"] == 0 and e.result["loss"] == pytest.approx(losses[-1], rel=0.5)
    sim = e.tensors["sim"]
    assert sim.shape == (8,) and sim.dtype == torch.float32
    # what the TS side ranks: the learnt cosines follow the gold order
    assert torch.equal(sim.argsort(), b["scores"].argsort())


@pytest.mark.parametrize("objective", SIMILARITY)
def test_gradients_reach_the_encoder_and_projection(objective: str) -> None:
    s = session(**LEARNS, accum_steps=2, proj_dim=8)  # accum 2: the gradients stay after one micro-batch
    r = call(s, "train_step", {"objective": objective}, scored_batch()).result
    assert r["finite"] and not r["stepped"]
    m = s.trainer.model
    assert m.encoder.emb.weight.grad is not None and m.encoder.emb.weight.grad.abs().sum() > 0
    for name, p in [*m.encoder.rnns.named_parameters(), *m.proj.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in m.nli_head.parameters())  # uses no head


def slow_cosent(cos: list[float], gold: list[float], scale: float) -> float:
    """The definition: log(1 + sum over (i, j) with gold_i > gold_j of exp(scale * (cos_j - cos_i)))."""
    total = 1.0
    for i in range(len(cos)):
        for j in range(len(cos)):
            if gold[i] > gold[j]:
                total += math.exp(scale * (cos[j] - cos[i]))
    return math.log(total)


@pytest.mark.parametrize("seed", range(5))
def test_cosent_is_the_double_sum_of_its_definition(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    bs = 3 + seed * 4
    cos = torch.rand(bs, generator=g, dtype=torch.float64) * 2 - 1
    gold = torch.randint(0, 4, (bs,), generator=g).double() / 3  # ties: pairs of equal gold cost nothing
    for scale in (1.0, 20.0):
        ref = slow_cosent(cos.tolist(), gold.tolist(), scale)
        assert float(cosent_loss(cos, gold, scale)) == pytest.approx(ref, rel=1e-5, abs=1e-6)  # float32 inside
    same = torch.full((bs,), 0.5, dtype=torch.float64)  # every gold equal: nothing to rank
    assert float(cosent_loss(cos, same, 20.0)) == 0.0
    assert float(cosine_mse_loss(cos, gold)) == pytest.approx(float(((cos - gold) ** 2).mean()))


def test_one_row_gives_zero_loss_still_in_the_graph() -> None:
    cos = torch.tensor([0.3], requires_grad=True)
    loss = cosent_loss(cos, torch.tensor([0.7]), 20.0)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert cos.grad is not None and torch.equal(cos.grad, torch.zeros(1))
    s = session(**LEARNS)
    one = {k: v[:1] for k, v in scored_batch().items()}
    for objective in SIMILARITY:
        r = call(s, "train_step", {"objective": objective}, one).result
        assert r["finite"] and r["stepped"] and r["count"] == 1
    assert call(s, "train_step", {"objective": "cosent"}, one).result["loss"] == 0.0


def test_bad_scores_and_options_are_refused_by_name() -> None:
    s = session(**TINY)
    b = scored_batch()
    bad = [
        ({**b, "scores": (b["scores"] * 5).long()}, "tensor 'scores' must be float32, got int64"),
        ({**b, "scores": b["scores"].double()}, "tensor 'scores' must be float32, got float64"),
        ({**b, "scores": b["scores"].view(8, 1)}, r"tensor 'scores' must have 1 dimensions, got shape \[8, 1\]"),
        ({**b, "scores": b["scores"][:5]}, r"premise, hypothesis, scores must have the same batch size .*'scores' 5\)"),
        ({**b, "scores": b["scores"] * 5}, r"tensor 'scores' must be scaled to 0..1 \(min 0.0, max 5.0\)"),
        ({**b, "scores": torch.full((8,), float("nan"))}, "tensor 'scores' holds non-finite scores"),
        ({k: v for k, v in b.items() if k != "scores"}, "missing tensor 'scores'"),
    ]
    for objective in SIMILARITY:
        for tensors, message in bad:
            with pytest.raises(BadArgs, match=message):
                call(s, "train_step", {"objective": objective}, tensors)
    with pytest.raises(BadArgs, match="argument 'scale' must be > 0"):
        call(s, "train_step", {"objective": "cosent", "scale": 0}, b)
    with pytest.raises(BadArgs, match=r"unknown argument\(s\) \['scale'\] for objective 'cosine_mse'"):
        call(s, "train_step", {"objective": "cosine_mse", "scale": 5.0}, b)
    assert call(s, "train_step", {"objective": "cosent", "scale": 5}, b).result["count"] == 8  # an int scale is a float


def test_described_with_their_tensors_and_metrics() -> None:
    described = {o["name"]: o for o in call(session(**TINY), "describe").result["objectives"]}
    for name in SIMILARITY:
        o = described[name]
        assert o["metrics"] == ["val_loss", "val_spearman"] and o["uses_head"] is False
        (tensor_set,) = o["tensors"]
        assert tensor_set["name"] == "scored_pairs"
        assert [(t["name"], t["kind"]) for t in tensor_set["tensors"]] == [
            ("premise", "sentences"),
            ("hypothesis", "sentences"),
            ("scores", "scores"),
        ]
    assert (described["cosent"]["shardable"], described["cosine_mse"]["shardable"]) == (False, True)
    assert [opt["name"] for opt in described["cosent"]["step_options"]] == ["scale"]

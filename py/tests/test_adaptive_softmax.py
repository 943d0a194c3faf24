"""Adaptive softmax LM head: an exact distribution, a training loss that equals it, selectable at build."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import result as call
from test_training import lm_batch

from bridge_backend.errors import BadArgs
from bridge_backend.models import fused_ce
from bridge_backend.models.awd_lstm import AdaptiveDecoder, AWDLSTMConfig, adaptive_nll
from bridge_backend.session import Session

ADAPTIVE = {"preset": "tiny", "vocab_sz": 40, "seed": 0, "head_hidden": 16, "softmax": "adaptive", "cutoffs": [6, 20]}


@torch.no_grad()
def test_log_probs_are_a_distribution_and_nll_agrees_with_them() -> None:
    torch.manual_seed(0)
    head = AdaptiveDecoder(AWDLSTMConfig(vocab_sz=300, emb_sz=16, n_hid=32, n_layers=2, softmax="adaptive")).eval()
    x = torch.randn(3, 5, 16)
    logp = head(x)[0]  # [3, 5, 300]
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 5), atol=1e-5)
    y = torch.randint(0, 300, (3, 5))
    y[0, 1] = -100  # ignored
    keep = y != -100
    expected = -logp[keep].gather(1, y[keep].unsqueeze(1)).mean()
    assert torch.allclose(head.nll(x, y)[0], expected, atol=1e-5)


def test_adaptive_nll_equals_torchs_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked loss (never the whole [n, head] matrix) is torch's AdaptiveLogSoftmaxWithLoss loss, value and grads,
    whether the rows fit one chunk or span several (a last chunk shorter than the others included)."""
    torch.manual_seed(0)
    asm = torch.nn.AdaptiveLogSoftmaxWithLoss(32, 1000, [50, 300], div_value=4.0)
    x = torch.randn(77, 32, requires_grad=True)
    y = torch.randint(0, 1000, (77,))
    y[:5] = torch.tensor([0, 49, 50, 299, 999])  # each cluster's edges
    params = [x, *asm.parameters()]
    expected = asm(x, y).loss
    expected_grads = torch.autograd.grad(expected, params)
    for chunk in (256, 10):
        monkeypatch.setattr(fused_ce, "CHUNK_ROWS", chunk)
        got = adaptive_nll(asm, x, y)
        assert torch.allclose(got, expected, atol=1e-6)
        for g, e in zip(torch.autograd.grad(got, params), expected_grads, strict=True):
            assert torch.allclose(g, e, atol=1e-6)


@torch.no_grad()
def test_predict_is_the_argmax_of_the_full_distribution() -> None:
    """Validation accuracy uses predict (no [tokens, vocab] matrix); it must pick what the full log-probs pick."""
    torch.manual_seed(1)
    head = AdaptiveDecoder(AWDLSTMConfig(vocab_sz=300, emb_sz=16, n_hid=32, n_layers=2, softmax="adaptive")).eval()
    head.asm.head.weight[head.asm.shortlist_size :] *= 8  # louder cluster logits: some argmaxes fall in the tails
    x = torch.randn(4, 7, 16) * 3
    full = head(x)[0].argmax(-1)  # [4, 7]
    assert torch.equal(head.predict(x), full)
    assert (full >= head.asm.cutoffs[0]).any(), "the check should cover tail-cluster words too"


def test_default_cutoffs_follow_the_vocabulary_and_bad_ones_are_refused() -> None:
    assert AWDLSTMConfig(vocab_sz=30_000, softmax="adaptive").adaptive_cutoffs() == [2000, 10000]
    s = Session(lambda *_: None, "cpu")
    with pytest.raises(BadArgs, match=r"cutoffs must increase within 1..39"):
        call(s, "build", {**ADAPTIVE, "cutoffs": [20, 6]})
    with pytest.raises(BadArgs, match=r"2 tail clusters need emb_sz >= 16 \(got 8\)"):
        call(s, "build", {**ADAPTIVE, "emb_sz": 8})
    with pytest.raises(BadArgs, match="softmax must be one of full, adaptive"):
        call(s, "build", {**ADAPTIVE, "softmax": "hierarchical"})


def test_adaptive_lm_trains_and_reports_exact_perplexity() -> None:
    s = Session(lambda *_: None, "cpu")
    r = call(s, "build", {**ADAPTIVE, "lr": 1e-2})
    assert r["config"]["model"]["softmax"] == "adaptive"
    b = lm_batch()
    first = call(s, "train_step", {"objective": "lm", "reset": True}, b)
    assert first["stepped"] and math.isfinite(first["loss"]) and first["correct"] is None
    for _ in range(5):
        call(s, "train_step", {"objective": "lm", "reset": True}, b)
    ev = call(s, "eval_step", {"objective": "lm", "reset": True}, b)
    assert ev["loss"] < first["loss"]  # it learns
    # the eval loss is the mean NLL of the full distribution: recompute it from the model's log-probs
    m = s.trainer.model.eval()
    with torch.no_grad():
        logp = m.lm(b["x"], None)[0]  # [bs, bptt, V] log-probs
        nll = -logp.gather(2, b["y"].unsqueeze(2)).mean().item()
    assert abs(ev["loss"] - nll) < 1e-5
    assert 0 <= ev["correct"] <= ev["count"]

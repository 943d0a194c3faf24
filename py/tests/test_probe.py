"""The SICK-E probe ops: a seeded, deterministic logistic regression on frozen features."""

from __future__ import annotations

import pytest
import torch
from conftest import call

from bridge_backend.errors import BadArgs
from bridge_backend.session import Session


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian clusters in 5-d, well apart: a linear probe separates them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0, 0, 0, 0], [0, 3.0, 0, 0, 0], [0, 0, 3.0, 0, 0]])
    return centres[y] + torch.randn(n, 5, generator=g), y


def test_fit_then_predict_separates_clusters() -> None:
    s = Session(lambda *_: None, "cpu")
    x, y = blobs(300, 0)
    fit = call(s, "fit_probe", {"l2": 1e-3, "seed": 1}, {"x": x, "y": y}).result
    assert fit["classes"] == 3 and fit["features"] == 5 and fit["train_accuracy"] > 0.95
    xt, yt = blobs(90, 1)
    out = call(s, "probe_predict", {}, {"x": xt})
    assert out.tensors["probs"].shape == (90, 3) and out.tensors["probs"].dtype == torch.float32
    assert float((out.tensors["pred"] == yt).float().mean()) > 0.9
    assert torch.allclose(out.tensors["probs"].sum(1), torch.ones(90))


def test_same_inputs_same_probe() -> None:
    x, y = blobs(120, 2)
    runs = []
    for _ in range(2):
        s = Session(lambda *_: None, "cpu")
        call(s, "fit_probe", {"name": "p", "seed": 3}, {"x": x, "y": y})
        runs.append(call(s, "probe_predict", {"name": "p"}, {"x": x}).tensors["probs"])
    assert torch.equal(runs[0], runs[1])


def test_bad_requests() -> None:
    s = Session(lambda *_: None, "cpu")
    with pytest.raises(BadArgs, match="no probe"):
        call(s, "probe_predict", {"name": "missing"}, {"x": torch.zeros(2, 3)})
    with pytest.raises(BadArgs, match="same number"):
        call(s, "fit_probe", {}, {"x": torch.zeros(4, 3), "y": torch.zeros(3, dtype=torch.int64)})
    call(s, "fit_probe", {}, {"x": torch.randn(6, 3), "y": torch.tensor([0, 1, 2, 0, 1, 2])})
    with pytest.raises(BadArgs, match="features"):
        call(s, "probe_predict", {}, {"x": torch.zeros(2, 4)})

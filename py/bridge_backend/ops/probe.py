"""Probe ops: a multinomial logistic regression fitted on frozen sentence features (SentEval's SICK-E probe).

    fit_probe      name?, l2?, max_iter?, seed?; x [n, f] float32, y [n] int -> name, n, features, classes,
                   train_accuracy, iterations, loss
    probe_predict  name?; x [n, f] float32 -> count; probs [n, classes] float32, pred [n] int64

Full-batch L-BFGS on standardised features (mean/std of the training rows): deterministic for given
inputs and seed, no learning rate to tune. Probes live in the session by name, beside the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import BadArgs
from .args import arg, tensor_arg
from .registry import Args, Reply, Tensors, op

FLOATS = (torch.float32, torch.float64)
INTS = (torch.int32, torch.int64)


class Probe:
    """Standardisation + linear layer; `classes` fixed at fit time."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.mean, self.std, self.weight, self.bias = mean, std, weight, bias

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std) @ self.weight.T + self.bias  # [n, classes]


def fit(x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int, seed: int) -> tuple[Probe, dict]:
    """Minimises mean cross-entropy + l2 * |W|^2 / 2 with L-BFGS; returns the probe and fit statistics."""
    x = x.double()
    n_classes = int(y.max()) + 1
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
    z = (x - mean) / std  # [n, f]
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(n_classes, x.size(1), generator=gen, dtype=torch.float64) * 0.01).requires_grad_()
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9)
    iterations = 0

    def closure() -> torch.Tensor:
        nonlocal iterations
        iterations += 1
        opt.zero_grad()
        loss = F.cross_entropy(z @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    probe = Probe(mean, std, w.detach(), b.detach())
    with torch.no_grad():
        logits = probe.logits(x)
        loss = float(F.cross_entropy(logits, y))
        acc = float((logits.argmax(1) == y).double().mean())
    return probe, {"classes": n_classes, "train_accuracy": acc, "iterations": iterations, "loss": loss}


@op("fit_probe")
def fit_probe(session, args: Args, tensors: Tensors):
    """Fits probe `name` (default "probe") on features x [n, f] and labels y [n] (0..classes-1)."""
    name = arg(args, "name", str, "probe")
    l2 = arg(args, "l2", float, 1e-3)
    max_iter = arg(args, "max_iter", int, 200)
    seed = arg(args, "seed", int, 0)
    x = tensor_arg(tensors, "x", dtypes=FLOATS, ndim=2)
    y = tensor_arg(tensors, "y", dtypes=INTS, ndim=1).long()
    if x.size(0) != y.numel() or x.size(0) < 2:
        raise BadArgs(f"x has {x.size(0)} rows and y {y.numel()} labels: need the same number, at least 2")
    if int(y.min()) < 0:
        raise BadArgs("labels y must be >= 0")
    if l2 < 0 or max_iter < 1:
        raise BadArgs("l2 must be >= 0 and max_iter >= 1")
    if not bool(torch.isfinite(x).all()):
        raise BadArgs("features x hold NaN or infinite values")
    probe, stats = fit(x, y, l2, max_iter, seed)
    if not hasattr(session, "probes"):
        session.probes = {}
    session.probes[name] = probe
    return {"name": name, "n": x.size(0), "features": x.size(1), **stats}


@op("probe_predict")
def probe_predict(session, args: Args, tensors: Tensors):
    """Class probabilities and predictions of probe `name` for features x [n, f]."""
    name = arg(args, "name", str, "probe")
    probe = getattr(session, "probes", {}).get(name)
    if probe is None:
        raise BadArgs(f"no probe named {name!r}: call fit_probe first")
    x = tensor_arg(tensors, "x", dtypes=FLOATS, ndim=2)
    if x.size(1) != probe.weight.size(1):
        raise BadArgs(f"x has {x.size(1)} features, the probe was fitted on {probe.weight.size(1)}")
    with torch.no_grad():
        probs = probe.logits(x.double()).softmax(-1)
    return Reply({"count": x.size(0)}, {"probs": probs.float().contiguous(), "pred": probs.argmax(1)})

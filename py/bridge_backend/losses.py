"""Losses: LM cross-entropy with AR/TAR, siamese NLI cross-entropy, triplet margin, in-batch InfoNCE, and the
similarity losses against gold scores (CoSENT, cosine MSE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DISTANCES = ("cosine", "euclidean")


def lm_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean next-token cross-entropy; logits [bs, sl, V], y [bs, sl] (targets -100 are ignored)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))  # [bs*sl, V] vs [bs*sl]


def ar_tar(raw: Tensor, dropped: Tensor, alpha: float, beta: float) -> Tensor:
    """Activation regularisation on the dropped top states and temporal AR on the raw ones (Merity et al.)."""
    reg = raw.new_zeros(())
    if alpha:
        reg = reg + alpha * dropped.float().pow(2).mean()
    if beta and raw.size(1) > 1:
        reg = reg + beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    return reg


def distance(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """Row-wise distance [bs] of a, b [bs, d]: 1 - cosine, or Euclidean."""
    if kind == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=-1)
    if kind == "euclidean":
        return (a - b).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    raise ValueError(f"unknown distance {kind!r} (one of {', '.join(DISTANCES)})")


def triplet_loss(a: Tensor, p: Tensor, n: Tensor, margin: float, kind: str) -> tuple[Tensor, Tensor, Tensor]:
    """mean(relu(d(a, p) - d(a, n) + margin)), and d(a, p), d(a, n) [bs]."""
    d_pos, d_neg = distance(a, p, kind), distance(a, n, kind)
    return F.relu(d_pos - d_neg + margin).mean(), d_pos, d_neg


def info_nce(a: Tensor, cands: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """In-batch InfoNCE / MultipleNegativesRanking: anchor i's positive is candidate i; the other candidates
    (other anchors' positives, then any hard negatives appended after the m positives) are its negatives.

    a [m, d], cands [m + k, d] -> (mean cross-entropy, similarity logits [m, m + k]).
    """
    sim = F.normalize(a.float(), dim=-1) @ F.normalize(cands.float(), dim=-1).T / temperature  # [m, m + k]
    return F.cross_entropy(sim, torch.arange(a.size(0), device=a.device)), sim


def supcon_loss(z: Tensor, groups: Tensor, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """Multi-positive InfoNCE (SupCon, Khosla et al. 2020, the L_out form): every other row of an anchor's group is
    a positive, every row of another group a negative; an anchor's loss is the mean over its positives of
    -log softmax over all rows but itself.

    z [n, d], groups [n] -> (mean loss over anchors with a positive, similarity logits [n, n] with the diagonal
    at -inf, positives mask [n, n]). A batch with no positive at all gives 0 (still in the graph).
    """
    n = z.size(0)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = F.normalize(z.float(), dim=-1) @ F.normalize(z.float(), dim=-1).T / temperature  # [n, n]
    sim = sim.masked_fill(eye, float("-inf"))
    pos = (groups.view(-1, 1) == groups.view(1, -1)) & ~eye  # [n, n]
    log_p = sim.log_softmax(dim=1).masked_fill(~pos, 0.0)  # [n, n]: log p(j | i) of positives only
    n_pos = pos.sum(1)  # [n]
    has = n_pos > 0
    if not bool(has.any()):
        return sim.new_zeros(()) * z.sum(), sim, pos
    per_anchor = -log_p.sum(1)[has] / n_pos[has]
    return per_anchor.mean(), sim, pos


def cosent_loss(cos: Tensor, gold: Tensor, scale: float) -> Tensor:
    """CoSENT (Su 2022, https://kexue.fm/archives/8847): with s = cos * scale,
    log(1 + sum over pairs (i, j) with gold_i > gold_j of exp(s_j - s_i)): every pair ranked against its gold order
    costs; pairs of equal gold cost nothing. cos, gold [bs] -> a scalar (0, still in the graph, for one row).
    """
    s = cos.float() * scale  # [bs]
    diff = s.unsqueeze(0) - s.unsqueeze(1)  # [i, j] = s_j - s_i
    ranked = gold.unsqueeze(1) > gold.unsqueeze(0)  # [i, j]: gold_i > gold_j
    terms = diff.masked_fill(~ranked, float("-inf")).flatten()  # [bs * bs], exp(-inf) = 0 for the other pairs
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)  # the 0 is the log's "1 +"


def cosine_mse_loss(cos: Tensor, gold: Tensor) -> Tensor:
    """mean((cos_i - gold_i)^2) over the rows; cos, gold [bs]."""
    return (cos.float() - gold.float()).pow(2).mean()

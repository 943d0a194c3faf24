"""NLI pairs shared by the sentence objectives: labels, the pairs tensor set, pairs turned into triplets."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LABELS, SENTENCES, Batch, Sentences, TensorSet, TensorSpec, lengths_name

ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2


PAIRS = TensorSet(
    "pairs",
    (TensorSpec("premise", SENTENCES), TensorSpec("hypothesis", SENTENCES), TensorSpec("labels", LABELS)),
)


def sentences_of(batch: Batch, name: str) -> Sentences:
    return batch[name], batch[lengths_name(name)]


def entailments(batch: Batch) -> int:
    return int((batch["labels"] == ENTAILMENT).sum())


def pairs_to_triplets(
    premise: Sentences, hypothesis: Sentences, labels: Tensor
) -> tuple[Sentences, Sentences, Sentences | None, Tensor]:
    """From NLI pairs: anchors (premises of entailment pairs), positives (their hypotheses), per-anchor
    negatives (a contradiction of the same premise when the batch has one, else another contradiction, else
    another anchor's positive) and a bool [m] telling which negatives share the anchor's premise.
    """
    ent = (labels == ENTAILMENT).nonzero().squeeze(1)  # [m]
    con = (labels == CONTRADICTION).nonzero().squeeze(1)  # [k]
    m, k = ent.numel(), con.numel()
    if m == 0:
        raise ValueError("the batch has no entailment pair (label 0) to use as anchor and positive")
    px, pl = premise
    hx, hl = hypothesis
    anchors, positives = (px[ent], pl[ent]), (hx[ent], hl[ent])
    if k == 0 and m == 1:
        return anchors, positives, None, torch.zeros(1, dtype=torch.bool, device=labels.device)
    if k > 0:
        # same premise = same padded token row and length: [m, k]
        same = (px[ent].unsqueeze(1) == px[con].unsqueeze(0)).all(-1) & (pl[ent].unsqueeze(1) == pl[con].unsqueeze(0))
        has = same.any(1)  # [m]
        first = same.float().argmax(1)  # index into con of the first same-premise contradiction
        fallback = torch.arange(m, device=labels.device) % k
        neg = con[torch.where(has, first, fallback)]  # [m]
    else:
        has = torch.zeros(m, dtype=torch.bool, device=labels.device)
        neg = ent.roll(1)  # another anchor's entailed hypothesis
    return anchors, positives, (hx[neg], hl[neg]), has


def triplets_of(batch: Batch) -> tuple[Sentences, Sentences, Sentences | None, Tensor | None]:
    """(anchors, positives, negatives or None, same-premise flags or None) from explicit triplets or NLI pairs."""
    if "anchor" in batch:
        neg = sentences_of(batch, "negative") if "negative" in batch else None
        return sentences_of(batch, "anchor"), sentences_of(batch, "positive"), neg, None
    return pairs_to_triplets(sentences_of(batch, "premise"), sentences_of(batch, "hypothesis"), batch["labels"])

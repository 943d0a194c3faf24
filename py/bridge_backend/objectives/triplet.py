"""triplet: margin loss on (anchor, positive, negative) distances; from NLI pairs, the anchor is an entailment's
premise, the positive its hypothesis, the negative a contradiction (of the same premise when the batch has one)."""

from __future__ import annotations

from typing import Any

import torch

from ..losses import DISTANCES, triplet_loss
from .base import SENTENCES, Batch, Encoder, Objective, StepOption, TensorSet, TensorSpec
from .pairs import CONTRADICTION, PAIRS, entailments, triplets_of

TRIPLETS = TensorSet(
    "triplets", (TensorSpec("anchor", SENTENCES), TensorSpec("positive", SENTENCES), TensorSpec("negative", SENTENCES))
)


class Triplet(Objective):
    name = "triplet"
    doc = "margin loss: each anchor nearer its positive than its negative by the margin"
    tensor_sets = (PAIRS, TRIPLETS)
    step_options = (
        StepOption("margin", float, "the triplet margin (0.5 suits cosine distance; ~1 Euclidean)", default=0.5, positive=True),
        StepOption("distance", str, "the distance between sentence vectors", default="cosine", choices=DISTANCES),
    )

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        a, p, n, same = triplets_of(batch)
        if n is None:
            raise ValueError("triplet needs a negative: a contradiction pair or a second entailment pair")
        va, vp, vn = trainer.encode_batches([a, p, n])
        margin = float(self.option(opts, "margin"))
        loss, d_pos, d_neg = triplet_loss(va, vp, vn, margin, self.option(opts, "distance"))
        metrics = {
            "loss": loss,
            "count": va.size(0),
            "correct": (d_pos < d_neg).sum(),  # anchor nearer its positive than its negative
            "active": (d_pos - d_neg + margin > 0).sum(),  # triplets still inside the margin
            "d_pos": d_pos.mean(),
            "d_neg": d_neg.mean(),
        }
        if same is not None:
            metrics["same_premise_negatives"] = same.sum()
        out = {"d_pos": d_pos.detach().float(), "d_neg": d_neg.detach().float()} if opts.get("return_logits") else {}
        return loss, metrics, out

    def can_be_empty(self, batch: Batch) -> bool:
        return "labels" in batch

    def is_empty(self, batch: Batch) -> bool:
        """No entailment pair, or a single one with no contradiction to be its negative."""
        m = entailments(batch)
        return m == 0 or (m == 1 and not bool((batch["labels"] == CONTRADICTION).any()))

    def empty_outputs(self):
        return {"d_pos": torch.zeros(0), "d_neg": torch.zeros(0)}


OBJECTIVE = Triplet()

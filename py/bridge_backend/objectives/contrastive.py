"""contrastive: in-batch InfoNCE, entailments as positives and contradictions as hard negatives; with only `x`
(raw sentences) it is unsupervised SimCSE (see simcse.py)."""

from __future__ import annotations

from typing import Any

import torch

from ..losses import info_nce
from .base import SENTENCES, Batch, Encoder, Objective, StepOption, TensorSet, TensorSpec
from .pairs import CONTRADICTION, PAIRS, entailments, sentences_of, triplets_of

TEMPERATURE = StepOption("temperature", float, "the InfoNCE temperature (SimCSE's)", default=0.05, positive=True)
SENTENCES_ONLY = TensorSet("sentences", (TensorSpec("x", SENTENCES),))
ANCHORS = TensorSet(
    "anchors",
    (
        TensorSpec("anchor", SENTENCES),
        TensorSpec("positive", SENTENCES),
        TensorSpec("negative", SENTENCES, required=False, same_rows=False),  # hard negatives, any number
    ),
)


def simcse_forward(trainer: Encoder, batch: Batch, temperature: float):
    """The same sentences through two separate passes, so every dropout mask differs (weight drop too)."""
    sents = sentences_of(batch, "x")
    (z1,), (z2,) = trainer.encode_batches([sents]), trainer.encode_batches([sents])
    return info_nce(z1, z2, temperature)


def contrastive_metrics(loss: torch.Tensor, sim: torch.Tensor, opts: dict[str, Any]):
    """Accuracy: anchor i's most similar candidate is its positive i."""
    target = torch.arange(sim.size(0), device=sim.device)
    metrics = {"loss": loss, "count": sim.size(0), "correct": (sim.argmax(1) == target).sum()}
    return loss, metrics, ({"sim": sim.detach().float()} if opts.get("return_logits") else {})


class Contrastive(Objective):
    name = "contrastive"
    doc = "in-batch InfoNCE: entailments as positives, contradictions as hard negatives (x alone: SimCSE)"
    tensor_sets = (SENTENCES_ONLY, PAIRS, ANCHORS)
    step_options = (TEMPERATURE,)
    shardable = False  # in-batch negatives: a rank's B/N rows see fewer negatives than one batch of B

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        t = float(self.option(opts, "temperature"))
        if "x" in batch:
            loss, sim = simcse_forward(trainer, batch, t)
            return contrastive_metrics(loss, sim, opts)
        a, p, n, _ = triplets_of(batch)
        if "anchor" in batch:
            negs = [n] if n is not None else []
        else:  # every contradiction is a hard negative for every anchor
            con = (batch["labels"] == CONTRADICTION).nonzero().squeeze(1)
            negs = [(batch["hypothesis"][con], batch["hypothesis_lengths"][con])] if con.numel() else []
        vecs = trainer.encode_batches([a, p, *negs])
        loss, sim = info_nce(vecs[0], torch.cat(vecs[1:]), t)
        return contrastive_metrics(loss, sim, opts)

    def can_be_empty(self, batch: Batch) -> bool:
        return "labels" in batch

    def is_empty(self, batch: Batch) -> bool:
        return entailments(batch) == 0

    def empty_outputs(self):
        return {"sim": torch.zeros(0, 0)}


OBJECTIVE = Contrastive()

"""simcse: unsupervised SimCSE: the same sentence twice, two dropout masks, in-batch InfoNCE."""

from __future__ import annotations

from typing import Any

from .base import Batch, Encoder, Objective
from .contrastive import SENTENCES_ONLY, TEMPERATURE, contrastive_metrics, simcse_forward


class SimCSE(Objective):
    name = "simcse"
    doc = "unsupervised SimCSE: each sentence's second dropout pass is its positive, the others its negatives"
    tensor_sets = (SENTENCES_ONLY,)
    step_options = (TEMPERATURE,)
    shardable = False  # in-batch negatives

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        t = float(self.option(opts, "temperature"))
        loss, sim = simcse_forward(trainer, batch, t)
        return contrastive_metrics(loss, sim, opts)


OBJECTIVE = SimCSE()

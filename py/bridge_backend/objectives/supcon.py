"""supcon: multi-positive contrastive learning on groups of sentences that mean the same thing (an image's captions):
every other sentence of a row's group is a positive, every sentence of another group in the batch a negative."""

from __future__ import annotations

from typing import Any

import torch

from ..losses import supcon_loss
from .base import GROUPS, SENTENCES, Batch, Encoder, Objective, TensorSet, TensorSpec
from .contrastive import TEMPERATURE
from .pairs import sentences_of

GROUPED = TensorSet("grouped", (TensorSpec("x", SENTENCES), TensorSpec("group", GROUPS)))


class SupCon(Objective):
    name = "supcon"
    doc = "multi-positive InfoNCE over groups: the other sentences of a row's group are its positives, the batch's rest negatives"
    tensor_sets = (GROUPED,)
    step_options = (TEMPERATURE,)
    shardable = False  # a group split across ranks would lose its positives, and every row scores the whole batch

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        (z,) = trainer.encode_batches([sentences_of(batch, "x")])
        loss, sim, pos = supcon_loss(z, batch["group"], float(self.option(opts, "temperature")))
        has = pos.any(1)  # anchors with a positive in the batch
        correct = pos.gather(1, sim.argmax(1, keepdim=True)).squeeze(1) & has  # nearest other row is a positive
        metrics = {"loss": loss, "count": has.sum(), "correct": correct.sum()}
        return loss, metrics, ({"sim": sim.detach().float()} if opts.get("return_logits") else {})

    def empty_outputs(self):
        return {"sim": torch.zeros(0, 0)}


OBJECTIVE = SupCon()

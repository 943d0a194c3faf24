"""siamese: premise and hypothesis through the one encoder, pair features, MLP, 3-way cross-entropy."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from .base import Batch, Encoder, Objective
from .pairs import PAIRS, sentences_of


class Siamese(Objective):
    name = "siamese"
    doc = "NLI classifier over pair features of the premise's and hypothesis's vectors (3-way cross-entropy)"
    tensor_sets = (PAIRS,)
    uses_head = True  # the NLI classifier

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        u, v = trainer.head_batches([sentences_of(batch, "premise"), sentences_of(batch, "hypothesis")])
        logits = trainer.model.classify(u, v)  # [bs, n_classes]
        labels = batch["labels"]
        loss = F.cross_entropy(logits.float(), labels)
        metrics = {"loss": loss, "correct": (logits.argmax(-1) == labels).sum(), "count": labels.numel()}
        out = {"logits": logits.detach().float()} if opts.get("return_logits") else {}
        return loss, metrics, out


OBJECTIVE = Siamese()

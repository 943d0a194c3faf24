"""Scored sentence pairs shared by the similarity objectives (cosent, cosine_mse): the tensor set, the pair
cosines, and their metrics and outputs."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .base import SCORES, SENTENCES, Batch, Encoder, Metrics, Outputs, TensorSet, TensorSpec
from .pairs import sentences_of

SCORED_PAIRS = TensorSet(
    "scored_pairs",
    (TensorSpec("premise", SENTENCES), TensorSpec("hypothesis", SENTENCES), TensorSpec("scores", SCORES)),
)


def pair_cosines(trainer: Encoder, batch: Batch) -> Tensor:
    """cos(u_i, v_i) [bs] float32 of each premise's and hypothesis's vectors, both sides in one encoder call."""
    u, v = trainer.encode_batches([sentences_of(batch, "premise"), sentences_of(batch, "hypothesis")])
    return F.cosine_similarity(u.float(), v.float(), dim=-1)


def similarity_result(loss: Tensor, cos: Tensor, opts: dict[str, Any]) -> tuple[Tensor, Metrics, Outputs]:
    """(loss, metrics, outputs): no accuracy (`correct` 0); with return_logits the cosines as `sim` [bs], from
    which the TS side computes Spearman's correlation over the whole validation set."""
    metrics = {"loss": loss, "count": cos.size(0), "correct": 0}
    return loss, metrics, ({"sim": cos.detach().float()} if opts.get("return_logits") else {})

"""cosine_mse: each pair's cosine regressed on its gold score (0..1), mean squared error."""

from __future__ import annotations

from typing import Any

from ..losses import cosine_mse_loss
from .base import SIMILARITY_METRICS, Batch, Encoder, Objective
from .scored import SCORED_PAIRS, pair_cosines, similarity_result


class CosineMSE(Objective):
    name = "cosine_mse"
    doc = "mean of (cos(u_i, v_i) - gold_i)^2 over scored pairs (gold scaled to 0..1)"
    tensor_sets = (SCORED_PAIRS,)
    metrics = SIMILARITY_METRICS

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        cos = pair_cosines(trainer, batch)
        return similarity_result(cosine_mse_loss(cos, batch["scores"]), cos, opts)


OBJECTIVE = CosineMSE()

"""cosent: CoSENT (Su 2022) on scored pairs: the pairs' cosines ranked in their gold scores' order."""

from __future__ import annotations

from typing import Any

from ..losses import cosent_loss
from .base import SIMILARITY_METRICS, Batch, Encoder, Objective, StepOption
from .scored import SCORED_PAIRS, pair_cosines, similarity_result


class CoSENT(Objective):
    name = "cosent"
    doc = "CoSENT: log(1 + sum exp(s_j - s_i)) over the batch's pairs whose gold score orders i above j (s = 20 cos)"
    tensor_sets = (SCORED_PAIRS,)
    step_options = (
        StepOption("scale", float, "the factor on the cosines before the pairwise softplus", default=20.0, positive=True),
    )
    metrics = SIMILARITY_METRICS
    shardable = False  # it ranks every pair of the batch against the others: a shard sees fewer pairs

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        cos = pair_cosines(trainer, batch)
        return similarity_result(cosent_loss(cos, batch["scores"], float(self.option(opts, "scale"))), cos, opts)


OBJECTIVE = CoSENT()

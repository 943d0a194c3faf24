"""The objective registry: every objective, listed once.

Adding an objective is one new module here (an `Objective` subclass with its step options, see base.py), its
line in OBJECTIVE_MODULES, and its entry in the TypeScript config schema (ts/config/schema.ts OBJECTIVE_SPECS);
the Trainer, the step ops' validation and `describe` take it from this registry.
"""

from __future__ import annotations

from .base import Objective
from .contrastive import OBJECTIVE as CONTRASTIVE
from .cosent import OBJECTIVE as COSENT
from .cosine_mse import OBJECTIVE as COSINE_MSE
from .lm import OBJECTIVE as LM
from .siamese import OBJECTIVE as SIAMESE
from .simcse import OBJECTIVE as SIMCSE
from .supcon import OBJECTIVE as SUPCON
from .triplet import OBJECTIVE as TRIPLET

OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    """Adds an objective; a second one of the same name is refused."""
    if not isinstance(objective, Objective):
        raise TypeError(f"an objective must be an Objective, got {type(objective).__name__}")
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is defined twice")
    OBJECTIVES[objective.name] = objective
    return objective


def get_objective(name: str) -> Objective:
    """The objective called `name`; ValueError naming the known ones otherwise."""
    objective = OBJECTIVES.get(name)
    if objective is None:
        raise ValueError(f"unknown objective {name!r} (one of {', '.join(OBJECTIVES)})")
    return objective


for _objective in (LM, SIAMESE, TRIPLET, CONTRASTIVE, SIMCSE, COSENT, COSINE_MSE, SUPCON):
    register(_objective)

__all__ = ["OBJECTIVES", "Objective", "get_objective", "register"]

"""The objective registry: every module of this package that defines `OBJECTIVE` contributes one objective.

Adding an objective is one new module here (an `Objective` subclass, see base.py) and its entry in the
TypeScript config schema (ts/config/schema.ts); the Trainer, the step ops' validation and `describe` take
it from this registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Objective

OBJECTIVES: dict[str, Objective] = {}


def _collect() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        objective = getattr(module, "OBJECTIVE", None)
        if objective is None:
            continue  # shared helpers (base, pairs)
        if not isinstance(objective, Objective):
            raise TypeError(f"{module.__name__}.OBJECTIVE must be an Objective, got {type(objective).__name__}")
        if objective.name in OBJECTIVES:
            raise ValueError(f"objective {objective.name!r} is defined twice ({module.__name__})")
        OBJECTIVES[objective.name] = objective


def get_objective(name: str) -> Objective:
    """The objective called `name`; ValueError naming the known ones otherwise."""
    objective = OBJECTIVES.get(name)
    if objective is None:
        raise ValueError(f"unknown objective {name!r} (one of {', '.join(OBJECTIVES)})")
    return objective


_collect()

__all__ = ["OBJECTIVES", "Objective", "get_objective"]

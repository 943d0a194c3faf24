"""All ops: importing a module registers its ops in OPS (see registry.py)."""

from . import distributed, model, probe, system, transfer  # noqa: F401
from .registry import OPS, Reply, op

__all__ = ["OPS", "Reply", "op"]

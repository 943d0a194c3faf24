"""The backend's state between requests: device, event channel and (later) model and optimizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

EmitFn = Callable[[str, dict[str, Any]], None]


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given, else the first CUDA GPU when there is one, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Session:
    """Everything an op may read or change. One per backend process."""

    def __init__(self, emit: EmitFn, device: str | None = None) -> None:
        self.emit = emit
        self.device = pick_device(device)
        self.shutdown_requested = False
        self.trainer: Any = None  # training.Trainer (model + optimizer) once `build` or `load` ran
        self.root: str | None = None  # a served backend's root: file paths in ops stay inside it (ops/args.py path_arg)

    def model_summary(self) -> dict[str, Any] | None:
        """The model's module tree, parameter counts, device and config; None before `build`."""
        return None if self.trainer is None else self.trainer.summary()

    def log(self, message: str, level: str = "info") -> None:
        """Pushes a log line to the client as an event (shown by the TypeScript side)."""
        self.emit("log", {"level": level, "message": message})

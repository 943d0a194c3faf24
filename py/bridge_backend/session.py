"""The backend's state between requests: device, event channel and (later) model and optimizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .encode_jobs import EncodeJobs

EmitFn = Callable[[str, dict[str, Any]], None]


class DeviceError(ValueError):
    """A requested device that torch cannot name or this machine does not have."""


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given (checked: a bad name or an absent GPU is a DeviceError), else the first CUDA GPU when
    there is one, else the CPU."""
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise DeviceError(f"device {requested!r}: not a torch device (cpu, cuda, cuda:N, mps, ...)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise DeviceError(f"device {requested!r}: this torch ({torch.__version__}, {build}) sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {requested!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {requested!r}: MPS is not available on this machine")
    return device


class Session:
    """Everything an op may read or change. One per backend process."""

    def __init__(self, emit: EmitFn, device: str | None = None) -> None:
        self.emit = emit
        self.device = pick_device(device)
        self.shutdown_requested = False
        self.trainer: Any = None  # training.Trainer (model + optimizer) once `build` or `load` ran
        self.root: str | None = None  # a served backend's root: file paths in ops stay inside it (ops/args.py path_arg)
        self.encode_jobs = EncodeJobs()  # `encode` with a job: vectors gathered in input order until `encode_result`

    def model_summary(self) -> dict[str, Any] | None:
        """The model's module tree, parameter counts, device and config; None before `build`."""
        return None if self.trainer is None else self.trainer.summary()

    def log(self, message: str, level: str = "info") -> None:
        """Pushes a log line to the client as an event (shown by the TypeScript side)."""
        self.emit("log", {"level": level, "message": message})

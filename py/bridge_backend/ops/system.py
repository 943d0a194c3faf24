"""Transport-level ops: handshake, liveness, echo (tests and benchmarks), facts, the op catalogue, shutdown."""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import zmq

from .. import PROTOCOL_VERSION, __version__
from ..errors import BridgeError
from ..losses import DISTANCES
from ..models.archs import ARCH_PRESETS, ARCHS, SENTENCE_ATTENTIONS
from ..models.awd_lstm import SOFTMAXES, AWDLSTMConfig
from ..models.heads import FEATURES, HeadConfig
from ..models.pooling import POOL_LAYERS, POOL_WEIGHTINGS, POOLS
from ..objectives import OBJECTIVES
from ..session import Session
from ..training import AUTOCAST_MODES, OPTIMIZERS, TrainConfig
from .args import arg
from .registry import OP_INFO, Args, Reply, Tensors, op


@op("hello")
def hello(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """The handshake: the client's protocol version must be ours."""
    theirs = arg(args, "protocol", int)
    if theirs != PROTOCOL_VERSION:
        raise BridgeError(
            f"protocol mismatch: client speaks {theirs}, backend speaks {PROTOCOL_VERSION}; "
            "reinstall so both sides come from the same checkout",
            code="protocol_version",
            fatal=True,
        )
    return {"protocol": PROTOCOL_VERSION, "backend": __version__, "pid": os.getpid(), "device": str(session.device)}


@op("ping")
def ping(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Liveness: replies pong."""
    return {"pong": True}


@op("echo")
def echo(session: Session, args: Args, tensors: Tensors) -> Reply:
    """Returns the tensors it got (and its args as `result.args`)."""
    return Reply(result={"args": args}, tensors=dict(tensors))


@op("introspect")
def introspect(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Facts about this backend: Python, torch and library versions, device, threads, CUDA, the model."""
    cuda = torch.cuda.is_available()
    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "pid": os.getpid(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "device": str(session.device),
        "threads": torch.get_num_threads(),
        "cuda": {
            "available": cuda,
            "version": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        },
    }
    summary = getattr(session, "model_summary", None)
    if callable(summary):
        facts["model"] = summary()
    return facts


def describe_backend() -> dict[str, Any]:
    """The catalogue `describe` replies with (JSON-able)."""
    return {
        "protocol": PROTOCOL_VERSION,
        "backend": __version__,
        "ops": [{"name": name, "doc": OP_INFO[name].doc, "every_rank": OP_INFO[name].every_rank} for name in sorted(OP_INFO)],
        "objectives": [o.describe() for o in OBJECTIVES.values()],
        # the values a config may name, as `build` / `set_hparams` / the step ops check them
        "enums": {
            "arch": list(ARCHS),
            "sentence_attention": list(SENTENCE_ATTENTIONS),
            "preset": list(dict.fromkeys(name for presets in ARCH_PRESETS.values() for name in presets)),
            "pool": list(POOLS),
            "pool_layers": list(POOL_LAYERS),
            "pool_weighting": list(POOL_WEIGHTINGS),
            "features": list(FEATURES),
            "opt": list(OPTIMIZERS),
            "distance": list(DISTANCES),
            "softmax": list(SOFTMAXES),
            "autocast": list(AUTOCAST_MODES),
        },
        "presets": {arch: {name: dict(sizes) for name, sizes in presets.items()} for arch, presets in ARCH_PRESETS.items()},
        # what `build` uses for an argument it is not given (model: before the preset's sizes)
        "defaults": {"model": asdict(AWDLSTMConfig()), "head": asdict(HeadConfig()), "train": asdict(TrainConfig())},
    }


@op("describe")
def describe(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """The backend's catalogue: every op (doc, whether it goes to every data-parallel rank), the objectives
    (tensors, step options, metrics, uses_head, shardable), the enums and defaults a config may name."""
    return describe_backend()


@op("shutdown")
def shutdown(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Replies, then the loop ends."""
    session.shutdown_requested = True
    return {"bye": True}


@op("sleep")
def sleep(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Holds the backend for `seconds` (at most 60): for tests of pending calls and crashes."""
    seconds = arg(args, "seconds", float)
    if not 0 <= seconds <= 60:
        raise BridgeError("sleep: seconds must be within 0..60", code="bad_args")
    time.sleep(seconds)
    return {"slept": seconds}


@op("emit")
def emit(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Pushes `count` log events before replying: for tests of the event channel."""
    count = arg(args, "count", int, 1)
    for i in range(count):
        session.log(f"event {i}", level=arg(args, "level", str, "info"))
    return {"emitted": count}


@op("raise")
def raise_(session: Session, args: Args, tensors: Tensors) -> dict[str, Any]:
    """Raises the named built-in exception: for tests of error replies."""
    kind = arg(args, "type", str, "ValueError")
    exc = {"ValueError": ValueError, "RuntimeError": RuntimeError, "KeyError": KeyError, "ZeroDivisionError": ZeroDivisionError}
    if kind not in exc:
        raise BridgeError(f"raise: type must be one of {', '.join(exc)}", code="bad_args")
    raise exc[kind](arg(args, "message", str, "raised on request"))

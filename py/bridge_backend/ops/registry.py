"""The dispatch table: each op is a function registered by name with `@op("name")`.

`@op("name", every_rank=True)` marks an op that, under data parallelism (--nproc / --hosts), must reach every
rank because it changes state that the ranks keep identical (model, optimizer, hyper-parameters, the process
group); the others go to rank 0 alone (train_step is sharded). The first paragraph of the op's docstring is
its doc; `describe` lists both (OP_INFO).

An op receives the session (the backend's state), the request's JSON args and its tensors
(read-only views over the received frames: clone before writing in place), and returns either
a JSON-able dict or a `Reply` with tensors too. Raise `BadArgs` for a bad request; any other
exception reaches the client as `op_failed` with its type, message and traceback. New ops join
by being imported in `ops/__init__.py`; the transport never changes for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import torch

if TYPE_CHECKING:
    from ..session import Session

Args: TypeAlias = dict[str, Any]
Tensors: TypeAlias = dict[str, torch.Tensor]


@dataclass
class Reply:
    result: dict[str, Any] = field(default_factory=dict)
    tensors: Tensors = field(default_factory=dict)


OpFn: TypeAlias = Callable[["Session", Args, Tensors], "Reply | dict[str, Any] | None"]


@dataclass(frozen=True)
class OpInfo:
    name: str
    doc: str  # the first paragraph of the handler's docstring, on one line
    every_rank: bool  # under data parallelism, sent to every rank (else rank 0 alone)


OPS: dict[str, OpFn] = {}
OP_INFO: dict[str, OpInfo] = {}


def op(name: str, *, every_rank: bool = False) -> Callable[[OpFn], OpFn]:
    """Registers `fn` as the handler of op `name`; `every_rank`: see the module's docstring."""

    def register(fn: OpFn) -> OpFn:
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice ({OPS[name].__module__} and {fn.__module__})")
        doc = " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())  # the first paragraph, on one line
        if not doc:
            raise ValueError(f"op {name!r} ({fn.__module__}) needs a docstring: it is the op's doc in `describe`")
        OPS[name] = fn
        OP_INFO[name] = OpInfo(name, doc, every_rank)
        return fn

    return register

"""The dispatch table: each op is a function registered by name with `@op("name")`.

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

OPS: dict[str, OpFn] = {}


def op(name: str) -> Callable[[OpFn], OpFn]:
    """Registers `fn` as the handler of op `name`."""

    def register(fn: OpFn) -> OpFn:
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice ({OPS[name].__module__} and {fn.__module__})")
        OPS[name] = fn
        return fn

    return register

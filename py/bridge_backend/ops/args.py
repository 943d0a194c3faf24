"""Typed access to an op's arguments, raising BadArgs that name the argument."""

from __future__ import annotations

import os
from typing import Any, TypeVar

import torch

from ..errors import BadArgs

T = TypeVar("T")


def arg(args: dict[str, Any], name: str, kind: type[T], default: T | None = None) -> T:
    """`args[name]` checked to be a `kind` (int accepted for float); `default` when absent."""
    if name not in args or args[name] is None:
        if default is None:
            raise BadArgs(f"missing argument {name!r}")
        return default
    value = args[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadArgs(f"argument {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def tensor_arg(
    tensors: dict[str, torch.Tensor],
    name: str,
    *,
    dtypes: tuple[torch.dtype, ...] | None = None,
    ndim: int | None = None,
) -> torch.Tensor:
    """`tensors[name]`, checked for dtype and number of dimensions."""
    if name not in tensors:
        raise BadArgs(f"missing tensor {name!r}")
    t = tensors[name]
    if dtypes is not None and t.dtype not in dtypes:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise BadArgs(f"tensor {name!r} must be {allowed}, got {str(t.dtype).removeprefix('torch.')}")
    if ndim is not None and t.dim() != ndim:
        raise BadArgs(f"tensor {name!r} must have {ndim} dimensions, got shape {list(t.shape)}")
    return t


def path_arg(session: Any, args: dict[str, Any], name: str) -> str:
    """A file path argument. A served backend (`bridge serve --root DIR`) confines it to its root: a relative path
    is taken from the root, and one that resolves outside it (through `..` or a link) is refused. A backend the
    command line started for itself has no root: its client is the user who started it."""
    path = arg(args, name, str)
    root = getattr(session, "root", None)
    if root is None:
        return path
    full = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([full, root]) != root:
        raise BadArgs(f"argument {name!r}: {path} is outside this backend's root {root} (bridge serve --root)")
    return full

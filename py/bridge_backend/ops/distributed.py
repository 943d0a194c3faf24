"""init_distributed: makes this backend one rank of a data-parallel group (see bridge_backend.distributed).

init_distributed   rank, world_size, master_addr?, master_port, backend? (gloo | nccl), timeout_s?
                   -> rank, world_size, backend
                   A backend already in a group (a served one, on to its next run) leaves that group first.
"""

from __future__ import annotations

from .. import distributed
from ..errors import BadArgs
from .args import arg
from .registry import Args, Tensors, op


@op("init_distributed", every_rank=True)
def init_distributed(session, args: Args, tensors: Tensors):
    """Joins the process group; every rank must be sent this at the same time (it blocks until all have)."""
    rank, world = arg(args, "rank", int), arg(args, "world_size", int)
    if not 0 <= rank < world:
        raise BadArgs(f"rank must be within 0..world_size-1, got rank {rank} of {world}")
    backend = arg(args, "backend", str, "nccl" if session.device.type == "cuda" else "gloo")
    if backend not in ("gloo", "nccl"):
        raise BadArgs(f"backend must be gloo or nccl, got {backend!r}")
    try:
        distributed.init(
            rank,
            world,
            arg(args, "master_addr", str, "127.0.0.1"),
            arg(args, "master_port", int),
            backend,
            arg(args, "timeout_s", float, 300.0),
        )
    except ValueError as e:
        raise BadArgs(str(e)) from e
    return {"rank": rank, "world_size": world, "backend": backend}

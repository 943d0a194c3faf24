"""Data parallelism across backend processes, one per rank, with torch.distributed (gloo on CPU, NCCL on GPU).

TypeScript starts the ranks, sends each its shard of every global batch and the same control ops (build,
set_hparams, set_trainable, load); rank 0 alone saves and evaluates. After each backward the ranks average
their gradients (DistributedDataParallel's all-reduce, done by hand because the model has several entry
points: lm, encode, classify) and agree on whether every loss was finite, so a step is taken or skipped by
all ranks together and their weights never drift apart.
"""

from __future__ import annotations

from datetime import timedelta

import torch
import torch.distributed as dist


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def init(rank: int, world_size: int, addr: str, port: int, backend: str, timeout_s: float) -> None:
    """Joins the process group (blocks until every rank has joined).

    A backend that outlives its runs (`bridge serve` on a host of `train --hosts`) first leaves the group of the
    previous run: that run has ended, or its group broke when another host went away, and a resumed run joins anew.
    """
    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group(
        backend,
        init_method=f"tcp://{addr}:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )


def all_true(flag: bool) -> bool:
    """Whether `flag` holds on every rank."""
    # NCCL reduces CUDA tensors only (gloo either kind)
    t = torch.tensor([0.0 if flag else 1.0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t) == 0.0


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Replaces each gradient by its mean over the ranks (one all-reduce over a flat buffer).

    Every trainable parameter takes part, with zeros where this rank's batch left it without a gradient, so
    that all ranks reduce the same buffer.
    """
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # [sum of numels]
    if dist.get_backend() == "gloo" and flat.is_cuda:
        flat = flat.cpu()
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g).to(p.device)
        offset += n

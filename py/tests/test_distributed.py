"""Data parallelism: argument checks of init_distributed, and gradient averaging across 2 gloo ranks."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bridge_backend import distributed
from bridge_backend.errors import BadArgs
from bridge_backend.ops import OPS
from bridge_backend.session import Session


def test_init_distributed_checks_its_arguments() -> None:
    s = Session(lambda *_: None, "cpu")
    with pytest.raises(BadArgs, match="rank must be within"):
        OPS["init_distributed"](s, {"rank": 2, "world_size": 2, "master_port": 1}, {})
    with pytest.raises(BadArgs, match="gloo or nccl"):
        OPS["init_distributed"](s, {"rank": 0, "world_size": 1, "master_port": 1, "backend": "mpi"}, {})
    assert not distributed.active()


def _rank(rank: int, port: int, out: dict) -> None:
    distributed.init(rank, 2, "127.0.0.1", port, "gloo", 60)
    p = torch.nn.Parameter(torch.zeros(3))
    q = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((3,), float(rank + 1))  # rank 0: 1, rank 1: 2 -> mean 1.5
    q.grad = None if rank == 0 else torch.ones(2)  # a parameter unused on one rank counts as zero there
    distributed.average_gradients([p, q])
    out[rank] = (p.grad.tolist(), q.grad.tolist(), distributed.all_true(rank == 0))
    dist.destroy_process_group()


def test_average_gradients_over_two_ranks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_rank, args=(port, out), nprocs=2, join=True)
        for rank in (0, 1):
            assert out[rank] == ([1.5, 1.5, 1.5], [0.5, 0.5], False)

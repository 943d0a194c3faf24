"""Data parallelism: argument checks of init_distributed, gradient averaging, seeding and skipping across 2 gloo ranks."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_training import pair_batch

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_average_gradients_over_two_ranks() -> None:
    port = free_port()
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_rank, args=(port, out), nprocs=2, join=True)
        for rank in (0, 1):
            assert out[rank] == ([1.5, 1.5, 1.5], [0.5, 0.5], False)


TINY = {"preset": "tiny", "vocab_sz": 40, "seed": 0, "head_hidden": 16}


def _build_and_step(rank: int, port: int, out: dict) -> None:
    distributed.init(rank, 2, "127.0.0.1", port, "gloo", 60)
    s = Session(lambda *_: None, "cpu")
    OPS["build"](s, TINY, {})
    weights = torch.cat([p.detach().flatten().clone() for p in s.trainer.model.parameters()])
    draw = torch.rand(4)  # what the dropout masks would draw from
    b = pair_batch()
    if rank == 1:
        b["labels"] = torch.tensor([1, 2, 1, 2, 2, 2, 1, 1])  # no entailment: nothing for contrastive on rank 1
    res, _ = s.trainer.train_step("contrastive", b, {})
    out[rank] = (weights, draw, res["count"], res["stepped"], s.trainer.step)
    dist.destroy_process_group()


def test_ranks_build_alike_draw_apart_and_skip_together() -> None:
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_build_and_step, args=(free_port(), out), nprocs=2, join=True)
        (w0, d0, *res0), (w1, d1, *res1) = out[0], out[1]
    assert torch.equal(w0, w1) and not torch.equal(d0, d1)
    assert res0 == res1 == [0, False, 0]  # rank 0 had pairs, rank 1 none: both skip, neither hangs
    s = Session(lambda *_: None, "cpu")  # a lone process: its generator as before, like rank 0's
    OPS["build"](s, TINY, {})
    assert torch.equal(torch.rand(4), d0)


def _lose_a_peer_then_rejoin(rank: int, ports: tuple[int, int], out: dict) -> None:
    distributed.init(rank, 2, "127.0.0.1", ports[0], "gloo", 60)
    if rank == 1:
        os._exit(0)  # a host's backend killed: no goodbye to the group
    t0 = time.monotonic()
    try:
        dist.all_reduce(torch.ones(1))
        out["error"] = None
    except RuntimeError as e:
        out["error"] = str(e)
    out["seconds"] = time.monotonic() - t0
    distributed.init(0, 1, "127.0.0.1", ports[1], "gloo", 60)  # the next run on this served backend
    t = torch.full((2,), 3.0)
    dist.all_reduce(t)
    out["rejoined"] = (dist.get_world_size(), t.tolist())
    dist.destroy_process_group()


def test_a_lost_peer_fails_the_collective_promptly_and_the_backend_can_join_a_new_group() -> None:
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_lose_a_peer_then_rejoin, args=((free_port(), free_port()), out), nprocs=2, join=True)
        assert out["error"], "the all-reduce with a dead peer should have failed"
        assert out["seconds"] < 30, f"noticing the dead peer took {out['seconds']:.1f} s (the group's timeout is 60 s)"
        assert out["rejoined"] == (1, [3.0, 3.0])

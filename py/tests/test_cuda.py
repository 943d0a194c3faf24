"""The CUDA path (marker `cuda`; scripts/gpu-check.sh runs these, `-m cuda`). Skipped with a message without a GPU.

Tolerances, stated once here:
- batch invariance on CUDA: a sentence's vector alone vs among batch-mates, abs/rel 1e-4 (cuDNN picks its
  kernels by batch shape, so sums run in other orders than on the CPU, where 1e-5 holds);
- CUDA vs CPU in float32 (autocast off, TF32 off): losses agree to rel 1e-3 over a few optimizer steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_awd_lstm import assert_batch_invariant
from test_distributed import free_port
from test_sha_rnn import make as make_sha
from test_similarity_objectives import scored_batch
from test_training import V, lm_batch, make, pair_batch, sents

from bridge_backend import distributed
from bridge_backend.checkpoints import load_checkpoint, save_checkpoint
from bridge_backend.models.sha_rnn import SHARNN
from bridge_backend.training import Trainer

CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not CUDA, reason="no CUDA device: the cuda-marked tests run on a GPU machine (scripts/gpu-check.sh)"),
]

BATCH_ATOL = BATCH_RTOL = 1e-4
DEVICE_RTOL = 1e-3


@pytest.fixture(autouse=True)
def exact_float32() -> Iterator[None]:
    """TF32 off for the comparisons (it trades mantissa bits for speed on Ampere and later)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def on_cuda(seed: int = 0, head: dict | None = None, **kw) -> Trainer:
    """The trainer `make(seed, head, **kw)` builds, with the same initial weights, on the GPU."""
    t = make(seed, head, **kw)
    return Trainer(t.model, t.tc, torch.device("cuda"))


def to_cuda(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.cuda() for k, v in batch.items()}


def test_batch_invariance_on_cuda() -> None:
    t = on_cuda()
    t.model.eval()
    lengths = [6, 2, 9, 1, 6, 4, 12, 3]
    x, lens = sents(lengths, 3)
    x, lens = x.cuda(), lens.cuda()
    with torch.no_grad():
        batch = t.model.encode(x, lens)
        for i, n in enumerate(lengths):
            alone = t.model.encode(x[i : i + 1, :n], lens[i : i + 1])
            torch.testing.assert_close(batch[i : i + 1], alone, atol=BATCH_ATOL, rtol=BATCH_RTOL)


def test_batch_invariance_on_cuda_with_every_vector_option() -> None:
    """pool_emb, idf weights, a SIF component fitted on the GPU and a projection keep a vector batch-invariant."""
    options = {"pool_emb": True, "pool_weighting": "idf", "sif": True, "proj_dim": 12}
    t = on_cuda(head={"pool": "concat", "pool_layers": "all", **options})
    assert t.model.token_weights is not None and t.model.sif_pc is not None
    t.model.token_weights.copy_(torch.rand(V, device="cuda") * 2.5 + 0.5)
    x, lens = sents([(i % 9) + 1 for i in range(300)], 1)
    r = t.fit_pc(x.cuda(), lens.cuda())
    assert r["count"] == 300 and 0 < r["explained"] <= 1 and t.model.sif_pc.device.type == "cuda"
    with torch.no_grad():
        v = t.encode(x[:50].cuda(), lens[:50].cuda())
    assert float((v @ t.model.sif_pc).abs().max()) < 1e-4
    assert_batch_invariant(t.model.eval(), tol=BATCH_ATOL)


@pytest.mark.skipif(CUDA and not torch.cuda.is_bf16_supported(), reason="this GPU has no bf16")
@pytest.mark.parametrize("objective", ["lm", "siamese", "cosent", "cosine_mse"])
def test_bf16_autocast_steps_give_finite_losses(objective: str) -> None:
    t = on_cuda(lr=1e-2, autocast="bf16")
    batches = {"lm": lm_batch, "siamese": pair_batch, "cosent": scored_batch, "cosine_mse": scored_batch}
    batch = to_cuda(batches[objective]())
    losses = [t.train_step(objective, batch, {})[0]["loss"] for _ in range(5)]
    assert all(math.isfinite(v) for v in losses), losses
    assert t.step == 5, "every step should have been taken (none skipped as non-finite)"
    assert losses[-1] < losses[0], f"five steps on one batch should lower its loss: {losses}"


def test_sha_rnn_on_cuda_is_batch_invariant() -> None:
    t = make_sha(head={"pool": "concat", "pool_layers": "mix", "pool_emb": True})
    assert_batch_invariant(Trainer(t.model, t.tc, torch.device("cuda")).model.eval(), tol=BATCH_ATOL)


@pytest.mark.skipif(CUDA and not torch.cuda.is_bf16_supported(), reason="this GPU has no bf16")
@pytest.mark.parametrize("objective", ["lm", "siamese"])
def test_sha_rnn_bf16_autocast_steps_give_finite_losses(objective: str) -> None:
    """The attention and Boom under bf16 autocast (the LSTMs stay fp32), the LM's memory carried between steps."""
    t = make_sha(lr=1e-2, autocast="bf16", drop_mult=0.0)
    t = Trainer(t.model, t.tc, torch.device("cuda"))
    batch = to_cuda(lm_batch() if objective == "lm" else pair_batch())
    # the LM resets its state (and memory) on the first step only: later steps attend to the memory carried over
    losses = [t.train_step(objective, batch, {"reset": i == 0} if objective == "lm" else {})[0]["loss"] for i in range(5)]
    assert all(math.isfinite(v) for v in losses) and t.step == 5, losses
    assert losses[-1] < losses[0], losses
    if objective == "lm":
        memory = t.lm_state["train"][SHARNN.attention_layer(t.model.cfg)][2]  # [bs, m, emb_sz]
        assert memory.size(1) > 0 and memory.is_cuda and bool(torch.isfinite(memory).all())


def test_weight_drop_under_cudnn_matches_the_cpu_path() -> None:
    """Eval mode (raw weights through cuDNN) and training steps with the dropouts at 0 (the weight-drop module
    still in the path) give the CPU's losses; in training, weight drop on CUDA really draws masks."""
    no_dropout = {"lr": 1e-2, "autocast": "off", "drop_mult": 0.0, "head": {"head_hidden": 32, "head_p": 0.0}}
    cpu, gpu = make(**no_dropout), on_cuda(**no_dropout)
    for objective, batch in (("lm", lm_batch()), ("siamese", pair_batch())):
        want = cpu.eval_step(objective, batch, {})[0]["loss"]
        got = gpu.eval_step(objective, to_cuda(batch), {})[0]["loss"]
        assert got == pytest.approx(want, rel=DEVICE_RTOL), f"{objective} eval loss: cuda {got} vs cpu {want}"
    want = [cpu.train_step("siamese", pair_batch(), {})[0]["loss"] for _ in range(3)]
    got = [gpu.train_step("siamese", to_cuda(pair_batch()), {})[0]["loss"] for _ in range(3)]
    assert got == pytest.approx(want, rel=DEVICE_RTOL), f"training losses: cuda {got} vs cpu {want}"

    dropping = on_cuda(weight_p=0.5, embed_p=0.0, input_p=0.0, hidden_p=0.0, output_p=0.0)  # weight drop alone
    dropping.model.train()
    x, lens = sents([7, 5, 9], 4)
    with torch.no_grad():
        first, second = (dropping.model.encode(x.cuda(), lens.cuda()) for _ in range(2))
    assert not torch.allclose(first, second), "weight drop drew no masks on CUDA in training mode"


def test_a_checkpoint_saved_on_cuda_loads_on_the_cpu(tmp_path: Path) -> None:
    gpu = on_cuda(seed=1, lr=1e-2, autocast="off")
    for _ in range(2):
        gpu.train_step("siamese", to_cuda(pair_batch()), {})
    path = tmp_path / "cuda.pt"
    save_checkpoint(gpu, path, {})
    cpu = make(seed=99, lr=1e-2)
    assert load_checkpoint(cpu, path, "all")["step"] == 2
    assert all(p.device.type == "cpu" for p in cpu.model.parameters())
    x, lens = sents([3, 6, 4], 9)
    gpu.model.eval()
    cpu.model.eval()
    with torch.no_grad():
        on_gpu = gpu.model.encode(x.cuda(), lens.cuda()).cpu()
        torch.testing.assert_close(cpu.model.encode(x, lens), on_gpu, atol=BATCH_ATOL, rtol=DEVICE_RTOL)
    # the optimizer state came over too: one more step runs on the CPU
    assert math.isfinite(cpu.train_step("siamese", pair_batch(), {})[0]["loss"])


def test_ranks_agree_on_a_flag_under_nccl() -> None:
    """all_true's all-reduce under NCCL (CUDA tensors only); a group of one, as NCCL refuses two ranks on one GPU."""
    distributed.init(0, 1, "127.0.0.1", free_port(), "nccl", 60)
    try:
        assert distributed.all_true(True) and not distributed.all_true(False)
    finally:
        dist.destroy_process_group()

"""Benchmark, native side: sentences/s of a plain PyTorch encode loop over the same token ids as `bridge bench embed`.

The loop a user would write without bridge: load the checkpoint, sort by length, pad each batch, call the model's
`encode` (the same module and pooling as the backend's), put the vectors back in input order. Token ids come from
the TypeScript side (same tokenizer, same vocabulary) as two raw little-endian int32 files: offsets [n + 1] and
ids [offsets[n]]. Best of `repeats` timed passes after one warm-up pass.

    python -m bridge_backend.bench_embed --checkpoint CK.pt --ids DIR [--batch-size 128] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from .ops import OPS
from .session import Session


def encode_all(trainer, offsets: np.ndarray, ids: np.ndarray, bs: int, pad_id: int, device: torch.device) -> torch.Tensor:
    """Vectors [n, d] of every row in input order: longest first, padded batches of `bs` rows."""
    n = len(offsets) - 1
    lengths = offsets[1:] - offsets[:-1]
    order = np.argsort(-lengths, kind="stable")
    out: torch.Tensor | None = None
    for start in range(0, n, bs):
        rows = order[start : start + bs]
        sl = int(lengths[rows].max())
        x = np.full((len(rows), sl), pad_id, dtype=np.int64)  # [bs, sl] right-padded
        for k, r in enumerate(rows):
            x[k, : lengths[r]] = ids[offsets[r] : offsets[r + 1]]
        vecs = trainer.encode(torch.from_numpy(x).to(device), torch.from_numpy(lengths[rows].astype(np.int64)).to(device))
        if out is None:
            out = torch.empty(n, vecs.size(1))
        out[torch.from_numpy(rows)] = vecs.cpu()
    assert out is not None
    return out


def run(checkpoint: str, ids_dir: str, bs: int, repeats: int, device: str | None) -> dict:
    session = Session(lambda *_: None, device)
    OPS["load"](session, {"path": checkpoint}, {})
    trainer = session.trainer
    offsets = np.fromfile(Path(ids_dir) / "offsets.bin", dtype="<i4").astype(np.int64)
    ids = np.fromfile(Path(ids_dir) / "ids.bin", dtype="<i4").astype(np.int64)
    pad_id = trainer.model.cfg.pad_id
    encode_all(trainer, offsets, ids, bs, pad_id, session.device)  # warm-up
    times = []
    cpu_s = faults = 0.0
    for _ in range(repeats):
        if session.device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0, f0 = time.perf_counter(), time.process_time(), _minor_faults()
        encode_all(trainer, offsets, ids, bs, pad_id, session.device)
        if session.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu_s, faults = cpu_s + time.process_time() - c0, faults + _minor_faults() - f0
    n = len(offsets) - 1
    return {
        "native_sentences_per_s": n / min(times),
        "native_seconds": times,
        "native_cpu_ms": round(cpu_s * 1000 / repeats),  # per pass, mean
        "native_minor_faults": round(faults / repeats),
        "sentences": n,
        "device": str(session.device),
    }


def _minor_faults() -> int:
    """First touches of fresh memory so far (the bridge's two processes are counted alike: ts/bench/processCost.ts)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--ids", required=True, help="folder with offsets.bin and ids.bin (int32 little-endian)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None)
    a = p.parse_args()
    print(json.dumps(run(a.checkpoint, a.ids, a.batch_size, a.repeats, a.device)))


if __name__ == "__main__":
    main()

"""Benchmark reference for `npx bridge bench train`: the same training steps in one Python process, no bridge.

TypeScript writes the batches, the build arguments and each step's hyper-parameters to one file; this loop
builds the same model (same seed) with the backend's own code and runs the steps over batches already in
memory: what our design could reach at best. The per-step losses come back too, so the caller can check that
both paths trained the same model on the same batches.

File: a little-endian u32 header length, a JSON header {build, steps: [{objective, hparams, opts, tensors:
{name: [dtype, shape, offset, nbytes]}}]} (each step its own objective: a multi-task stage's), then the tensors'
raw bytes (offsets relative to the data start).

    python -m bridge_backend.bench_train FILE [--warmup 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

from .ops.model import make_configs, new_trainer, step_batch, token_weights_arg

DTYPES = {"int32": np.int32, "int64": np.int64, "float32": np.float32}


def read_batches(path: str) -> tuple[dict, list[dict[str, torch.Tensor]]]:
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<I", blob, 0)
    header = json.loads(blob[4 : 4 + n])
    data = memoryview(blob)[4 + n :]
    batches = []
    for step in header["steps"]:
        ts = {}
        for name, (dtype, shape, offset, nbytes) in step["tensors"].items():
            arr = np.frombuffer(data[offset : offset + nbytes], dtype=DTYPES[dtype]).reshape(shape)
            ts[name] = torch.from_numpy(arr.copy())
        batches.append(ts)
    return header, batches


def run(path: str, warmup: int, device: str | None) -> dict:
    header, raw = read_batches(path)
    session = SimpleNamespace(device=torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")), trainer=None)
    mc, hc, tc = make_configs(header["build"])
    weights = token_weights_arg(header["build"], mc, hc)  # pool_weighting idf: the run's weights, as `build` takes them
    trainer = new_trainer(session, mc, hc, tc, header["build"].get("vocab_fingerprint", ""), weights)
    batches = [
        step_batch(session, step["objective"], ts) for step, ts in zip(header["steps"], raw, strict=True)
    ]  # on the device, before the clock
    losses: list[float | None] = []
    t0 = c0 = 0.0
    for i, (step, batch) in enumerate(zip(header["steps"], batches, strict=True)):
        if i == warmup:
            if session.device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
        trainer.set_hparams(step["hparams"])
        metrics, _ = trainer.train_step(step["objective"], batch, step["opts"])
        losses.append(metrics.get("loss"))
    if session.device.type == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "timed_steps": len(batches) - warmup,
        "losses": losses,
        "device": str(session.device),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bridge_backend.bench_train", description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.file, a.warmup, a.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: forward + backward tokens/s of our AWD-LSTM encoder against torch's plain `nn.LSTM` stack.

Same sizes (embedding + the same layer widths), same batches, same run, median step times; the two models alternate step by step
(and which goes first alternates too) so that load from other processes hits both alike. The AWD-LSTM runs in
training mode with every dropout on (embedding, locked, weight drop); the plain stack has none.

    python -m bridge_backend.bench_model [--json] [--preset cpu_medium] [--bs 64] [--bptt 70] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import Tensor, nn

from .models.awd_lstm import AWDLSTM, AWDLSTMConfig, awd_lstm_presets


class PlainLSTM(nn.Module):
    """Embedding + one `nn.LSTM` per layer, the AWD-LSTM's widths, no regularisation."""

    def __init__(self, cfg: AWDLSTMConfig) -> None:
        super().__init__()
        self.emb = nn.Embedding(cfg.vocab_sz, cfg.emb_sz, padding_idx=cfg.pad_id)
        dims = [cfg.emb_sz] + cfg.layer_dims()
        self.rnns = nn.ModuleList(
            nn.LSTM(dims[i], cfg.n_out(i), batch_first=True, bidirectional=cfg.bidir) for i in range(cfg.n_layers)
        )

    def forward(self, x: Tensor) -> list[Tensor]:  # x [bs, sl]
        out, raw = self.emb(x), []
        for rnn in self.rnns:
            out, _ = rnn(out)  # [bs, sl, layer_dims[i]]
            raw.append(out)
        return raw


def fwd_bwd(model: nn.Module, x: Tensor) -> float:
    """Seconds for one forward + backward (a mean over the top states as the loss)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = model(x)
    outs = out[0] if isinstance(out, tuple) else out
    outs[-1].float().pow(2).mean().backward()
    sync()
    dt = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return dt


def run(preset: str, vocab_sz: int, bs: int, bptt: int, steps: int, warmup: int, device: str | None) -> dict:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    cfg = AWDLSTMConfig(vocab_sz=vocab_sz, **awd_lstm_presets[preset])
    awd, plain = AWDLSTM(cfg).to(dev).train(), PlainLSTM(cfg).to(dev).train()
    batches = [torch.randint(4, vocab_sz, (bs, bptt), device=dev) for _ in range(steps + warmup)]
    t_awd: list[float] = []
    t_plain: list[float] = []
    for i, x in enumerate(batches):
        order = [(awd, t_awd), (plain, t_plain)] if i % 2 == 0 else [(plain, t_plain), (awd, t_awd)]
        for model, times in order:
            dt = fwd_bwd(model, x)
            if i >= warmup:
                times.append(dt)
    # medians: a step slowed by another process on the machine does not decide the figure
    awd_tps, plain_tps = bs * bptt / statistics.median(t_awd), bs * bptt / statistics.median(t_plain)
    return {
        "awd_tokens_per_s": round(awd_tps, 1),
        "plain_lstm_tokens_per_s": round(plain_tps, 1),
        "ratio": round(awd_tps / plain_tps, 3),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "preset": preset,
        "sizes": {"vocab_sz": vocab_sz, "emb_sz": cfg.emb_sz, "n_hid": cfg.n_hid, "n_layers": cfg.n_layers},
        "bs": bs,
        "bptt": bptt,
        "steps": steps,
        "dropouts": {k: cfg.p(k) for k in ("embed_p", "input_p", "hidden_p", "weight_p")},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bridge_backend.bench_model", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument("--preset", default="cpu_medium", choices=sorted(awd_lstm_presets))
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    res = run(a.preset, a.vocab, a.bs, a.bptt, a.steps, a.warmup, a.device)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"AWD-LSTM   {res['awd_tokens_per_s']:>10.1f} tokens/s (forward + backward, {res['device']})")
        print(f"plain LSTM {res['plain_lstm_tokens_per_s']:>10.1f} tokens/s")
        print(f"ratio      {res['ratio']:>10.3f} (target >= 0.85)")
        print(json.dumps(res))


if __name__ == "__main__":
    main()

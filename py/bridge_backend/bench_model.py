"""Benchmark: forward + backward tokens/s of our AWD-LSTM encoder against torch's plain `nn.LSTM` stack.

Same sizes (embedding + the same layer widths), same batches, same run, median step times; the two models alternate step by step
(and which goes first alternates too) so that load from other processes hits both alike. The AWD-LSTM runs in
training mode with every dropout on (embedding, locked, weight drop); the plain stack has none.

Then, taking turns with that AWD-LSTM over the same batches, the SHA-RNN encoder (models/sha_rnn.py) of the preset
of the same name (the paper's size for ulmfit), carrying its LM state and attention memory (mem_len tokens) from step
to step as LM training does; its ratio is to the AWD-LSTM's tokens/s in those turns. It is built after the figures
above drew their batches and masks, so that they are measured exactly as before.

Then the LM's output layer: the same encoder with its tied full softmax (cross-entropy over every word) against
the adaptive softmax (`softmax: adaptive`, the loss over each target's cluster only), forward + backward of the
whole language model over a `--lm-vocab` (30k) vocabulary, alternating the same way; and whole LM steps (adaptive
softmax, state and memory carried) of the AWD-LSTM and the SHA-RNN taking turns (`lm_sha_rnn_ratio`), the ratio that
sizes equal wall time budgets for the two (configs/ablations/lm-encoders.yaml). Last, one AdamW step over that LM's
parameters: torch's per-tensor loop against the fused kernel the trainer uses (`lm_adamw_speedup`).

    python -m bridge_backend.bench_model [--json] [--preset cpu_medium] [--bs 64] [--bptt 70] [--steps 10] [--lm-vocab 30000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import Tensor, nn

from .losses import lm_loss
from .models.archs import DEFAULT_PRESETS, awd_lstm_presets, sha_rnn_presets
from .models.awd_lstm import AWDLSTM, AdaptiveDecoder, AWDLSTMConfig, LinearDecoder, State, lm_decoder
from .models.sha_rnn import SHARNN
from .training import fused_adam_supported


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


class Streaming(nn.Module):
    """An encoder reading consecutive batches of one stream: its state (and SHA-RNN's memory) carried, detached."""

    def __init__(self, encoder: AWDLSTM) -> None:
        super().__init__()
        self.encoder = encoder
        self.state: list[State] | None = None

    def forward(self, x: Tensor) -> list[Tensor]:  # x [bs, sl]
        if self.state is not None and self.state[0][0].size(1) != x.size(0):
            self.state = None
        raw, state = self.encoder(x, None, self.state)
        self.state = [tuple(t.detach() for t in layer) for layer in state]
        return raw


class LanguageModel(nn.Module):
    """Encoder + LM head returning the training loss of next-token targets (what an LM step spends its time on).
    With `stream`, the encoder's state (and SHA-RNN's memory) carries from batch to batch, as in LM training."""

    def __init__(self, cfg: AWDLSTMConfig, stream: bool = False) -> None:
        super().__init__()
        encoder = SHARNN(cfg) if cfg.arch == "sha_rnn" else AWDLSTM(cfg)
        self.head = lm_decoder(cfg, encoder.emb)
        self.encoder: nn.Module = Streaming(encoder) if stream else encoder
        self.stream = stream

    def forward(self, xy: Tensor) -> list[Tensor]:  # xy [bs, sl + 1]: inputs then targets shifted by one
        x, y = xy[:, :-1], xy[:, 1:]
        out = self.encoder(x)
        top = (out if self.stream else out[0])[-1]  # [bs, sl, emb_sz]
        if isinstance(self.head, AdaptiveDecoder):
            return [self.head.nll(top, y)[0]]
        assert isinstance(self.head, LinearDecoder)
        return [lm_loss(self.head(top)[0], y)]


def fwd_bwd(model: nn.Module, x: Tensor) -> float:
    """Seconds for one forward + backward; the loss is the mean square of the last output (the top states, or a
    LanguageModel's own loss: squaring a scalar costs nothing)."""
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


def alternate(models: list[nn.Module], batches: list[Tensor], warmup: int) -> list[float]:
    """Median seconds per forward + backward of each model, the models taking turns (and turns at going first)."""
    times: list[list[float]] = [[] for _ in models]
    for i, x in enumerate(batches):
        order = list(range(len(models))) if i % 2 == 0 else list(reversed(range(len(models))))
        for j in order:
            dt = fwd_bwd(models[j], x)
            if i >= warmup:
                times[j].append(dt)
    # medians: a step slowed by another process on the machine does not decide the figure
    return [statistics.median(t) for t in times]


def zipf_batches(vocab_sz: int, bs: int, bptt: int, n: int, dev: torch.device) -> list[Tensor]:
    """n LM batches [bs, bptt + 1] of token ids drawn Zipf-like (rank r with probability ~ 1/r), as words are: the
    adaptive head's bet."""
    zipf = 1.0 / torch.arange(1, vocab_sz + 1, dtype=torch.float)
    return [torch.multinomial(zipf, bs * (bptt + 1), replacement=True).view(bs, bptt + 1).to(dev) for _ in range(n)]


def softmax_figures(preset: str, vocab_sz: int, bs: int, bptt: int, steps: int, warmup: int, dev: torch.device) -> dict:
    """Tokens/s of a whole LM step with the full softmax and with the adaptive one over `vocab_sz` words."""
    torch.manual_seed(0)
    full = LanguageModel(AWDLSTMConfig(vocab_sz=vocab_sz, **awd_lstm_presets[preset])).to(dev).train()
    adaptive = LanguageModel(AWDLSTMConfig(vocab_sz=vocab_sz, softmax="adaptive", **awd_lstm_presets[preset])).to(dev).train()
    t_full, t_adaptive = alternate([full, adaptive], zipf_batches(vocab_sz, bs, bptt, steps + warmup, dev), warmup)
    return {
        "lm_full_softmax_tokens_per_s": round(bs * bptt / t_full, 1),
        "lm_adaptive_tokens_per_s": round(bs * bptt / t_adaptive, 1),
        "vocab": vocab_sz,
        "speedup": round(t_full / t_adaptive, 3),
        "cutoffs": adaptive.encoder.cfg.adaptive_cutoffs(),
    }


def lm_arch_figures(preset: str, vocab_sz: int, bs: int, bptt: int, steps: int, warmup: int, dev: torch.device) -> dict:
    """Tokens/s of whole LM training steps (adaptive softmax over `vocab_sz` words, state and memory carried) of the
    AWD-LSTM and the SHA-RNN of the same preset name, taking turns: the ratio that sets equal wall time budgets."""
    sha_preset = preset if preset in sha_rnn_presets else DEFAULT_PRESETS["sha_rnn"]
    torch.manual_seed(0)
    awd = LanguageModel(AWDLSTMConfig(vocab_sz=vocab_sz, softmax="adaptive", **awd_lstm_presets[preset]), stream=True)
    sha_cfg = AWDLSTMConfig(vocab_sz=vocab_sz, softmax="adaptive", arch="sha_rnn", **sha_rnn_presets[sha_preset])
    sha = LanguageModel(sha_cfg, stream=True)
    awd, sha = awd.to(dev).train(), sha.to(dev).train()
    t_awd, t_sha = alternate([awd, sha], zipf_batches(vocab_sz, bs, bptt, steps + warmup, dev), warmup)
    return {
        "lm_awd_tokens_per_s": round(bs * bptt / t_awd, 1),
        "lm_sha_rnn_tokens_per_s": round(bs * bptt / t_sha, 1),
        "lm_sha_rnn_ratio": round(t_awd / t_sha, 3),  # SHA-RNN over AWD-LSTM, whole LM steps
        "lm_params": {"awd": n_params(awd), "sha_rnn": n_params(sha)},
    }


def optimizer_figures(preset: str, vocab_sz: int, steps: int, warmup: int, dev: torch.device) -> dict:
    """Milliseconds of one AdamW step over a whole LM's parameters (adaptive softmax over `vocab_sz` words), torch's
    per-tensor loop against the fused kernel the trainer uses (training.fused_adam_supported), taking turns on the
    same gradients."""
    torch.manual_seed(0)
    lm = LanguageModel(AWDLSTMConfig(vocab_sz=vocab_sz, softmax="adaptive", **awd_lstm_presets[preset])).to(dev)
    params = list(lm.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    fused = fused_adam_supported(params)
    opts = [torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=f) for f in (False, fused)]
    times: list[list[float]] = [[], []]
    for i in range(steps + warmup):
        for k, opt in enumerate(opts):
            t0 = time.perf_counter()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    loop_ms, fused_ms = (1000 * statistics.median(t) for t in times)
    return {
        "lm_adamw_loop_ms": round(loop_ms, 3),
        "lm_adamw_fused_ms": round(fused_ms, 3),
        "lm_adamw_fused": fused,  # false where torch has no fused kernel for the device: both sides then loop
        "lm_adamw_speedup": round(loop_ms / fused_ms, 2),
    }


def run(
    preset: str,
    vocab_sz: int,
    bs: int,
    bptt: int,
    steps: int,
    warmup: int,
    device: str | None,
    lm_vocab: int = 30_000,
    lm_steps: int = 5,
) -> dict:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    cfg = AWDLSTMConfig(vocab_sz=vocab_sz, **awd_lstm_presets[preset])
    awd, plain = AWDLSTM(cfg).to(dev).train(), PlainLSTM(cfg).to(dev).train()
    batches = [torch.randint(4, vocab_sz, (bs, bptt), device=dev) for _ in range(steps + warmup)]
    m_awd, m_plain = alternate([awd, plain], batches, warmup)
    awd_tps, plain_tps = bs * bptt / m_awd, bs * bptt / m_plain
    # built after the figures above drew from the RNG, so that they are what they were before SHA-RNN existed
    sha_preset = preset if preset in sha_rnn_presets else DEFAULT_PRESETS["sha_rnn"]
    sha_cfg = AWDLSTMConfig(vocab_sz=vocab_sz, arch="sha_rnn", **sha_rnn_presets[sha_preset])
    sha = Streaming(SHARNN(sha_cfg)).to(dev).train()
    m_awd_again, m_sha = alternate([awd, sha], batches, warmup)  # the same batches, taking turns with the AWD-LSTM
    sha_tps = bs * bptt / m_sha
    return {
        "awd_tokens_per_s": round(awd_tps, 1),
        "plain_lstm_tokens_per_s": round(plain_tps, 1),
        "ratio": round(awd_tps / plain_tps, 3),
        "sha_rnn_tokens_per_s": round(sha_tps, 1),
        "sha_rnn_awd_tokens_per_s": round(bs * bptt / m_awd_again, 1),  # the AWD-LSTM's, taking turns with the SHA-RNN
        "sha_rnn_ratio": round(m_awd_again / m_sha, 3),  # SHA-RNN over AWD-LSTM tokens/s, measured taking turns
        "sha_rnn_preset": sha_preset,
        "sha_rnn_sizes": {
            "emb_sz": sha_cfg.emb_sz,
            "n_hid": sha_cfg.n_hid,
            "n_layers": sha_cfg.n_layers,
            "mem_len": sha_cfg.mem_len,
        },
        "params": {"awd": n_params(awd), "sha_rnn": n_params(sha)},  # encoders, embedding included
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "preset": preset,
        "sizes": {"vocab_sz": vocab_sz, "emb_sz": cfg.emb_sz, "n_hid": cfg.n_hid, "n_layers": cfg.n_layers},
        "bs": bs,
        "bptt": bptt,
        "steps": steps,
        "dropouts": {k: cfg.p(k) for k in ("embed_p", "input_p", "hidden_p", "weight_p")},
        **softmax_figures(preset, lm_vocab, bs, bptt, lm_steps, warmup, dev),
        **lm_arch_figures(preset, lm_vocab, bs, bptt, lm_steps, warmup, dev),
        **optimizer_figures(preset, lm_vocab, lm_steps, warmup, dev),
    }


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


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
    ap.add_argument("--lm-vocab", type=int, default=30_000, help="vocabulary of the full vs adaptive softmax figures")
    ap.add_argument("--lm-steps", type=int, default=5, help="timed steps per LM (a 30k full softmax step is slow on CPU)")
    a = ap.parse_args(argv)
    res = run(a.preset, a.vocab, a.bs, a.bptt, a.steps, a.warmup, a.device, a.lm_vocab, a.lm_steps)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"AWD-LSTM   {res['awd_tokens_per_s']:>10.1f} tokens/s (forward + backward, {res['device']})")
        print(f"plain LSTM {res['plain_lstm_tokens_per_s']:>10.1f} tokens/s")
        print(f"ratio      {res['ratio']:>10.3f} (target >= 0.85)")
        print(
            f"SHA-RNN    {res['sha_rnn_tokens_per_s']:>10.1f} tokens/s ({res['sha_rnn_preset']}, "
            f"memory {res['sha_rnn_sizes']['mem_len']}): "
            f"{res['sha_rnn_ratio']:.3f} x the AWD-LSTM's"
        )
        print(
            f"LM, {res['vocab']} words: full softmax {res['lm_full_softmax_tokens_per_s']:.1f}, "
            f"adaptive {res['lm_adaptive_tokens_per_s']:.1f} tokens/s"
        )
        print(f"speedup    {res['speedup']:>10.3f} (target >= 2)")
        print(f"AdamW step over the LM: loop {res['lm_adamw_loop_ms']:.1f} ms, fused {res['lm_adamw_fused_ms']:.1f} ms")
        print(json.dumps(res))


if __name__ == "__main__":
    main()

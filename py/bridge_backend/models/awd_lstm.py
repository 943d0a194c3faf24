"""AWD-LSTM encoder and tied LM decoder, after fastai's text/models/awdlstm.py.

Merity et al. 2017, "Regularizing and Optimizing LSTM Language Models", https://arxiv.org/abs/1708.02182
Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text Classification", https://arxiv.org/abs/1801.06146

Batches are right-padded `[bs, sl]`. The forward direction never sees the padding after a sentence; the
backward direction runs over each sentence reversed *within its length* (a gather, not a flip of the whole
row), so padding never reaches a real token in either direction and a sentence's states do not depend on
its batch-mates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .archs import ARCHS, SENTENCE_ATTENTIONS
from .fused_ce import linear_cross_entropy

# (h, c) of one layer, each [n_dir, bs, n_out]
Hidden = tuple[Tensor, Tensor]
# A layer's carried state: (h, c), and for SHA-RNN's attention layer (h, c, memory [bs, m, emb_sz]) (sha_rnn.py)
State = tuple[Tensor, ...]


@dataclass
class AWDLSTMConfig:
    arch: str = "awd_lstm"  # awd_lstm | sha_rnn (Merity 2019: models/sha_rnn.py; every layer emb_sz wide, n_hid its Boom width)
    vocab_sz: int = 60_000
    emb_sz: int = 400
    n_hid: int = 1150  # ULMFiT's size (fastai rounds it to 1152 for tensor cores)
    n_layers: int = 3  # the last layer maps back to emb_sz (emb_sz // 2 per direction when bidir) for tying
    bidir: bool = False  # forward + backward LSTM per layer; sentence objectives only (no LM)
    pad_id: int = 1  # fastai's special tokens: xxunk 0, xxpad 1, xxbos 2, xxeos 3
    unk_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    oov_buckets: int = 0  # the last oov_buckets ids are hashed rows for unseen words (ts/data/vocab.ts), like xxunk
    embed_p: float = 0.02  # drops whole words of the embedding matrix
    input_p: float = 0.25  # locked dropout on the embeddings
    hidden_p: float = 0.15  # locked dropout between LSTM layers
    weight_p: float = 0.2  # DropConnect on the hidden-to-hidden weights
    output_p: float = 0.1  # locked dropout before the decoder
    drop_mult: float = 1.0  # scales the five dropouts above (ULMFiT tunes this one number)
    tie_weights: bool = True
    out_bias: bool = True
    backwards: bool = False  # reads text right to left (ULMFiT's backward LM); sentences are reversed within their length
    softmax: str = "full"  # full | adaptive (Grave et al. 2017: a frequent-word head and smaller tail clusters; untied)
    cutoffs: list[int] = field(default_factory=list)  # adaptive softmax cluster starts; [] = [vocab_sz // 15, vocab_sz // 3]
    mem_len: int = 70  # sha_rnn: earlier LM tokens its attention also sees (the last ones of the stream's previous batches)
    sentence_attention: str = "full"  # sha_rnn, sentences: full (each token sees the sentence's real tokens) | causal

    def p(self, name: str) -> float:
        """Dropout `name` (e.g. "weight_p") scaled by drop_mult, clamped below 1."""
        return min(getattr(self, name) * self.drop_mult, 0.99)

    def n_out(self, layer: int) -> int:
        """Hidden size per direction of `layer`."""
        if self.arch == "sha_rnn":  # a residual stream: every layer as wide as the embedding
            return self.emb_sz
        n_dir = 2 if self.bidir else 1
        return self.n_hid if layer < self.n_layers - 1 else self.emb_sz // n_dir

    def layer_dims(self) -> list[int]:
        """Output width of each layer (both directions)."""
        return [self.n_out(i) * (2 if self.bidir else 1) for i in range(self.n_layers)]

    def adaptive_cutoffs(self) -> list[int]:
        """The adaptive softmax's cluster starts: increasing, within 1..vocab_sz - 1 (ids are sorted by frequency)."""
        cutoffs = self.cutoffs or sorted({max(1, self.vocab_sz // 15), max(2, self.vocab_sz // 3)})
        if any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)) or cutoffs[0] < 1 or cutoffs[-1] >= self.vocab_sz:
            raise ValueError(f"cutoffs must increase within 1..{self.vocab_sz - 1} (the vocabulary), got {cutoffs}")
        return cutoffs

    def check(self) -> None:
        """Raises ValueError naming the first bad field among those the presets do not cover."""
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "sha_rnn":
            if self.bidir:
                raise ValueError("sha_rnn is a one-directional LM (causal attention): drop bidir (dual_lm pairs two of them)")
            if self.n_hid < self.emb_sz or self.n_hid % self.emb_sz:
                want = f"a multiple of emb_sz ({self.emb_sz}, e.g. {4 * self.emb_sz})"
                raise ValueError(f"sha_rnn's n_hid is its Boom width, {want}: got {self.n_hid}")
            if self.mem_len < 0:
                raise ValueError(f"mem_len must be >= 0, got {self.mem_len}")
            if self.sentence_attention not in SENTENCE_ATTENTIONS:
                want = ", ".join(SENTENCE_ATTENTIONS)
                raise ValueError(f"sentence_attention must be one of {want}, got {self.sentence_attention!r}")
        if self.softmax not in SOFTMAXES:
            raise ValueError(f"softmax must be one of {', '.join(SOFTMAXES)}, got {self.softmax!r}")
        if self.softmax == "adaptive":
            n_tails = len(self.adaptive_cutoffs())
            if self.emb_sz // 4**n_tails < 1:  # tail k projects to emb_sz / 4**k features
                raise ValueError(
                    f"adaptive softmax: {n_tails} tail clusters need emb_sz >= {4**n_tails} (got {self.emb_sz}); "
                    "give fewer cutoffs"
                )
        if self.backwards and self.bidir:
            raise ValueError("backwards reverses a one-directional encoder; a bidir encoder already reads both ways")


SOFTMAXES = ("full", "adaptive")

# Architecture keys: a checkpoint that differs in one of these cannot be loaded into the model.
ARCH_KEYS = ("arch", "vocab_sz", "emb_sz", "n_hid", "n_layers", "bidir", "tie_weights", "out_bias")


def dropout_mask(x: Tensor, sz: tuple[int, ...], p: float) -> Tensor:
    """A keep-mask of size `sz` scaled by 1/(1-p), of x's dtype and device.

    Drawn as uniform >= p, which is about 3x faster than `bernoulli_` (and `F.dropout`) on the CPU: this is what
    keeps weight dropout over a [4*n_hid, n_hid] matrix cheap per batch.
    """
    return (torch.rand(sz, device=x.device) >= p).to(x.dtype).mul_(1 / (1 - p))


class RNNDropout(nn.Module):
    """Locked (variational) dropout: one mask per sequence, shared by every time step."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:  # x [bs, sl, d]
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(x, (x.size(0), 1, x.size(2)), self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropLSTM(nn.Module):
    """One single-direction LSTM layer with DropConnect on its hidden-to-hidden weights.

    The raw weights are the parameters; every forward draws a fresh dropped copy of `weight_hh_raw` and calls
    the same kernel as `nn.LSTM` (`torch._VF.lstm`) with it, so nothing is patched into a module and no
    "weights are not part of a single contiguous chunk" warning is raised: on CUDA the four weights are
    concatenated into one buffer in cuDNN's layout (w_ih, w_hh, b_ih, b_hh) first. On the CPU that copy is
    skipped; the only extra cost is one dropout over a [4*n_out, n_out] matrix per batch.
    """

    def __init__(self, n_in: int, n_out: int, weight_p: float) -> None:
        super().__init__()
        self.n_in, self.n_out, self.weight_p = n_in, n_out, weight_p
        k = 1 / math.sqrt(n_out)  # nn.LSTM's init
        self.weight_ih = nn.Parameter(torch.empty(4 * n_out, n_in).uniform_(-k, k))
        self.weight_hh_raw = nn.Parameter(torch.empty(4 * n_out, n_out).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(4 * n_out).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(4 * n_out).uniform_(-k, k))

    def forward(self, x: Tensor, h: Hidden) -> tuple[Tensor, Hidden]:  # x [bs, sl, n_in], h ([1, bs, n_out],) * 2
        w_hh = self.weight_hh_raw
        if self.training and self.weight_p > 0:
            w_hh = w_hh * dropout_mask(w_hh, w_hh.shape, self.weight_p)  # DropConnect: one mask per batch
        ws = [self.weight_ih, w_hh, self.bias_ih, self.bias_hh]
        if not x.is_cuda:
            return self._lstm(x, h, ws)
        # Under CUDA autocast, cuDNN's LSTM would run in fp16 whatever the autocast dtype (ATen's AutocastRNN.cpp
        # casts to kHalf), and without a GradScaler its gradients can underflow: the recurrence stays in fp32
        # (TF32 matmuls on Ampere+), while the decoder and heads around it take autocast's bf16.
        with torch.autocast("cuda", enabled=False):
            return self._lstm(x.float(), (h[0].float(), h[1].float()), flat_views(ws))

    def _lstm(self, x: Tensor, h: Hidden, ws: list[Tensor]) -> tuple[Tensor, Hidden]:
        # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        out, hn, cn = torch._VF.lstm(x, h, ws, True, 1, 0.0, self.training, False, True)
        return out, (hn, cn)  # out [bs, sl, n_out]

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}, weight_p={self.weight_p}"


def flat_views(ws: list[Tensor]) -> list[Tensor]:
    """The tensors copied into one flat buffer, returned as views of it in order (differentiable).

    cuDNN takes an LSTM layer's weights as one buffer laid out w_ih, w_hh, b_ih, b_hh; handing it views of such
    a buffer (what `nn.LSTM.flatten_parameters` arranges for its own parameters) avoids its per-call compaction
    and the warning that comes with it.
    """
    flat = torch.cat([w.reshape(-1) for w in ws])  # [sum of numel]
    views, start = [], 0
    for w in ws:
        views.append(flat[start : start + w.numel()].view_as(w))
        start += w.numel()
    return views


def reverse_within(lengths: Tensor, sl: int) -> Tensor:
    """Index [bs, sl] that reverses each row's first `lengths[b]` steps and leaves its padding in place.

    Its own inverse: gathering twice with it gives the input back.
    """
    t = torch.arange(sl, device=lengths.device).unsqueeze(0)  # [1, sl]
    L = lengths.unsqueeze(1)  # [bs, 1]
    return torch.where(t < L, L - 1 - t, t)  # [bs, sl]


def gather_time(x: Tensor, idx: Tensor) -> Tensor:
    """x[b, idx[b, t]] for every b, t: x [bs, sl, d], idx [bs, sl]."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class LSTMLayer(nn.Module):
    """A forward LSTM and, when bidirectional, a backward one over each sentence reversed within its length."""

    def __init__(self, n_in: int, n_out: int, weight_p: float, bidir: bool) -> None:
        super().__init__()
        self.fwd = WeightDropLSTM(n_in, n_out, weight_p)
        self.bwd = WeightDropLSTM(n_in, n_out, weight_p) if bidir else None

    def forward(self, x: Tensor, h: Hidden, rev: Tensor | None) -> tuple[Tensor, Hidden]:
        # x [bs, sl, n_in]; h ([n_dir, bs, n_out],) * 2; rev [bs, sl] from reverse_within
        out, (hn, cn) = self.fwd(x, (h[0][:1], h[1][:1]))
        if self.bwd is None:
            return out, (hn, cn)
        assert rev is not None
        out_r, (hr, cr) = self.bwd(gather_time(x, rev), (h[0][1:], h[1][1:]))
        out = torch.cat([out, gather_time(out_r, rev)], dim=-1)  # [bs, sl, 2*n_out]
        return out, (torch.cat([hn, hr]), torch.cat([cn, cr]))


class AWDLSTM(nn.Module):
    """AWD-LSTM encoder: embedding, `n_layers` weight-dropped LSTMs, locked dropouts between them."""

    ARCH = "awd_lstm"  # the config arch this class builds (SHARNN: sha_rnn); models/sha_rnn.py encoder_for picks

    def __init__(self, cfg: AWDLSTMConfig) -> None:
        super().__init__()
        cfg.check()
        if cfg.arch != self.ARCH:
            raise ValueError(f"{type(self).__name__} builds arch {self.ARCH!r}, the config names {cfg.arch!r} (use encoder_for)")
        self.cfg = cfg
        self.n_dir = 2 if cfg.bidir else 1
        self.emb = nn.Embedding(cfg.vocab_sz, cfg.emb_sz, padding_idx=cfg.pad_id)
        with torch.no_grad():
            self.emb.weight.uniform_(-0.1, 0.1)  # fastai's initrange
            self.emb.weight[cfg.pad_id].zero_()
        self.input_dp = RNNDropout(cfg.p("input_p"))
        self.rnns = self.make_layers(cfg)
        self.hidden_dps = nn.ModuleList(RNNDropout(cfg.p("hidden_p")) for _ in range(cfg.n_layers - 1))
        self.embed_p = cfg.p("embed_p")

    def make_layers(self, cfg: AWDLSTMConfig) -> nn.ModuleList:
        """The recurrent layers, bottom to top (each has `fwd` and `bwd` WeightDropLSTMs, `bwd` None unless bidir)."""
        return nn.ModuleList(
            LSTMLayer(cfg.emb_sz if i == 0 else cfg.layer_dims()[i - 1], cfg.n_out(i), cfg.p("weight_p"), cfg.bidir)
            for i in range(cfg.n_layers)
        )

    def set_dropouts(self, cfg: AWDLSTMConfig) -> None:
        """Applies cfg's (scaled) dropouts to the existing modules."""
        self.embed_p = cfg.p("embed_p")
        self.input_dp.p = cfg.p("input_p")
        for dp in self.hidden_dps:
            dp.p = cfg.p("hidden_p")
        for rnn in self.rnns:
            for d in (rnn.fwd, rnn.bwd):
                if d is not None:
                    d.weight_p = cfg.p("weight_p")

    def embed(self, x: Tensor) -> Tensor:  # x [bs, sl] -> [bs, sl, emb_sz]
        e = self.emb(x)
        if self.training and self.embed_p > 0:
            # Dropping word w from the matrix is scaling every looked-up row of w by the same mask value:
            # one mask over the vocabulary, applied after the lookup (O(tokens), not O(vocab * emb_sz)).
            mask = dropout_mask(e, (self.cfg.vocab_sz,), self.embed_p)  # [vocab_sz]
            e = e * mask[x].unsqueeze(-1)  # [bs, sl, 1] broadcast
        return e

    def init_hidden(self, bs: int, like: Tensor) -> list[Hidden]:
        """Zero states for every layer: ([n_dir, bs, n_out],) * 2."""
        return [
            (like.new_zeros(self.n_dir, bs, self.cfg.n_out(i)), like.new_zeros(self.n_dir, bs, self.cfg.n_out(i)))
            for i in range(self.cfg.n_layers)
        ]

    def reading_order(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Token ids x [bs, sl] in the order this encoder reads a sentence: reversed within each length when
        `backwards`, else as given. Its outputs are in this order (what per-token pooling weights must follow)."""
        return x.gather(1, reverse_within(lengths, x.size(1))) if self.cfg.backwards else x

    def embed_input(
        self, x: Tensor, lengths: Tensor | None, hidden: list[State] | None
    ) -> tuple[Tensor, Tensor, Tensor, list[State]]:
        """What every encoder's forward starts from: the ids in reading order [bs, sl] (padding stays on the right),
        their embedding [bs, sl, emb_sz], that embedding after the input dropout, and the states (fresh if None)."""
        if lengths is not None:
            x = self.reading_order(x, lengths)
        emb = self.embed(x)
        out = self.input_dp(emb)
        return x, emb, out, hidden if hidden is not None else self.init_hidden(x.size(0), out)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, hidden: list[Hidden] | None = None, with_emb: bool = False
    ) -> tuple[list[Tensor], list[Hidden]]:
        """Outputs of every layer ([bs, sl, layer_dims[i]], before the between-layer dropout) and the new states.

        `lengths` [bs] (right padding) matters only to the backward direction; `hidden` carries LM state.
        With `lengths` (sentences) a `backwards` encoder reads each sentence reversed within its length and its
        outputs stay in that reading order (position lengths-1 holds the state after the whole sentence, so every
        pooling works unchanged); without them (an LM stream) the text already comes reversed from the data side.
        `with_emb`: the outputs start with the embedding layer's [bs, sl, emb_sz] (embedding dropout, not the
        input dropout), before the LSTM layers'.
        """
        bs, sl = x.shape
        x, emb, out, hidden = self.embed_input(x, lengths, hidden)
        rev = None
        if self.cfg.bidir:
            lengths = lengths if lengths is not None else torch.full((bs,), sl, device=x.device)
            rev = reverse_within(lengths, sl)
        raw, new_hidden = ([emb] if with_emb else []), []
        for i, rnn in enumerate(self.rnns):
            out, h = rnn(out, hidden[i], rev)
            raw.append(out)
            new_hidden.append(h)
            if i < len(self.hidden_dps):
                out = self.hidden_dps[i](out)
        return raw, new_hidden


class LinearDecoder(nn.Module):
    """LM head: locked dropout, then a linear layer to the vocabulary whose weight is the embedding's when tied."""

    def __init__(self, cfg: AWDLSTMConfig, emb: nn.Embedding | None) -> None:
        super().__init__()
        self.output_dp = RNNDropout(cfg.p("output_p"))
        self.decoder = nn.Linear(cfg.emb_sz, cfg.vocab_sz, bias=cfg.out_bias)
        with torch.no_grad():
            self.decoder.weight.uniform_(-0.1, 0.1)
            if self.decoder.bias is not None:
                self.decoder.bias.zero_()
        if emb is not None:
            self.decoder.weight = emb.weight  # tied: the same Parameter, one storage

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # x [bs, sl, emb_sz] -> logits [bs, sl, vocab_sz]
        dropped = self.output_dp(x)
        return self.decoder(dropped), dropped


class AdaptiveDecoder(nn.Module):
    """LM head with an adaptive softmax (Grave et al. 2017, https://arxiv.org/abs/1609.04309).

    torch's `AdaptiveLogSoftmaxWithLoss`: the frequent words (ids below cutoffs[0]; the vocabulary is sorted by
    frequency) and one entry per tail cluster in a head softmax, each tail cluster behind a smaller projection
    (emb_sz / 4**k). Training scores only each target's cluster (`nll`); `forward` gives the full log-probability
    of every word, an exact distribution, so perplexity and sampling stay exact. Not tied to the embedding.
    """

    def __init__(self, cfg: AWDLSTMConfig) -> None:
        super().__init__()
        self.output_dp = RNNDropout(cfg.p("output_p"))
        self.asm = nn.AdaptiveLogSoftmaxWithLoss(
            cfg.emb_sz, cfg.vocab_sz, cfg.adaptive_cutoffs(), div_value=4.0, head_bias=cfg.out_bias
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # x [bs, sl, emb_sz] -> log-probs [bs, sl, vocab_sz]
        dropped = self.output_dp(x)
        logp = self.asm.log_prob(dropped.reshape(-1, dropped.size(-1)).float())  # [bs*sl, vocab_sz]
        return logp.view(*x.shape[:2], -1), dropped

    def nll(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean negative log-likelihood of the targets y [bs, sl] (-100 ignored) and the dropped states."""
        dropped = self.output_dp(x)
        keep = (y != -100).reshape(-1)  # [bs*sl]
        flat = dropped.reshape(-1, dropped.size(-1))[keep].float()  # [n_valid, emb_sz]
        if flat.size(0) == 0:
            return dropped.float().sum() * 0.0, dropped  # no target: zero, still in the graph
        return adaptive_nll(self.asm, flat, y.reshape(-1)[keep]), dropped

    @torch.no_grad()
    def predict(self, dropped: Tensor) -> Tensor:  # dropped [bs, sl, emb_sz] -> most likely ids [bs, sl]
        """argmax of the full distribution; torch scores the tail clusters only for rows whose head argmax is one."""
        return self.asm.predict(dropped.reshape(-1, dropped.size(-1)).float()).view(dropped.shape[:2])


def adaptive_nll(asm: nn.AdaptiveLogSoftmaxWithLoss, x: Tensor, y: Tensor) -> Tensor:
    """Mean NLL of targets y [n] given states x [n, d]: the loss `asm(x, y).loss` computes, with fused cross-entropies.

    torch's forward takes a log-softmax of the whole head, then gathers one entry a row; the gather's backward fills
    and copies a dense [n, head] matrix. Here each row's head target is its word (a frequent one) or its cluster's
    entry, and the head's loss is linear_cross_entropy, which never makes the [n, head] matrix whole.
    Same parameters, so checkpoints are unchanged.
    """
    cutoffs = [0, *asm.cutoffs]  # asm.cutoffs ends with the vocabulary size
    head_target = y.clone()
    total = x.new_zeros(())
    for i in range(1, len(cutoffs) - 1):
        in_cluster = (y >= cutoffs[i]) & (y < cutoffs[i + 1])  # [n]
        rows = in_cluster.nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        head_target[rows] = asm.shortlist_size + i - 1
        project, out = asm.tail[i - 1]  # Linear(d, d / 4**i), Linear(d / 4**i, cluster size), no biases
        total = total + linear_cross_entropy(project(x.index_select(0, rows)), out, y[rows] - cutoffs[i])
    total = total + linear_cross_entropy(x, asm.head, head_target)
    return total / y.numel()


def lm_decoder(cfg: AWDLSTMConfig, emb: nn.Embedding) -> LinearDecoder | AdaptiveDecoder:
    """The LM head `cfg.softmax` names: the (tied) linear decoder, or the adaptive softmax."""
    if cfg.softmax == "adaptive":
        return AdaptiveDecoder(cfg)
    return LinearDecoder(cfg, emb if cfg.tie_weights else None)

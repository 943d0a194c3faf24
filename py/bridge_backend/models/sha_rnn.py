"""SHA-RNN encoder: LSTM layers, one single-headed attention, a Boom feed-forward layer per block.

Merity 2019, "Single Headed Attention RNN: Stop Thinking With Your Head", https://arxiv.org/abs/1911.11423
(code: github.com/smerity/sha-rnn, model.py). Each block is: layer norm, an LSTM, then in the second-to-last
block only a single-head attention (its query through a linear layer and a layer norm, keys and values the
layer-normed states themselves, each scaled by a learned sigmoid gate, the value gate "overparameterised"), added
back as a residual; then the Boom: a linear up-projection to n_hid (4 x emb_sz in the paper) with GELU, split into
n_hid / emb_sz chunks that are summed (the paper's parameter-free down-projection), added back as a residual.
Every layer is emb_sz wide, so the LM decoder ties to the embedding as AWD-LSTM's does.

What is the AWD-LSTM's is reused, not copied (awd_lstm.py): the embedding and its word dropout, the input / between-
layer locked dropouts, the weight-dropped LSTM kernel, the decoders, and the model's pooling and heads (heads.py).
The attention and Boom outputs take the between-layer locked dropout (hidden_p) before their residual sums.

The attention is causal for the LM. For sentences (a forward call with `lengths`) `sentence_attention` decides:
full (the default) lets every token attend to all of its sentence's real tokens, before and after it, with the
padding masked out of the keys; causal keeps the LM's mask, so a sentence's states are exactly what the LM computed
for the same tokens (pretraining transfers unchanged; padding is masked out of the keys too). A backward encoder
(backwards, dual_lm) reads its reversed text the same way.

Memory (the paper's): in an LM stream the attention layer also attends to the layer-normed states of the last
`mem_len` tokens of the stream's earlier batches, carried with the LSTM states (its layer's state is (h, c, memory))
and detached with them between batches, so it is forgotten exactly when they are (`reset`, `reset_state`, a new batch
size, a load). Sentences use none: each sentence attends to its own tokens only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .awd_lstm import AWDLSTM, AWDLSTMConfig, RNNDropout, State, WeightDropLSTM

LN_EPS = 1e-12  # the paper's


class Overparam(nn.Module):
    """The paper's value gate: a vector through Linear(d, 2d), halves c, f -> sigmoid(f) * tanh(c)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(d, 2 * d)

    def forward(self, x: Tensor) -> Tensor:  # [..., d] -> [..., d]
        c, f = self.l1(x).chunk(2, dim=-1)
        return torch.sigmoid(f) * torch.tanh(c)


class SingleHeadAttention(nn.Module):
    """One head over `kv` (queries' own layer-normed states, memory first): scaled dot products, masked, softmax."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.qs = nn.Parameter(torch.zeros(1, 1, d))  # sigmoid gates, 0.5 at the start
        self.ks = nn.Parameter(torch.zeros(1, 1, d))
        self.vs = nn.Parameter(torch.zeros(1, 1, d))
        self.q = nn.Linear(d, d)
        self.qln = nn.LayerNorm(d, eps=LN_EPS)
        self.vq = Overparam(d)

    def forward(self, query: Tensor, kv: Tensor, allowed: Tensor) -> Tensor:
        # query [bs, sl, d], kv [bs, m + sl, d], allowed [bs or 1, sl, m + sl] (True: may attend) -> [bs, sl, d]
        q = self.qln(self.q(query)) * torch.sigmoid(self.qs)
        k = kv * torch.sigmoid(self.ks)
        v = kv * self.vq(torch.sigmoid(self.vs))
        scores = q @ k.transpose(1, 2).to(q.dtype) / math.sqrt(q.size(-1))  # [bs, sl, m + sl]
        scores = scores.float().masked_fill(~allowed, -math.inf)  # every query may see itself: no row is all -inf
        return scores.softmax(-1).to(v.dtype) @ v  # [bs, sl, d]


class Boom(nn.Module):
    """Up-projection d -> n_hid with GELU, then the n_hid / d chunks summed back to d (the paper's shortcut)."""

    def __init__(self, d: int, n_hid: int) -> None:
        super().__init__()
        self.d, self.up = d, nn.Linear(d, n_hid)

    def forward(self, x: Tensor) -> Tensor:  # [bs, sl, d] -> [bs, sl, d]
        u = F.gelu(self.up(x))  # [bs, sl, n_hid]
        return u.view(*u.shape[:-1], u.size(-1) // self.d, self.d).sum(-2)  # [bs, sl, n_hid/d, d] -> [bs, sl, d]


class SHABlock(nn.Module):
    """Layer norm, weight-dropped LSTM, (attention), Boom. `fwd` / `bwd` as AWD-LSTM's layers name their LSTMs."""

    def __init__(self, cfg: AWDLSTMConfig, attention: bool) -> None:
        super().__init__()
        d = cfg.emb_sz
        self.ln_start = nn.LayerNorm(d, eps=LN_EPS)
        self.fwd = WeightDropLSTM(d, d, cfg.p("weight_p"))
        self.bwd: WeightDropLSTM | None = None  # one direction (AWDLSTM.set_dropouts reads both)
        self.attn = SingleHeadAttention(d) if attention else None
        self.ln_mem = nn.LayerNorm(d, eps=LN_EPS) if attention else None
        self.ln_mid = nn.LayerNorm(d, eps=LN_EPS) if attention else None
        self.ln_ff = nn.LayerNorm(d, eps=LN_EPS)
        self.ln_xff = nn.LayerNorm(d, eps=LN_EPS)
        self.boom = Boom(d, cfg.n_hid)
        self.dp = RNNDropout(cfg.p("hidden_p"))

    def forward(self, x: Tensor, state: State, allowed: Tensor, mem_len: int) -> tuple[Tensor, State]:
        # x [bs, sl, d]; state (h, c) each [1, bs, d], + memory [bs, m, d] in the attention block
        h, (hn, cn) = self.fwd(self.ln_start(x), (state[0], state[1]))  # [bs, sl, d]
        new_state: State = (hn, cn)
        if self.attn is not None:
            assert self.ln_mem is not None and self.ln_mid is not None
            mh = self.ln_mem(h)
            h = self.ln_mid(h)
            kv = torch.cat([state[2].to(mh.dtype), mh], dim=1)  # [bs, m + sl, d]
            h = h + self.dp(self.attn(h, kv, allowed))
            new_state = (hn, cn, kv[:, kv.size(1) - min(mem_len, kv.size(1)) :])  # [bs, <= mem_len, d]
        h = self.ln_ff(h) + self.dp(self.boom(self.ln_xff(h)))
        return h, new_state


class SHARNN(AWDLSTM):
    """AWD-LSTM's embedding and dropouts around SHA-RNN blocks; the same interface (forward, embed, set_dropouts...)."""

    ARCH = "sha_rnn"

    @staticmethod
    def attention_layer(cfg: AWDLSTMConfig) -> int:
        """The block holding the attention: the second-to-last (the only one of a one-layer model)."""
        return max(cfg.n_layers - 2, 0)

    def make_layers(self, cfg: AWDLSTMConfig) -> nn.ModuleList:
        at = self.attention_layer(cfg)
        return nn.ModuleList(SHABlock(cfg, attention=i == at) for i in range(cfg.n_layers))

    def set_dropouts(self, cfg: AWDLSTMConfig) -> None:
        super().set_dropouts(cfg)
        for block in self.rnns:
            block.dp.p = cfg.p("hidden_p")

    def init_hidden(self, bs: int, like: Tensor) -> list[State]:  # type: ignore[override]
        """Zero LSTM states ([1, bs, emb_sz],) * 2 per layer, and an empty memory [bs, 0, emb_sz] in the attention layer."""
        d = self.cfg.emb_sz
        at = self.attention_layer(self.cfg)
        return [
            (like.new_zeros(1, bs, d), like.new_zeros(1, bs, d), *((like.new_zeros(bs, 0, d),) if i == at else ()))
            for i in range(self.cfg.n_layers)
        ]

    def forward(  # type: ignore[override]
        self, x: Tensor, lengths: Tensor | None = None, hidden: list[State] | None = None, with_emb: bool = False
    ) -> tuple[list[Tensor], list[State]]:
        """As AWDLSTM.forward: every block's output [bs, sl, emb_sz] (the embedding's first with `with_emb`) and the
        new states. Without `lengths` (an LM stream) the attention is causal over the memory and the segment; with
        `lengths` (sentences) each row's padding is masked out of the keys, and with sentence_attention full every
        real token sees the sentence's real tokens (both sides) and no memory, with causal it is the LM's."""
        bs, sl = x.shape
        x, emb, out, hidden = self.embed_input(x, lengths, hidden)
        at = self.attention_layer(self.cfg)
        full = lengths is not None and self.cfg.sentence_attention == "full"
        if full:  # a sentence attends to its own tokens only
            hidden = [*hidden[:at], (*hidden[at][:2], hidden[at][2][:, :0]), *hidden[at + 1 :]]
        allowed = self.attention_mask(hidden[at][2].size(1), sl, lengths, x.device, causal=not full)
        raw, new_hidden = ([emb] if with_emb else []), []
        for i, block in enumerate(self.rnns):
            out, h = block(out, hidden[i], allowed, self.cfg.mem_len)
            raw.append(out)
            new_hidden.append(h)
            if i < len(self.hidden_dps):
                out = self.hidden_dps[i](out)
        return raw, new_hidden

    @staticmethod
    def attention_mask(m: int, sl: int, lengths: Tensor | None, device: torch.device, causal: bool = True) -> Tensor:
        """Which keys each query may see: [1 or bs, sl, m + sl], True for the m memory slots and the query's own and
        earlier positions (`causal`) or every position, and with `lengths` no padding key (a padded query still sees
        itself, so that no row is all -inf; real queries never see padding)."""
        t = torch.arange(sl, device=device)
        seen = t.unsqueeze(0) <= t.unsqueeze(1) if causal else torch.ones(sl, sl, dtype=torch.bool, device=device)
        allowed = torch.cat([seen.new_ones(sl, m), seen], dim=1).unsqueeze(0)  # [1, sl (query), m + sl (key)]
        if lengths is not None:
            real = torch.arange(m + sl, device=device).unsqueeze(0) < (m + lengths).unsqueeze(1)  # [bs, m + sl]
            itself = torch.cat([seen.new_zeros(sl, m), torch.eye(sl, dtype=torch.bool, device=device)], dim=1)
            allowed = (allowed & real.unsqueeze(1)) | itself  # [bs, sl, m + sl]
        return allowed


def encoder_for(cfg: AWDLSTMConfig) -> AWDLSTM:
    """The encoder `cfg.arch` names."""
    return SHARNN(cfg) if cfg.arch == SHARNN.ARCH else AWDLSTM(cfg)

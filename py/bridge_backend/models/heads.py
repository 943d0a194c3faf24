"""The model the backend holds: one shared AWD-LSTM encoder, a tied LM head and a siamese NLI head.

Triplet and contrastive objectives use the pooled sentence vectors directly (no extra parameters), so the
encoder's weights carry by name from stage to stage (LM -> siamese -> contrastive). With `dual_lm` the encoder is
a forward and a backward LM's (dual_lm.py) and a sentence vector is both pooled vectors side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .awd_lstm import AWDLSTM, AWDLSTMConfig, Hidden, lm_decoder
from .dual_lm import DualLMEncoder
from .pooling import POOL_LAYERS, POOLS, pool_layers, pooled_dim

FEATURES = ("uv", "infersent")  # [u, v] (the first attempt) or [u, v, |u-v|, u*v] (InferSent)


@dataclass
class HeadConfig:
    pool: str = "concat"  # last | mean | max | concat (ULMFiT's [last, max, mean])
    pool_layers: str = "top"  # top | all (concat of every layer's pooled vector)
    features: str = "infersent"  # pair features of the siamese classifier, see FEATURES
    head_hidden: int = 512  # MLP hidden width; 0 = a single linear layer
    head_p: float = 0.1  # dropout before each linear layer of the MLP
    n_classes: int = 3  # entailment 0, neutral 1, contradiction 2
    dual_lm: bool = False  # a forward and a backward LM's encoders (ULMFiT's fwd + bwd), vectors concatenated; no LM head

    def check(self) -> None:
        for name, value, allowed in (
            ("pool", self.pool, POOLS),
            ("pool_layers", self.pool_layers, POOL_LAYERS),
            ("features", self.features, FEATURES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# Head keys that change parameter shapes.
HEAD_ARCH_KEYS = ("pool", "pool_layers", "features", "head_hidden", "n_classes", "dual_lm")


def pair_features(u: Tensor, v: Tensor, kind: str) -> Tensor:  # u, v [bs, d] -> [bs, 2d] or [bs, 4d]
    if kind == "uv":
        return torch.cat([u, v], dim=-1)
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


class PairClassifier(nn.Module):
    """MLP over the pair features: [dropout, linear, ReLU] then dropout, linear to n_classes."""

    def __init__(self, n_in: int, hc: HeadConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hc.head_hidden > 0:
            layers += [nn.Dropout(hc.head_p), nn.Linear(n_in, hc.head_hidden), nn.ReLU()]
            n_in = hc.head_hidden
        layers += [nn.Dropout(hc.head_p), nn.Linear(n_in, hc.n_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, feats: Tensor) -> Tensor:  # [bs, n_feat] -> logits [bs, n_classes]
        return self.layers(feats)


class BridgeModel(nn.Module):
    """Encoder + pooling, the LM head (one unidirectional encoder only) and the siamese classifier."""

    def __init__(self, cfg: AWDLSTMConfig, hc: HeadConfig) -> None:
        super().__init__()
        hc.check()
        self.cfg, self.hc = cfg, hc
        self.encoder: AWDLSTM | DualLMEncoder = DualLMEncoder(cfg) if hc.dual_lm else AWDLSTM(cfg)
        self.lm_head = None if cfg.bidir or hc.dual_lm else lm_decoder(cfg, self.encoder.emb)
        n_feat = (2 if hc.features == "uv" else 4) * self.vec_dim()
        self.nli_head = PairClassifier(n_feat, hc)

    def encoders(self) -> list[AWDLSTM]:
        """The AWD-LSTM encoders: the one, or the forward and the backward LM's (dual_lm)."""
        return self.encoder.halves() if isinstance(self.encoder, DualLMEncoder) else [self.encoder]

    def vec_dim(self, pool: str | None = None, layers: str | None = None) -> int:
        one = pooled_dim(self.cfg.layer_dims(), pool or self.hc.pool, layers or self.hc.pool_layers)
        return one * len(self.encoders())

    def encode(self, x: Tensor, lengths: Tensor, pool: str | None = None, layers: str | None = None) -> Tensor:
        """Sentence vectors [bs, vec_dim] of right-padded token ids x [bs, sl] with `lengths` [bs]; with dual_lm
        concat(forward's, backward's) [bs, 2 * one encoder's vec_dim]."""
        kind, which = pool or self.hc.pool, layers or self.hc.pool_layers
        if isinstance(self.encoder, DualLMEncoder):
            fwd, bwd = (pool_layers(outs, lengths, kind, which) for outs in self.encoder(x, lengths))
            return torch.cat([fwd, bwd], dim=-1)  # [bs, 2 * vec_dim of one]
        outs, _ = self.encoder(x, lengths)
        return pool_layers(outs, lengths, kind, which, self.cfg.bidir)

    def lm(self, x: Tensor, hidden: list[Hidden] | None) -> tuple[Tensor, Tensor, Tensor, list[Hidden]]:
        """Next-token logits [bs, sl, vocab_sz], the raw and dropped top states [bs, sl, emb_sz], new states."""
        if self.hc.dual_lm:
            raise ValueError(
                "a dual_lm model (a forward and a backward encoder) has no language-model head: train each LM in a "
                "run of its own (configs/pretrain.yaml, pretrain-bwd.yaml), then start from both with "
                "init: { from: FORWARD_RUN, backward: BACKWARD_RUN }"
            )
        if self.lm_head is None or isinstance(self.encoder, DualLMEncoder):
            raise ValueError("a bidirectional encoder has no language-model head (bidir=True)")
        outs, new_hidden = self.encoder(x, None, hidden)
        logits, dropped = self.lm_head(outs[-1])
        return logits, outs[-1], dropped, new_hidden

    def classify(self, u: Tensor, v: Tensor) -> Tensor:  # u, v [bs, vec_dim] -> logits [bs, n_classes]
        return self.nli_head(pair_features(u, v, self.hc.features))

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """Layer groups for discriminative learning rates and gradual unfreezing, bottom to top.

        "emb" (the embedding, which is also the tied decoder's weight), "rnn0".."rnn{n-1}", "head" (decoder
        bias, untied decoder weight, NLI classifier). Each parameter is in exactly one group; with dual_lm both
        encoders' embeddings are "emb" and both encoders' layer i is "rnn{i}", so schedules see the same groups.
        """
        encs = self.encoders()
        groups: list[tuple[str, list[nn.Parameter]]] = [("emb", [e.emb.weight for e in encs])]
        groups += [(f"rnn{i}", [p for e in encs for p in e.rnns[i].parameters()]) for i in range(self.cfg.n_layers)]
        seen = {id(p) for _, ps in groups for p in ps}
        head = [p for p in self.parameters() if id(p) not in seen]
        groups.append(("head", head))
        return groups

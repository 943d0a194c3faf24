"""The model the backend holds: one shared AWD-LSTM encoder, a tied LM head and a siamese NLI head.

Triplet and contrastive objectives use the pooled sentence vectors directly (no extra parameters), so the
encoder's weights carry by name from stage to stage (LM -> siamese -> contrastive).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .awd_lstm import AWDLSTM, AWDLSTMConfig, Hidden, lm_decoder
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

    def check(self) -> None:
        for name, value, allowed in (
            ("pool", self.pool, POOLS),
            ("pool_layers", self.pool_layers, POOL_LAYERS),
            ("features", self.features, FEATURES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# Head keys that change parameter shapes.
HEAD_ARCH_KEYS = ("pool", "pool_layers", "features", "head_hidden", "n_classes")


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
    """Encoder + pooling, the LM head (unidirectional encoders only) and the siamese classifier."""

    def __init__(self, cfg: AWDLSTMConfig, hc: HeadConfig) -> None:
        super().__init__()
        hc.check()
        self.cfg, self.hc = cfg, hc
        self.encoder = AWDLSTM(cfg)
        self.lm_head = None if cfg.bidir else lm_decoder(cfg, self.encoder.emb)
        n_feat = (2 if hc.features == "uv" else 4) * self.vec_dim()
        self.nli_head = PairClassifier(n_feat, hc)

    def vec_dim(self, pool: str | None = None, layers: str | None = None) -> int:
        return pooled_dim(self.cfg.layer_dims(), pool or self.hc.pool, layers or self.hc.pool_layers)

    def encode(self, x: Tensor, lengths: Tensor, pool: str | None = None, layers: str | None = None) -> Tensor:
        """Sentence vectors [bs, vec_dim] of right-padded token ids x [bs, sl] with `lengths` [bs]."""
        outs, _ = self.encoder(x, lengths)
        return pool_layers(outs, lengths, pool or self.hc.pool, layers or self.hc.pool_layers, self.cfg.bidir)

    def lm(self, x: Tensor, hidden: list[Hidden] | None) -> tuple[Tensor, Tensor, Tensor, list[Hidden]]:
        """Next-token logits [bs, sl, vocab_sz], the raw and dropped top states [bs, sl, emb_sz], new states."""
        if self.lm_head is None:
            raise ValueError("a bidirectional encoder has no language-model head (bidir=True)")
        outs, new_hidden = self.encoder(x, None, hidden)
        logits, dropped = self.lm_head(outs[-1])
        return logits, outs[-1], dropped, new_hidden

    def classify(self, u: Tensor, v: Tensor) -> Tensor:  # u, v [bs, vec_dim] -> logits [bs, n_classes]
        return self.nli_head(pair_features(u, v, self.hc.features))

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """Layer groups for discriminative learning rates and gradual unfreezing, bottom to top.

        "emb" (the embedding, which is also the tied decoder's weight), "rnn0".."rnn{n-1}", "head" (decoder
        bias, untied decoder weight, NLI classifier). Each parameter is in exactly one group.
        """
        groups: list[tuple[str, list[nn.Parameter]]] = [("emb", [self.encoder.emb.weight])]
        groups += [(f"rnn{i}", list(r.parameters())) for i, r in enumerate(self.encoder.rnns)]
        seen = {id(p) for _, ps in groups for p in ps}
        head = [p for p in self.parameters() if id(p) not in seen]
        groups.append(("head", head))
        return groups

"""The model the backend holds: one shared AWD-LSTM encoder, a tied LM head and a siamese NLI head.

Triplet and contrastive objectives use the pooled sentence vectors directly, so the encoder's weights carry by
name from stage to stage (LM -> siamese -> contrastive). With `dual_lm` the encoder is a forward and a backward
LM's (dual_lm.py) and a sentence vector is both pooled vectors side by side.

A sentence vector is made in one place (`BridgeModel.encode`, for training, encode and predict alike): pool the
LSTM layers (and with `pool_emb` the embedding layer too; with `pool_weighting` idf every mean weighted by the
`token_weights` buffer), then the optional learned projection (`proj_dim`), then SIF's common-component removal
(`sif`, the `sif_pc` buffer that Trainer.fit_pc fits; zeros until then).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .awd_lstm import AWDLSTM, AWDLSTMConfig, State, lm_decoder
from .dual_lm import DualLMEncoder
from .pooling import POOL_LAYERS, POOL_WEIGHTINGS, POOLS, pool, pool_layers, pooled_dim, remove_pc
from .sha_rnn import encoder_for

FEATURES = ("uv", "infersent")  # [u, v] (the first attempt) or [u, v, |u-v|, u*v] (InferSent)
HEAD_POOLS = ("none", "max", "last")  # extra pooling the NLI classifier sees beside each sentence vector


@dataclass
class HeadConfig:
    pool: str = "concat"  # last | mean | max | concat (ULMFiT's [last, max, mean])
    pool_layers: str = "top"  # top | all (concat of every layer's pooled vector) | mix (all, under a learned LayerMix)
    features: str = "infersent"  # pair features of the siamese classifier, see FEATURES
    head_hidden: int = 512  # MLP hidden width; 0 = a single linear layer
    head_p: float = 0.1  # dropout before each linear layer of the MLP
    n_classes: int = 3  # entailment 0, neutral 1, contradiction 2
    dual_lm: bool = False  # a forward and a backward LM's encoders (ULMFiT's fwd + bwd), vectors concatenated; no LM head
    pool_emb: bool = False  # also pool the embedding layer's output (same pooling), after the LSTM layers' vectors
    pool_weighting: str = "none"  # none | idf: every mean pooling weighted per token (buffer token_weights [vocab_sz])
    sif: bool = False  # remove the fitted first principal component (buffer sif_pc, op fit_pc) from every vector
    proj_dim: int | None = None  # a learned linear map of the pooled vector to this width (None: no projection)
    # The classifier's input per sentence: the sentence vector, and with head_pool max (or last) also that pooling of
    # the same layers, from the same encoder pass. The similarity objectives and `encode` still see only the vector:
    # NLI gains from features (InferSent's max pooling) that a cosine-trained mean would have to carry otherwise.
    head_pool: str = "none"
    # ELMo learns one scalar mix per task: with pool_layers mix, head_mix gives the NLI classifier a mix of its own
    # (its input per sentence), while the sentence vector (encode, the similarity objectives) keeps the shared one.
    head_mix: bool = False

    def check(self) -> None:
        for name, value, allowed in (
            ("pool", self.pool, POOLS),
            ("pool_layers", self.pool_layers, POOL_LAYERS),
            ("features", self.features, FEATURES),
            ("pool_weighting", self.pool_weighting, POOL_WEIGHTINGS),
            ("head_pool", self.head_pool, HEAD_POOLS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.proj_dim is not None and self.proj_dim < 1:
            raise ValueError(f"proj_dim must be >= 1 (or null for no projection), got {self.proj_dim}")
        if self.head_mix and self.pool_layers != "mix":
            raise ValueError(f"head_mix (the classifier's own scalar mix) needs pool_layers 'mix', got {self.pool_layers!r}")
        if self.head_mix and self.proj_dim is not None:
            raise ValueError("head_mix cannot go with proj_dim: the projection is sized and trained for the shared mix")


# Head keys that change parameter (or buffer) shapes.
HEAD_ARCH_KEYS = (
    "pool",
    "pool_layers",
    "features",
    "head_hidden",
    "n_classes",
    "dual_lm",
    "pool_emb",
    "pool_weighting",
    "sif",
    "proj_dim",
    "head_pool",
    "head_mix",
)


class LayerMix(nn.Module):
    """ELMo's scalar mix (Peters et al. 2018) of the pooled layers: softmax-normalised weights s_j, one per pooled
    layer (the embedding's too with pool_emb), and a scale gamma, learned with the stage's objectives. AWD-LSTM's
    layers differ in width, so the weighted layers sit side by side rather than summed: each layer's share of a dot
    product, hence of a cosine, is what is learned. n * s_j starts at 1 and gamma at 1: a mix starts as "all".
    With dual_lm both encoders' layer j share its weight, as ELMo's biLM shares one across directions.
    """

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_layers))  # softmax logits
        self.gamma = nn.Parameter(torch.ones(()))

    def shares(self) -> Tensor:
        """s_j [n_layers], summing to 1."""
        return self.weights.softmax(0)

    def forward(self, blocks: list[Tensor]) -> Tensor:  # each [bs, d_j] -> [bs, sum d_j]
        scale = self.shares() * len(blocks) * self.gamma  # [n_layers]
        return torch.cat([b * scale[j].to(b.dtype) for j, b in enumerate(blocks)], dim=-1)


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
    """Encoder + pooling (+ projection, SIF), the LM head (one unidirectional encoder only) and the siamese classifier.

    Buffers, present only when their option is on (so other models' state dicts are unchanged): `token_weights`
    [vocab_sz] (pool_weighting idf; `token_weights` here or a checkpoint's), `sif_pc` [vec_dim] (sif; zeros until
    fitted). Both are persistent: checkpoints carry them, so a loaded model encodes as the saved one did.
    """

    token_weights: Tensor | None
    sif_pc: Tensor | None

    def __init__(self, cfg: AWDLSTMConfig, hc: HeadConfig, token_weights: Tensor | None = None) -> None:
        super().__init__()
        hc.check()
        self.cfg, self.hc = cfg, hc
        self.encoder: AWDLSTM | DualLMEncoder = DualLMEncoder(cfg) if hc.dual_lm else encoder_for(cfg)
        self.lm_head = None if cfg.bidir or hc.dual_lm else lm_decoder(cfg, self.encoder.emb)
        n_feat = (2 if hc.features == "uv" else 4) * self.head_dim()
        self.nli_head = PairClassifier(n_feat, hc)
        # after the heads, so a model without a projection draws the same initial weights as before
        self.proj = nn.Linear(self.pooled_width(), hc.proj_dim) if hc.proj_dim is not None else None
        # no random draw: models without a mix keep their initial weights
        self.layer_mix = LayerMix(cfg.n_layers + int(hc.pool_emb)) if hc.pool_layers == "mix" else None
        self.head_layer_mix = LayerMix(cfg.n_layers + int(hc.pool_emb)) if hc.head_mix else None  # in the "head" group
        if hc.pool_weighting == "idf":
            weights = torch.ones(cfg.vocab_sz) if token_weights is None else token_weights
            if weights.shape != (cfg.vocab_sz,):
                raise ValueError(f"token_weights must hold one weight per word ({cfg.vocab_sz}), got shape {list(weights.shape)}")
            self.register_buffer("token_weights", weights.detach().float().clone())
        else:
            self.register_buffer("token_weights", None)
        self.register_buffer("sif_pc", torch.zeros(self.vec_dim()) if hc.sif else None)

    def encoders(self) -> list[AWDLSTM]:
        """The AWD-LSTM encoders: the one, or the forward and the backward LM's (dual_lm)."""
        return self.encoder.halves() if isinstance(self.encoder, DualLMEncoder) else [self.encoder]

    def pooled_width(self, pool: str | None = None, layers: str | None = None) -> int:
        """Width of the pooled vector (before any projection): the LSTM layers' pooled widths (+ the embedding's
        with pool_emb), once per encoder."""
        kind, which = pool or self.hc.pool, layers or self.hc.pool_layers
        one = pooled_dim(self.cfg.layer_dims(), kind, which)
        if self.hc.pool_emb:
            one += pooled_dim([self.cfg.emb_sz], kind, "top")
        return one * len(self.encoders())

    def vec_dim(self, pool: str | None = None, layers: str | None = None) -> int:
        """Width of a sentence vector: proj_dim with a projection, else the pooled width."""
        return self.hc.proj_dim if self.hc.proj_dim is not None else self.pooled_width(pool, layers)

    def head_dim(self) -> int:
        """Width of the classifier's input per sentence: the vector, plus the head_pool pooling's width."""
        extra = 0 if self.hc.head_pool == "none" else self.pooled_width(self.hc.head_pool)
        return self.vec_dim() + extra

    def encode(self, x: Tensor, lengths: Tensor, pool: str | None = None, layers: str | None = None, sif: bool = False) -> Tensor:
        """Sentence vectors [bs, vec_dim] of right-padded token ids x [bs, sl] with `lengths` [bs]: each encoder's
        pooled vector (dual_lm: forward's then backward's), projected (proj_dim), and with `sif` less the common
        component (when fitted). SIF is a post-processing of the vectors users get (the `encode` op: eval, embed);
        the objectives and the classifier head see the vectors they were trained on, so a component fitted at a
        stage's end cannot shift what its head learned. `pool` / `layers` override the built pooling where
        no projection or SIF component is sized for it."""
        kind, which = pool or self.hc.pool, layers or self.hc.pool_layers
        if which == "mix" and self.layer_mix is None:
            raise ValueError("pool_layers 'mix' needs a model built with it (its learned layer weights): use top or all")
        if (kind, which) != (self.hc.pool, self.hc.pool_layers) and (self.proj is not None or self.sif_pc is not None):
            raise ValueError(
                f"pool {kind!r} / pool_layers {which!r} differ from the built {self.hc.pool!r} / {self.hc.pool_layers!r}, "
                "which this model's projection (proj_dim) or SIF component (sif) is sized for: encode with the built pooling"
            )
        vec = torch.cat([self.pool_encoder(enc, x, lengths, kind, which) for enc in self.encoders()], dim=-1)
        if self.proj is not None:
            vec = self.proj(vec)  # [bs, pooled_width] -> [bs, proj_dim]
        if sif and self.sif_pc is not None:
            vec = remove_pc(vec, self.sif_pc)
        return vec

    def pool_encoder(self, enc: AWDLSTM, x: Tensor, lengths: Tensor, kind: str, which: str) -> Tensor:
        """One encoder's pooled vector [bs, d]: its LSTM layers', then (pool_emb) its embedding layer's."""
        outs, weights = self.encoder_states(enc, x, lengths)
        return self.pool_states(enc, outs, lengths, kind, which, weights)

    def encoder_states(self, enc: AWDLSTM, x: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """The states pooling reads (the embedding's first with pool_emb, then each LSTM layer's, each [bs, sl, d])
        and the per-token weights of pool_weighting idf ([bs, sl], in the states' order), or None."""
        outs, _ = enc(x, lengths, with_emb=self.hc.pool_emb)
        weights = None
        if self.token_weights is not None:  # per token, in the order the encoder's outputs are in
            weights = self.token_weights[enc.reading_order(x, lengths)]  # [bs, sl]
        return outs, weights

    def pool_states(
        self, enc: AWDLSTM, outs: list[Tensor], lengths: Tensor, kind: str, which: str, weights: Tensor | None
    ) -> Tensor:
        if which == "mix":
            assert self.layer_mix is not None  # encode() refuses mix without one
            return self.layer_mix(self.mix_blocks(enc, outs, lengths, kind, weights))
        if not self.hc.pool_emb:
            return pool_layers(outs, lengths, kind, which, enc.cfg.bidir, weights)
        emb, layers = outs[0], outs[1:]
        # the embedding is not bidirectional: its "last" is the last token read
        lstm = pool_layers(layers, lengths, kind, which, enc.cfg.bidir, weights)
        return torch.cat([lstm, pool(emb, lengths, kind, False, weights)], dim=-1)

    def mix_blocks(self, enc: AWDLSTM, outs: list[Tensor], lengths: Tensor, kind: str, weights: Tensor | None) -> list[Tensor]:
        """Each layer's pooled vector [bs, d_j], in the order a scalar mix weighs them (as "all" concatenates them):
        the LSTM layers, then (pool_emb) the embedding."""
        lstm = outs[1:] if self.hc.pool_emb else outs
        blocks = [pool(o, lengths, kind, enc.cfg.bidir, weights) for o in lstm]
        if self.hc.pool_emb:  # the embedding is not bidirectional: its "last" is the last token read
            blocks.append(pool(outs[0], lengths, kind, False, weights))
        return blocks

    def head_inputs(self, x: Tensor, lengths: Tensor) -> Tensor:
        """What the classifier sees of each sentence [bs, head_dim]: its vector (as `encode` makes it for training,
        no SIF removal; with head_mix, the layers under the classifier's own mix), then with head_pool that pooling
        of the same layers, all from one encoder pass."""
        if self.hc.head_pool == "none" and self.head_layer_mix is None:
            return self.encode(x, lengths)
        vecs, extras = [], []
        for enc in self.encoders():
            outs, weights = self.encoder_states(enc, x, lengths)
            if self.head_layer_mix is not None:
                vecs.append(self.head_layer_mix(self.mix_blocks(enc, outs, lengths, self.hc.pool, weights)))
            else:
                vecs.append(self.pool_states(enc, outs, lengths, self.hc.pool, self.hc.pool_layers, weights))
            if self.hc.head_pool == "none":
                continue
            if self.head_layer_mix is not None:  # the classifier's extra pooling under its own mix too
                extras.append(self.head_layer_mix(self.mix_blocks(enc, outs, lengths, self.hc.head_pool, None)))
            else:
                extras.append(self.pool_states(enc, outs, lengths, self.hc.head_pool, self.hc.pool_layers, None))
        vec = torch.cat(vecs, dim=-1)
        if self.proj is not None:
            vec = self.proj(vec)  # [bs, pooled_width] -> [bs, proj_dim]
        return torch.cat([vec, *extras], dim=-1)  # [bs, vec_dim + head_pool width]

    def lm(self, x: Tensor, hidden: list[State] | None) -> tuple[Tensor, Tensor, Tensor, list[State]]:
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

    def classify(self, u: Tensor, v: Tensor) -> Tensor:  # u, v [bs, head_dim] (head_inputs) -> logits [bs, n_classes]
        return self.nli_head(pair_features(u, v, self.hc.features))

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """Layer groups for discriminative learning rates and gradual unfreezing, bottom to top.

        "emb" (the embedding, which is also the tied decoder's weight), "rnn0".."rnn{n-1}" (the top one with the
        projection, proj_dim: it is the sentence encoder's, trained by the objectives that use no head), "head"
        (decoder bias, untied decoder weight, NLI classifier). Each parameter is in exactly one group; with dual_lm
        both encoders' embeddings are "emb" and both encoders' layer i is "rnn{i}", so schedules see the same groups.
        """
        encs = self.encoders()
        groups: list[tuple[str, list[nn.Parameter]]] = [("emb", [e.emb.weight for e in encs])]
        groups += [(f"rnn{i}", [p for e in encs for p in e.rnns[i].parameters()]) for i in range(self.cfg.n_layers)]
        if self.proj is not None:
            groups[-1][1].extend(self.proj.parameters())
        if self.layer_mix is not None:  # it shapes the sentence vector: trained by the objectives that use no head
            groups[-1][1].extend(self.layer_mix.parameters())
        seen = {id(p) for _, ps in groups for p in ps}
        head = [p for p in self.parameters() if id(p) not in seen]
        groups.append(("head", head))
        return groups

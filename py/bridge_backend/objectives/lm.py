"""lm: next-token cross-entropy on contiguous streams, hidden state carried between calls per stream, AR/TAR."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..losses import ar_tar, lm_loss
from ..models.awd_lstm import AdaptiveDecoder
from .base import TARGETS, TOKENS, VAL_METRICS, Batch, Encoder, Objective, StepOption, TensorSet, TensorSpec


class LanguageModel(Objective):
    name = "lm"
    doc = "next-token cross-entropy on contiguous streams x -> y, hidden state carried per stream, AR/TAR in training"
    tensor_sets = (TensorSet("stream", (TensorSpec("x", TOKENS), TensorSpec("y", TARGETS))),)
    step_options = (
        StepOption("reset", bool, "forget the stream's hidden state before this batch"),
        StepOption("stream", str, "names the hidden state carried between calls (default: train / eval)"),
        StepOption("alpha", float, "AR: activation regularisation on the dropped top LM states", default=2.0, non_negative=True),
        StepOption(
            "beta", float, "TAR: temporal activation regularisation on the raw top LM states", default=1.0, non_negative=True
        ),
    )
    metrics = (*VAL_METRICS, "val_perplexity")
    uses_head = True  # the decoder's bias (and an untied decoder) are in the head group

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool):
        x, y = batch["x"], batch["y"]  # [bs, bptt] each
        key = opts.get("stream") or ("train" if train else "eval")
        h = None if opts.get("reset") else trainer.lm_state.get(key)
        if h is not None and h[0][0].size(1) != x.size(0):
            h = None  # batch size changed: start fresh
        valid = y != -100
        correct: Tensor | None = None
        model = trainer.model
        if isinstance(model.lm_head, AdaptiveDecoder):  # adaptive softmax: the targets' clusters only
            outs, new_h = model.encoder(x, None, h)
            raw = outs[-1]  # [bs, bptt, emb_sz]
            ce, dropped = model.lm_head.nll(raw, y)  # exact NLL of each target
            if not train:  # the most likely word without the full [tokens, vocab] distribution (5 min -> seconds on 35k words)
                correct = ((model.lm_head.predict(dropped) == y) & valid).sum()
        else:
            logits, raw, dropped, new_h = model.lm(x, h)  # logits [bs, bptt, V]
            ce = lm_loss(logits, y)
            correct = ((logits.argmax(-1) == y) & valid).sum()
        trainer.lm_state[key] = [tuple(t.detach() for t in layer) for layer in new_h]  # (h, c), + memory (sha_rnn)
        reg = ar_tar(raw, dropped, self.option(opts, "alpha"), self.option(opts, "beta")) if train else ce.new_zeros(())
        metrics = {"loss": ce, "reg": reg, "correct": correct, "count": valid.sum()}
        return ce + reg, metrics, {}


OBJECTIVE = LanguageModel()

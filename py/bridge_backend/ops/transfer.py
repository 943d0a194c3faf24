"""Transfer-learning ops: import a fastai LM, start a freshly built model from a pretrained one.

import_fastai  weights, vocab, out, backwards? -> path, bytes, config, itos
               (a fastai .pth + itos .pkl converted into a bridge checkpoint at `out`; see fastai_import.py)
init_from      path; vocab_map? [vocab_sz] -> loaded, skipped, copied, new, source {emb_sz, n_hid, n_layers,
               direction, vocab_sz}: the built model's encoder (and LM head where it fits) from the checkpoint at
               `path`, its vocabulary mapped onto the model's as ULMFiT does (`vocab_map`: the checkpoint's id
               of each of the model's words, -1 for a new word, which starts from the mean row)
"""

from __future__ import annotations

from typing import Any

from ..checkpoints import load_checkpoint, read_checkpoint
from ..errors import BridgeError
from ..fastai_import import import_fastai as convert_fastai
from .args import arg, tensor_arg
from .model import INTS, trainer_of
from .registry import Args, Tensors, op

# What must agree between a pretrained encoder and the model it starts: these sizes and the reading direction.
SIZE_KEYS = ("emb_sz", "n_hid", "n_layers")


class InitMismatch(BridgeError):
    """The pretrained model does not fit the one built: sizes or direction differ (the message lists them)."""

    code = "init_mismatch"


def direction(model_cfg: dict[str, Any]) -> str:
    return "bidirectional" if model_cfg.get("bidir") else "backward" if model_cfg.get("backwards") else "forward"


@op("import_fastai")
def import_fastai(session, args: Args, tensors: Tensors):
    """Converts fastai weights + vocabulary into a bridge checkpoint (no model is built in the session)."""
    return convert_fastai(
        arg(args, "weights", str), arg(args, "vocab", str), arg(args, "out", str), arg(args, "backwards", bool, False)
    )


@op("init_from")
def init_from(session, args: Args, tensors: Tensors):
    """Loads the encoder (and LM head where shapes agree) of a pretrained checkpoint into the built model."""
    t = trainer_of(session)
    path = arg(args, "path", str)
    src = read_checkpoint(path)["config"]["model"]
    own = t.model.cfg
    sizes = ("emb_sz", "n_layers") if own.n_layers == 1 and src.get("n_layers") == 1 else SIZE_KEYS  # one layer: n_hid unused
    diffs = [f"{k} {src.get(k)!r} vs {getattr(own, k)!r}" for k in sizes if src.get(k) != getattr(own, k)]
    if direction(src) != direction(vars(own)):
        diffs.append(f"direction {direction(src)} vs {direction(vars(own))}")
    if diffs:
        raise InitMismatch(f"the pretrained model {path} does not fit this model (pretrained vs this): {'; '.join(diffs)}")
    vocab_map = tensor_arg(tensors, "vocab_map", dtypes=INTS, ndim=1) if "vocab_map" in tensors else None
    res = load_checkpoint(t, path, "encoder", allow_partial=True, vocab_map=vocab_map)
    new = res.get("new_words", 0)
    emb_skipped = "encoder.emb.weight" in res["skipped"]
    state = t.model.state_dict(keep_vars=True)
    if not emb_skipped:  # a tied decoder weight is the embedding, loaded already: not worth a warning
        emb_ptr = state["encoder.emb.weight"].data_ptr()
        res["skipped"] = [k for k in res["skipped"] if state[k].data_ptr() != emb_ptr]
    return {
        "loaded": res["loaded"],
        "skipped": res["skipped"],
        "copied": 0 if emb_skipped else own.vocab_sz - new,
        "new": own.vocab_sz if emb_skipped else new,
        "source": {**{k: src.get(k) for k in ("vocab_sz", "emb_sz", "n_hid", "n_layers")}, "direction": direction(src)},
        "meta": res["meta"],
    }

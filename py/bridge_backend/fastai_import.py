"""fastai AWD-LSTM language models (e.g. the WT103 `wt103-fwd` / `wt103-bwd` model-zoo weights) as bridge checkpoints.

What a fastai LM file holds (read from fastai's text/models/awdlstm.py and text/learner.py, v0.7 to v2): a state
dict, possibly wrapped as {"model": ..., "opt": ...}, of a SequentialRNN (encoder under `0.`, decoder under `1.`),
possibly with DataParallel's `module.` in front:

    0.encoder.weight                      [vocab, emb_sz]   the embedding
    0.encoder_dp.emb.weight               (a copy of it: EmbeddingDropout's view; v0.7: 0.encoder_with_dropout.embed.weight)
    0.rnns.{i}.weight_hh_l0_raw           [4 n_out, n_out]  WeightDropout's raw hidden weights (v0.7: under .module.)
    0.rnns.{i}.module.weight_ih_l0        [4 n_out, n_in]
    0.rnns.{i}.module.weight_hh_l0        (the last dropped copy, when saved: ignored, the raw weights are the model)
    0.rnns.{i}.module.bias_ih_l0 / bias_hh_l0
    1.decoder.weight                      [vocab, emb_sz]   tied: equal to the embedding
    1.decoder.bias                        [vocab]

The vocabulary file is a pickled list of strings (itos). It is read by an unpickler that builds lists and strings
only and refuses any class or function reference, so a crafted `.pkl` cannot run code; the weights load with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .checkpoints import load_refusal
from .errors import BridgeError
from .models.awd_lstm import AWDLSTMConfig

RNN_KEY = re.compile(r"^rnns\.(\d+)\.(?:module\.)?(weight_ih_l0|weight_hh_l0_raw|weight_hh_l0|bias_ih_l0|bias_hh_l0)$")
OUR_RNN_NAMES = {
    "weight_ih_l0": "weight_ih",
    "weight_hh_l0_raw": "weight_hh_raw",
    "bias_ih_l0": "bias_ih",
    "bias_hh_l0": "bias_hh",
}
EMBEDDING_COPIES = ("encoder_dp.emb.weight", "encoder_with_dropout.embed.weight")


class FastaiImportError(BridgeError):
    """The fastai files are missing, unsafe, or not an AWD-LSTM language model (the message says which and where)."""

    code = "bad_import"


class _ListOfStringsUnpickler(pickle.Unpickler):
    """Builds only what pickle's own opcodes make (lists, strings, numbers...): every global lookup is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a vocabulary pickle holds a list of strings only")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id: a vocabulary pickle holds a list of strings only")


def load_itos(path: str | Path) -> list[str]:
    """The vocabulary (id -> token) of a fastai `itos*.pkl`, refusing anything but a list of strings."""
    p = Path(path)
    if not p.is_file():
        raise FastaiImportError(f"no vocabulary file at {p}")
    try:
        itos = _ListOfStringsUnpickler(io.BytesIO(p.read_bytes())).load()
    except Exception as e:  # UnpicklingError for a refused reference, others for a damaged file
        raise FastaiImportError(f"{p}: not a pickled list of strings ({type(e).__name__}: {e})") from e
    if not isinstance(itos, list) or not itos:
        raise FastaiImportError(f"{p}: expected a non-empty list of strings, got {type(itos).__name__}")
    bad = next((i for i, t in enumerate(itos) if not isinstance(t, str)), None)
    if bad is not None:
        raise FastaiImportError(f"{p}: item {bad} is a {type(itos[bad]).__name__}, not a string")
    return itos


def load_fastai_state(path: str | Path) -> dict[str, Tensor]:
    """The fastai state dict at `path` (weights only), unwrapped from {"model", "opt"} and `module.` prefixes."""
    p = Path(path)
    if not p.is_file():
        raise FastaiImportError(f"no weights file at {p}")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own text advises weights_only=False, which would run a file's code: never that
        r = load_refusal(p, e)
        why = {
            "pickled": f"it holds a pickled {r.detail} ({r.size} bytes), not a state dict of tensors; "
            "code in a file is never unpickled here",
            "empty": "it is empty (0 bytes)",
            "torn": f"a torch file that is truncated or corrupt ({r.size} bytes; {r.detail})",
            "foreign": f"not a torch weights file ({r.size} bytes, starts {r.detail}); fastai writes them with learn.save (.pth)",
        }[r.kind]
        raise FastaiImportError(f"{p}: {why}") from e
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]  # saved with its optimizer
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise FastaiImportError(f"{p}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def convert_state(sd: dict[str, Tensor], where: str = "weights") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """fastai names -> ours (`encoder.*`, `lm_head.*`) and the sizes they imply (vocab_sz, emb_sz, n_hid,
    n_layers, tie_weights, out_bias). Raises FastaiImportError naming a missing or misshapen tensor."""
    enc = {k.removeprefix("0."): v for k, v in sd.items() if k.startswith("0.")}
    dec = {k.removeprefix("1."): v for k, v in sd.items() if k.startswith("1.")}
    if not enc:  # an encoder saved on its own (fastai's save_encoder): no decoder, so a tied one
        enc, dec = sd, {}
    emb = enc.get("encoder.weight")
    if emb is None:
        emb = next((enc[k] for k in EMBEDDING_COPIES if k in enc), None)
    if emb is None or emb.dim() != 2:
        raise FastaiImportError(f"{where}: no embedding (0.encoder.weight [vocab, emb_sz]); keys: {sorted(sd)[:8]}...")
    vocab_sz, emb_sz = emb.shape
    layers: dict[int, dict[str, Tensor]] = {}
    for k, v in enc.items():
        m = RNN_KEY.match(k)
        if m and m.group(2) != "weight_hh_l0":  # the dropped copy is not part of the model
            layers.setdefault(int(m.group(1)), {})[OUR_RNN_NAMES[m.group(2)]] = v
    n_layers = len(layers)
    if n_layers == 0 or sorted(layers) != list(range(n_layers)):
        raise FastaiImportError(f"{where}: LSTM layers must be rnns.0..rnns.N-1, found {sorted(layers)}")
    out: dict[str, Tensor] = {"encoder.emb.weight": emb}
    n_in = emb_sz
    for i in range(n_layers):
        w = layers[i]
        missing = [n for n in OUR_RNN_NAMES.values() if n not in w]
        if missing:
            raise FastaiImportError(
                f"{where}: layer {i} lacks {missing} (fastai names weight_ih_l0, weight_hh_l0_raw, bias_*_l0)"
            )
        n_out = w["weight_hh_raw"].size(1)
        expect = {
            "weight_ih": (4 * n_out, n_in),
            "weight_hh_raw": (4 * n_out, n_out),
            "bias_ih": (4 * n_out,),
            "bias_hh": (4 * n_out,),
        }
        for name, shape in expect.items():
            if tuple(w[name].shape) != shape:
                raise FastaiImportError(f"{where}: layer {i} {name} has shape {list(w[name].shape)}, expected {list(shape)}")
            out[f"encoder.rnns.{i}.fwd.{name}"] = w[name]
        n_in = n_out
    if n_in != emb_sz:
        raise FastaiImportError(
            f"{where}: the last LSTM layer gives {n_in} features but the embedding has {emb_sz}: not a tied AWD-LSTM"
        )
    n_hid = layers[0]["weight_hh_raw"].size(1) if n_layers > 1 else emb_sz
    dec_w, dec_b = dec.get("decoder.weight"), dec.get("decoder.bias")
    tied = dec_w is None or torch.equal(dec_w, emb)
    if not tied:
        assert dec_w is not None
        if tuple(dec_w.shape) != (vocab_sz, emb_sz):
            raise FastaiImportError(f"{where}: 1.decoder.weight has shape {list(dec_w.shape)}, expected {[vocab_sz, emb_sz]}")
        out["lm_head.decoder.weight"] = dec_w
    else:
        out["lm_head.decoder.weight"] = emb
    if dec_b is not None:
        if tuple(dec_b.shape) != (vocab_sz,):
            raise FastaiImportError(f"{where}: 1.decoder.bias has shape {list(dec_b.shape)}, expected {[vocab_sz]}")
        out["lm_head.decoder.bias"] = dec_b
    sizes = {
        "vocab_sz": int(vocab_sz),
        "emb_sz": int(emb_sz),
        "n_hid": int(n_hid),
        "n_layers": n_layers,
        "tie_weights": tied,
        "out_bias": dec_b is not None,
    }
    return {k: v.float() for k, v in out.items()}, sizes


def import_fastai(weights: str | Path, vocab: str | Path, out: str | Path, backwards: bool) -> dict[str, Any]:
    """Converts a fastai LM (weights .pth + itos .pkl) into a bridge checkpoint at `out`.

    Returns path, config (the model config), itos and what was converted. The special-token ids come from itos
    (fastai's order puts xxunk, xxpad, xxbos, xxeos first, as ours does).
    """
    # imported here: checkpoints -> training -> models, and this module is imported by ops at start-up
    from .checkpoints import save_checkpoint
    from .models.heads import BridgeModel, HeadConfig
    from .training import TrainConfig, Trainer

    itos = load_itos(vocab)
    weights_, sizes = convert_state(load_fastai_state(weights), str(weights))
    if len(itos) != sizes["vocab_sz"]:
        raise FastaiImportError(f"{vocab} has {len(itos)} tokens but the embedding in {weights} has {sizes['vocab_sz']} rows")
    ids = {t: i for i, t in enumerate(itos)}
    specials = {
        f"{name}_id": ids[tok]
        for name, tok in (("unk", "xxunk"), ("pad", "xxpad"), ("bos", "xxbos"), ("eos", "xxeos"))
        if tok in ids
    }
    mc = AWDLSTMConfig(**sizes, backwards=backwards, **specials)
    trainer = Trainer(BridgeModel(mc, HeadConfig()), TrainConfig(), torch.device("cpu"))
    state = trainer.model.state_dict()
    for k in state:
        if k.startswith(("encoder.", "lm_head.")):
            state[k] = weights_[k]  # every encoder / LM-head key was produced by convert_state
    trainer.model.load_state_dict(state)
    meta = {"source": "fastai", "weights": str(weights), "vocab": str(vocab), "direction": "backward" if backwards else "forward"}
    saved = save_checkpoint(trainer, out, meta)
    return {
        "path": saved["path"],
        "bytes": saved["bytes"],
        "config": {k: getattr(mc, k) for k in (*sizes, "backwards")},
        "itos": itos,
    }

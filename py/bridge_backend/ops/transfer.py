"""Transfer-learning ops: import a fastai LM, start a freshly built model from a pretrained one.

import_fastai  weights, vocab, out, backwards? -> path, bytes, config, itos
               (a fastai .pth + itos .pkl converted into a bridge checkpoint at `out`; see fastai_import.py)
init_from      path, backward_path?; vocab_map? [vocab_sz], backward_vocab_map? [vocab_sz]
               -> loaded, skipped, copied, new, buckets, source {arch, emb_sz, n_hid, n_layers, direction, vocab_sz}, meta,
               backward? (the same fields for the backward source)
               The built model's encoder (and LM head where it fits) from the checkpoint at `path`, its vocabulary
               mapped onto the model's as ULMFiT does (`vocab_map`: the checkpoint's id of each of the model's
               words, -1 for a new word, which starts from the mean row, -2 for an out-of-vocabulary bucket, which keeps
               the model's own random row). A dual_lm model (forward + backward
               encoders) takes its forward encoder from `path` and its backward one from `backward_path` (with
               `backward_vocab_map`), each source's direction checked; or both halves from a dual_lm checkpoint
               at `path` alone.
init_word_vectors  seed?; vectors [vocab_sz, k] float32, known [vocab_sz] (nonzero: the word has a vector)
               -> copied, dim, emb_sz, scale
               Pretrained word vectors (GloVe, word2vec, fastText) as the built model's embedding rows: each known
               word's vector, mapped into the emb_sz-wide embedding by a seeded map with orthonormal columns (dot
               products and cosines unchanged; the identity when k == emb_sz) and scaled so the rows' mean norm is the
               random rows' (the other words keep their random rows); every encoder of a dual_lm model alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from ..checkpoints import checked_vocab_map, load_checkpoint, read_checkpoint, remap_vocab
from ..errors import BadArgs, BridgeError
from ..fastai_import import import_fastai as convert_fastai
from ..models.archs import arch_of
from .args import arg, path_arg, tensor_arg
from .model import INTS, trainer_of
from .registry import Args, Tensors, op

# What must agree between a pretrained encoder and the model it starts: these sizes and the reading direction.
SIZE_KEYS = ("emb_sz", "n_hid", "n_layers")
DUAL = "forward+backward"  # a dual_lm model's direction
HALF_DIRECTIONS = {"fwd": "forward", "bwd": "backward"}  # DualLMEncoder's halves


class InitMismatch(BridgeError):
    """The pretrained model does not fit the one built: sizes or direction differ (the message lists them)."""

    code = "init_mismatch"


def direction(config: dict[str, Any]) -> str:
    """How a model ({"model": ..., "head": ...} as a checkpoint stores it) reads: forward, backward, bidirectional
    or forward+backward (dual_lm: two encoders)."""
    model_cfg, head_cfg = config["model"], config.get("head") or {}
    if head_cfg.get("dual_lm"):
        return DUAL
    return "bidirectional" if model_cfg.get("bidir") else "backward" if model_cfg.get("backwards") else "forward"


def size_diffs(src: dict[str, Any], own: Any) -> list[str]:
    """'key pretrained vs this' for the architecture (awd_lstm | sha_rnn; older checkpoints have none: AWD-LSTMs) when
    it differs, else for each size that differs (one layer each: n_hid is unused)."""
    arch = arch_of(src)
    if arch != own.arch:
        return [f"arch {arch} vs {own.arch} (an encoder starts only from one of its own architecture)"]
    one_layer = own.n_layers == 1 and src.get("n_layers") == 1 and own.arch == "awd_lstm"  # sha_rnn: n_hid is its Boom
    sizes = ("emb_sz", "n_layers") if one_layer else SIZE_KEYS
    return [f"{k} {src.get(k)!r} vs {getattr(own, k)!r}" for k in sizes if src.get(k) != getattr(own, k)]


def source_summary(src: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    sizes = {k: src.get(k) for k in ("vocab_sz", "emb_sz", "n_hid", "n_layers")}
    return {"arch": arch_of(src), **sizes, "direction": direction(config)}


def place_word_vectors(weight: torch.Tensor, vectors: torch.Tensor, known: torch.Tensor, seed: int) -> float:
    """Writes the known rows of `vectors` [vocab, k] into `weight` [vocab, emb_sz] in place (see init_word_vectors);
    returns the scale applied to the vectors."""
    emb_sz, k = weight.shape[1], vectors.shape[1]
    if k == emb_sz:
        basis = torch.eye(emb_sz)
    else:
        g = torch.Generator().manual_seed(seed)
        basis, _ = torch.linalg.qr(torch.randn(emb_sz, k, generator=g))  # [emb_sz, k], orthonormal columns
    placed = vectors[known] @ basis.to(vectors.device).T  # [n_known, emb_sz]
    row_norms = weight[~known].detach().norm(dim=1)  # the random rows (the zero pad row left out below)
    target = row_norms[row_norms > 0].mean() if bool((row_norms > 0).any()) else torch.tensor(1.0)
    norms = placed.norm(dim=1)
    scale = float(target / norms[norms > 0].mean()) if bool((norms > 0).any()) else 1.0
    with torch.no_grad():
        weight[known] = (placed * scale).to(weight.dtype)
    return scale


@op("init_word_vectors", every_rank=True)
def init_word_vectors(session, args: Args, tensors: Tensors):
    """Pretrained word vectors as the built model's embedding rows (see the module docstring)."""
    t = trainer_of(session)
    vectors = tensor_arg(tensors, "vectors", dtypes=(torch.float32,), ndim=2)
    known = tensor_arg(tensors, "known", dtypes=(*INTS, torch.uint8, torch.bool), ndim=1) != 0
    vocab_sz, emb_sz, k = t.model.cfg.vocab_sz, t.model.cfg.emb_sz, vectors.shape[1]
    if vectors.shape[0] != vocab_sz or known.shape[0] != vocab_sz:
        shapes = f"vectors {list(vectors.shape)}, known {list(known.shape)}"
        raise BadArgs(f"init_word_vectors needs one row per word of the model's {vocab_sz}: {shapes}")
    if not 1 <= k <= emb_sz:
        raise BadArgs(f"word vectors of {k} dimensions do not fit the model's {emb_sz}-wide embedding (model.emb_sz >= {k})")
    if not bool(torch.isfinite(vectors[known]).all()):
        raise BadArgs("init_word_vectors: a known word's vector is not finite")
    known[t.model.cfg.pad_id] = False  # the pad row stays zero
    seed = arg(args, "seed", int, 0)
    scale = 1.0
    for enc in t.model.encoders():
        scale = place_word_vectors(enc.emb.weight, vectors.to(enc.emb.weight.device), known.to(enc.emb.weight.device), seed)
    return {"copied": int(known.sum()), "dim": k, "emb_sz": emb_sz, "scale": scale}


@op("import_fastai")
def import_fastai(session, args: Args, tensors: Tensors):
    """Converts fastai weights + vocabulary into a bridge checkpoint (no model is built in the session)."""
    return convert_fastai(
        path_arg(session, args, "weights"),
        path_arg(session, args, "vocab"),
        path_arg(session, args, "out"),
        arg(args, "backwards", bool, False),
    )


@op("init_from", every_rank=True)
def init_from(session, args: Args, tensors: Tensors):
    """Loads the encoder (and LM head where shapes agree) of a pretrained checkpoint into the built model; a dual_lm
    model's forward encoder from `path`, its backward one from `backward_path`."""
    t = trainer_of(session)
    path = path_arg(session, args, "path")
    vocab_map = tensor_arg(tensors, "vocab_map", dtypes=INTS, ndim=1) if "vocab_map" in tensors else None
    if t.model.hc.dual_lm:
        if args.get("backward_path") is not None:
            args = {**args, "backward_path": path_arg(session, args, "backward_path")}
        return init_dual(t, path, vocab_map, args, tensors)
    if args.get("backward_path") is not None:
        raise BadArgs("backward_path starts the backward encoder of a dual_lm model; this model has one encoder (dual_lm false)")
    config = read_checkpoint(path)["config"]
    src, own = config["model"], t.model.cfg
    diffs = size_diffs(src, own)
    own_direction = direction({"model": asdict(own), "head": asdict(t.model.hc)})
    if direction(config) != own_direction:
        diffs.append(f"direction {direction(config)} vs {own_direction}")
    if diffs:
        raise InitMismatch(f"the pretrained model {path} does not fit this model (pretrained vs this): {'; '.join(diffs)}")
    res = load_checkpoint(t, path, "encoder", allow_partial=True, vocab_map=vocab_map)
    emb_skipped = "encoder.emb.weight" in res["skipped"]
    state = t.model.state_dict(keep_vars=True)
    if not emb_skipped:  # a tied decoder weight is the embedding, loaded already: not worth a warning
        emb_ptr = state["encoder.emb.weight"].data_ptr()
        res["skipped"] = [k for k in res["skipped"] if state[k].data_ptr() != emb_ptr]
    return {
        "loaded": res["loaded"],
        "skipped": res["skipped"],
        **embedding_rows(vocab_map, own.vocab_sz, emb_skipped),
        "source": source_summary(src, config),
        "meta": res["meta"],
    }


def embedding_rows(vocab_map: torch.Tensor | None, vocab_sz: int, emb_skipped: bool) -> dict[str, int]:
    """The reply's count of embedding rows: copied from the source, new words (the mean row: vocab_map -1) and
    out-of-vocabulary buckets the source lacks (their own random rows: vocab_map -2); all new when the embedding
    was not loaded."""
    if emb_skipped:
        return {"copied": 0, "new": vocab_sz, "buckets": 0}
    new = 0 if vocab_map is None else int((vocab_map == -1).sum())
    buckets = 0 if vocab_map is None else int((vocab_map == -2).sum())
    return {"copied": vocab_sz - new - buckets, "new": new, "buckets": buckets}


def init_dual(t, path: str, vocab_map: torch.Tensor | None, args: Args, tensors: Tensors) -> dict[str, Any]:
    """A dual_lm model: the forward half from `path`, the backward half from `backward_path` (or from the dual_lm
    checkpoint at `path` when there is no backward_path). Both sources are checked before either loads. Replies as
    for one encoder, the backward source's figures under `backward`."""
    if args.get("backward_path") is None:
        if direction(read_checkpoint(path)["config"]) != DUAL:
            raise InitMismatch(
                "this model holds a forward and a backward encoder (dual_lm): give the backward LM too "
                f"(init.backward; the op's backward_path), or a dual_lm model as the only source; {path} has one encoder"
            )
        bwd_path, bwd_map = path, vocab_map
    else:
        bwd_path = arg(args, "backward_path", str)  # confined by init_from
        bwd_map = tensor_arg(tensors, "backward_vocab_map", dtypes=INTS, ndim=1) if "backward_vocab_map" in tensors else None
    fwd = half_source(t, "fwd", path, vocab_map)
    bwd = half_source(t, "bwd", bwd_path, bwd_map)
    return {**load_half(t, "fwd", *fwd), "backward": load_half(t, "bwd", *bwd)}


def half_source(
    t, half: str, path: str, vocab_map: torch.Tensor | None
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, dict[str, Any]]:
    """The weights for one encoder of a dual_lm model (`half`: fwd | bwd), keyed as one encoder's (encoder.*), from a
    one-encoder checkpoint of that direction or from that half of a dual_lm checkpoint, the vocabulary mapped as
    ULMFiT does; with the checked vocab_map and the reply's source / meta. InitMismatch names what differs."""
    ck = read_checkpoint(path)
    config, own = ck["config"], t.model.cfg
    src = config["model"]
    want, found = HALF_DIRECTIONS[half], direction(config)
    role = "init.from (the forward LM)" if half == "fwd" else "init.backward (the backward LM)"
    diffs = size_diffs(src, own)
    if found not in (want, DUAL):
        diffs.append(f"direction {found} vs {want}")
    if diffs:
        raise InitMismatch(
            f"{role}: the pretrained model {path} does not fit this model's {want} encoder (pretrained vs this): "
            f"{'; '.join(diffs)}"
        )
    prefix = f"encoder.{half}." if found == DUAL else "encoder."
    weights = {f"encoder.{k.removeprefix(prefix)}": v for k, v in ck["model"].items() if k.startswith(prefix)}
    if vocab_map is not None:
        vocab_map = checked_vocab_map(vocab_map, src["vocab_sz"], own.vocab_sz)
        half_prefix = f"encoder.{half}."
        mine = {f"encoder.{k.removeprefix(half_prefix)}": v for k, v in t.model.state_dict().items() if k.startswith(half_prefix)}
        weights = remap_vocab(weights, vocab_map, own=mine)
    elif src["vocab_sz"] != own.vocab_sz:
        raise InitMismatch(f"{role}: {path} has {src['vocab_sz']} words, this model {own.vocab_sz}: send a vocab_map")
    return weights, vocab_map, {"source": source_summary(src, config), "meta": ck.get("meta", {})}


def load_half(
    t, half: str, weights: dict[str, torch.Tensor], vocab_map: torch.Tensor | None, about: dict[str, Any]
) -> dict[str, Any]:
    """Copies `weights` (keyed encoder.*) into the model's encoder.`half`.*; a tensor whose shape differs is skipped."""
    state = t.model.state_dict()
    loaded, skipped = [], []
    for k in state:
        if not k.startswith(f"encoder.{half}."):
            continue
        w = weights.get(f"encoder.{k.removeprefix(f'encoder.{half}.')}")
        if w is not None and w.shape == state[k].shape:
            state[k] = w
            loaded.append(k)
        else:
            skipped.append(k)
    t.model.load_state_dict(state)
    t.lm_state.clear()
    emb_skipped = f"encoder.{half}.emb.weight" in skipped
    return {
        "loaded": len(loaded),
        "skipped": skipped,
        **embedding_rows(vocab_map, t.model.cfg.vocab_sz, emb_skipped),
        **about,
    }

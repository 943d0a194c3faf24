"""Checkpoints: weights, optimizer, RNG states, step, model config and vocabulary fingerprint in one file.

Written atomically (a temp file in the same folder, fsync, then os.replace) with torch.save of plain
tensors, dicts, lists, strings and numbers only, and read back with `torch.load(weights_only=True)`: no
pickled module or class ever enters or leaves. Parts that a load can take:

- "all": everything, to resume training (same architecture, optimizer and vocabulary required);
- "weights": the model's weights only (evaluation, or a new optimizer);
- "encoder": `encoder.*` and `lm_head.*` by name, to carry an encoder to the next stage
  (LM -> siamese -> contrastive) whose heads / pooling differ; with a `vocab_map`, onto a new vocabulary.
  The projection (`proj.*`, proj_dim) comes too where the checkpoint has it at the model's shape (a stage that
  pools otherwise starts a fresh one). The buffers stay the built model's: `token_weights` come with `build`, and
  `sif_pc` starts unfitted, since the new stage's vectors move away from the old component.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import BridgeError
from .models.archs import arch_of
from .models.awd_lstm import ARCH_KEYS
from .models.heads import HEAD_ARCH_KEYS, HeadConfig
from .training import Trainer, set_rng_state

FORMAT = "bridge-checkpoint"
VERSION = 1
PARTS = ("all", "weights", "encoder")
ENCODER_PREFIXES = ("encoder.", "lm_head.")  # what parts="encoder" must find in the checkpoint
ENCODER_OPTIONAL = ("proj.", "layer_mix.")  # what it takes when the checkpoint has it at the same shape


class CheckpointError(BridgeError):
    """The file is missing, unreadable, or not a bridge checkpoint."""

    code = "bad_checkpoint"


class CheckpointMismatch(BridgeError):
    """The checkpoint does not fit the model: vocabulary, architecture or optimizer differ (the message says which)."""

    code = "checkpoint_mismatch"


class NoSpace(BridgeError):
    """The disk refused a checkpoint's bytes; the file it would replace is untouched."""

    code = "no_space"


def disk_refused(e: BaseException) -> bool:
    """A full disk, as the OS says it (ENOSPC, EDQUOT) or as torch's zip writer does after a short write."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(e, RuntimeError) and ("unexpected pos" in str(e) or "file write failed" in str(e))


def atomic_save(obj: Any, path: str | os.PathLike) -> int:
    """torch.save to a temp file beside `path`, fsync, then rename over `path`. Returns the size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if disk_refused(e):
            detail = str(e).strip().splitlines()[0][:200]
            raise NoSpace(f"no space left on {path.parent} while writing {path.name} ({type(e).__name__}: {detail})") from e
        raise
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path.stat().st_size


def checkpoint_state(trainer: Trainer, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    m = trainer.model
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": {"model": asdict(m.cfg), "head": asdict(m.hc), "train": asdict(trainer.tc)},
        "vocab_fingerprint": trainer.vocab_fingerprint,
        "meta": meta or {},
        **trainer.state_dict(),
    }


def save_checkpoint(trainer: Trainer, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    size = atomic_save(checkpoint_state(trainer, meta), path)
    return {"path": str(path), "bytes": size, "step": trainer.step}


ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
HOW_MADE = (
    "bridge checkpoints hold only tensors and plain values, written by the backend's `save` op "
    "(`bridge train` writes them to runs/NAME/checkpoints/, `bridge import` converts fastai weights into one)"
)


# torch.save's format before zip archives: a pickle (protocol 2) whose first object is torch's magic number
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
PICKLE_MAGIC = b"\x80"  # any pickle of protocol 2 or later


@dataclass(frozen=True)
class LoadRefusal:
    """Why torch.load (weights only) refused a file. kind: "pickled" (detail: the class, never unpickled here),
    "empty", "torn" (a torch file cut short or corrupt; detail: torch's reason) or "foreign" (not a torch file at
    all; detail: its first bytes, and what they are when that is known)."""

    kind: str
    size: int
    detail: str


def load_refusal(path: Path, e: Exception) -> LoadRefusal:
    size = path.stat().st_size
    # a dotted name (module.Class): a torn file's bytes read as GLOBAL give fragments, not that
    found = re.search(r"GLOBAL ([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\b", str(e)) if isinstance(e, pickle.UnpicklingError) else None
    if found:
        return LoadRefusal("pickled", size, found.group(1))
    if size == 0:
        return LoadRefusal("empty", size, "")
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    reason = f"{type(e).__name__}: {str(e).split('. ')[0].strip() or 'no detail'}"
    if head.startswith(ZIP_MAGIC) or head == LEGACY_MAGIC:
        return LoadRefusal("torn", size, reason)
    if head.startswith(PICKLE_MAGIC):
        return LoadRefusal("foreign", size, f"{head[:4]!r}: a Python pickle, not torch.save's")
    return LoadRefusal("foreign", size, repr(head[:4]))


def unreadable(path: Path, e: Exception) -> CheckpointError:
    """The error for a checkpoint torch.load refused: pickled objects (not ours), a torn archive, or another format."""
    r = load_refusal(path, e)
    if r.kind == "pickled":  # weights_only refused a class: a pickled object, never one of ours
        return CheckpointError(
            f"{path} is not a bridge checkpoint: it holds a pickled {r.detail}, as torch.save of a whole "
            f"module or other object writes ({r.size} bytes), and code in a file is never unpickled here; {HOW_MADE}"
        )
    if r.kind == "empty":
        return CheckpointError(f"{path} is empty (0 bytes): truncated, e.g. by a full disk or a killed copy")
    if r.kind == "torn":
        return CheckpointError(
            f"{path} is truncated or corrupt ({r.size} bytes; torch cannot read the archive: {r.detail}); "
            "it cannot be used (a resumed run whose step checkpoint this is starts that stage again by itself)"
        )
    return CheckpointError(
        f"{path} is not a bridge checkpoint: not a torch archive ({r.size} bytes, starts {r.detail}); {HOW_MADE}"
    )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads without unpickling code; checks that it is a bridge checkpoint of a known version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for pickled objects; OSError / RuntimeError / EOFError for a torn file
        raise unreadable(path, e) from e
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a bridge checkpoint (no format={FORMAT!r} field); {HOW_MADE}")
    if ck.get("version") != VERSION:
        raise CheckpointError(f"{path} is checkpoint version {ck.get('version')}, this backend reads {VERSION}")
    train = ck.get("config", {}).get("train")
    if isinstance(train, dict):
        for key in LEGACY_TRAIN_FIELDS:
            train.pop(key, None)
    return ck


# Loss settings older checkpoints stored with the optimizer's; they are objectives' step options now (objectives/).
LEGACY_TRAIN_FIELDS = ("alpha", "beta", "margin", "distance", "temperature")


VOCAB_KEYS = ("encoder.emb.weight", "lm_head.decoder.weight", "lm_head.decoder.bias")  # rows indexed by word id


def remap_vocab(
    weights: dict[str, torch.Tensor], vocab_map: torch.Tensor, own: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Re-indexes the vocabulary-sized tensors for a new vocabulary (fastai's match_embeds).

    vocab_map [new_vocab_sz]: the checkpoint's id of each new word, or -1 for a word it did not have; such
    words start from the mean row (the mean embedding, the mean output bias). -2 marks an out-of-vocabulary
    bucket (ts/data/vocab.ts): it keeps the model's own freshly initialised row from `own` (the model's state,
    keyed like `weights`), so that different buckets stay apart; without `own` it starts from the mean row too.
    """
    out = dict(weights)
    known = vocab_map >= 0  # [new_vocab_sz]
    keep_own = vocab_map == -2  # [new_vocab_sz]
    for k in VOCAB_KEYS:
        if k in out:
            old = out[k]  # [old_vocab_sz, ...]
            new = old[vocab_map.clamp_min(0)]  # [new_vocab_sz, ...]
            mean = old.float().mean(0).to(old.dtype)
            rows = torch.where(known.view(-1, *([1] * (old.dim() - 1))), new, mean)
            # a bias row is the same for every fresh bucket (zero): the mean bias, as a new word gets, suits better
            if own is not None and k in own and k.endswith(".weight") and bool(keep_own.any()):
                rows[keep_own] = own[k][keep_own].to(device=rows.device, dtype=rows.dtype)
            out[k] = rows
    return out


def checked_vocab_map(vocab_map: torch.Tensor, old_sz: int, new_sz: int) -> torch.Tensor:
    """vocab_map as int64 on the CPU; CheckpointMismatch unless it has one id per model word, each in -2..old_sz-1."""
    vocab_map = vocab_map.long().cpu()
    if vocab_map.dim() != 1 or vocab_map.numel() != new_sz:
        raise CheckpointMismatch(
            f"vocab_map must hold one id per word of the model ({new_sz}), got shape {list(vocab_map.shape)}"
        )
    if int(vocab_map.max()) >= old_sz or int(vocab_map.min()) < -2:
        raise CheckpointMismatch(
            f"vocab_map ids must be within -2..{old_sz - 1} (the checkpoint's vocabulary; -1 new word, -2 own row)"
        )
    return vocab_map


def check_compatible(
    ck: dict[str, Any], trainer: Trainer, parts: str, allow_partial: bool = False, remapped: bool = False
) -> None:
    """Raises CheckpointMismatch naming the first kind of difference: vocabulary, then architecture, then optimizer.

    `remapped`: the checkpoint's vocabulary was mapped onto the model's (a vocab_map), so it may differ.
    """
    cm, m = {**ck["config"]["model"], "arch": arch_of(ck["config"]["model"])}, trainer.model
    if remapped:
        cm = {**cm, "vocab_sz": m.cfg.vocab_sz}
    elif cm["vocab_sz"] != m.cfg.vocab_sz:
        raise CheckpointMismatch(f"vocabulary size differs: checkpoint has {cm['vocab_sz']} words, the model {m.cfg.vocab_sz}")
    fp_ck, fp = ck.get("vocab_fingerprint") or "", trainer.vocab_fingerprint
    if fp_ck and fp and fp_ck != fp and not remapped:
        raise CheckpointMismatch(f"vocabulary differs: checkpoint fingerprint {fp_ck!r}, model {fp!r}")
    if cm["arch"] != m.cfg.arch:  # even a partial load: another architecture's weights mean nothing here
        raise CheckpointMismatch(f"architecture differs: arch (checkpoint {cm['arch']!r}, model {m.cfg.arch!r})")
    if parts == "encoder" and allow_partial:
        return
    diffs = [f"{k} (checkpoint {cm[k]!r}, model {getattr(m.cfg, k)!r})" for k in ARCH_KEYS if cm[k] != getattr(m.cfg, k)]
    if parts != "encoder":
        ch = {**vars(HeadConfig()), **ck["config"]["head"]}  # a checkpoint older than a head key has its default
        diffs += [f"{k} (checkpoint {ch[k]!r}, model {getattr(m.hc, k)!r})" for k in HEAD_ARCH_KEYS if ch[k] != getattr(m.hc, k)]
    if diffs:
        raise CheckpointMismatch("architecture differs: " + "; ".join(diffs))
    if parts == "all" and ck["config"]["train"]["opt"] != trainer.tc.opt:
        raise CheckpointMismatch(
            f"optimizer differs: checkpoint {ck['config']['train']['opt']!r}, session {trainer.tc.opt!r} "
            "(load parts='weights' to start a new optimizer)"
        )


def load_checkpoint(
    trainer: Trainer,
    path: str | os.PathLike,
    parts: str = "all",
    allow_partial: bool = False,
    vocab_map: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Loads `parts` of the checkpoint at `path` into the session; returns what was loaded.

    With `vocab_map` (parts="encoder" only) the checkpoint's vocabulary is first mapped onto the model's
    (see remap_vocab): a language model pretrained on one corpus, fine-tuned on another (ULMFiT).
    """
    if parts not in PARTS:
        raise CheckpointError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
    ck = read_checkpoint(path)
    if vocab_map is not None:
        if parts != "encoder":
            raise CheckpointError("a vocab_map only goes with parts='encoder' (optimizer state is per word too)")
        vocab_map = checked_vocab_map(vocab_map, ck["config"]["model"]["vocab_sz"], trainer.model.cfg.vocab_sz)
        ck["model"] = remap_vocab(ck["model"], vocab_map, own=trainer.model.state_dict())
    check_compatible(ck, trainer, parts, allow_partial, remapped=vocab_map is not None)
    model = trainer.model
    loaded: list[str] = []
    skipped: list[str] = []
    if parts in ("all", "weights"):
        model.load_state_dict(ck["model"])
        loaded = list(ck["model"])
    else:
        own = model.state_dict()
        src = ck["model"]
        for k in own:
            optional = k.startswith(ENCODER_OPTIONAL)
            if not (optional or k.startswith(ENCODER_PREFIXES)):
                continue
            if k in src and src[k].shape == own[k].shape:
                own[k] = src[k]
                loaded.append(k)
            elif optional:
                if k in src:  # another pooling width: this stage's projection starts fresh
                    skipped.append(k)
            elif allow_partial:
                skipped.append(k)
            else:
                why = f"shape {list(src[k].shape)} vs {list(own[k].shape)}" if k in src else "absent from the checkpoint"
                raise CheckpointMismatch(f"encoder weight {k}: {why} (allow_partial loads the rest)")
        model.load_state_dict(own)
    trainer.lm_state.clear()
    if parts == "all":
        trainer.opt.load_state_dict(ck["optimizer"])
        set_rng_state(ck["rng"])
        trainer.step = int(ck["step"])
        trainer.set_trainable(list(ck["trainable"]))
    res = {"parts": parts, "step": int(ck["step"]), "loaded": len(loaded), "skipped": skipped, "meta": ck.get("meta", {})}
    if vocab_map is not None:
        res["new_words"] = int((vocab_map < 0).sum())
    return res

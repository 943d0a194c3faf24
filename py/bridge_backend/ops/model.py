"""Model ops: build, train_step, train_steps, flush, eval_step, encode, fit_pc, predict, generate, set_trainable, set_hparams,
save, load, reset_state, model_info.

Token tensors are int32 or int64 `[bs, sl]`, right-padded with the pad id, each with int `<name>_lengths [bs]`
(for `x`: `lengths`); every length is in 1..sl and every id in 0..vocab_sz-1. Which tensors each objective
takes (alternative sets, required / optional) and which step options it reads are declared in its module under
objectives/ (lm.py: x, y [bs, bptt], y may hold -100 = ignore; the pair objectives: premise, hypothesis,
labels [bs] with 0 ent, 1 neu, 2 con; cosent / cosine_mse: premise, hypothesis, scores [bs] float32 in 0..1);
`describe` lists them.

Ops (args -> result; tensors in -> tensors out):

    build          arch? (awd_lstm | sha_rnn), preset (one of the arch's), vocab_sz, vocab_fingerprint, seed, any
                   AWDLSTMConfig / HeadConfig / TrainConfig field, token_weights (a list of vocab_sz numbers >= 0;
                   with pool_weighting idf only, and then required)
                   -> config, params, trainable_params, groups {name: n}, trainable_groups, device, vec_dim
    train_step     objective, return_logits?, hparams? (set_hparams' arguments, set first), the objective's step
                   options; the objective's tensors
                   -> loss, count, correct, (lm: reg; triplet: active, d_pos, d_neg, same_premise_negatives),
                      finite, stepped, step, grad_norm (when stepped); logits / d_pos, d_neg / sim with return_logits;
                      triplet / contrastive pairs with no entailment (any rank's): count 0, loss null, not stepped
    train_steps    steps [train_step's arguments]; step i's tensors named i/<name> -> steps [train_step's results]
                   (tensors back named i/<name>): several steps, one message
    flush          -> flushed (micro-batches applied; 0: nothing pending, no-op), finite, stepped, step, grad_norm?:
                   steps the optimizer with a partial accumulation (< accum_steps micro-batches), its mean
    eval_step      as train_step, no update -> the same metrics and always those tensors (no entailment: count 0,
                   loss 0)
    encode         pool?, pool_layers?, normalize?, batches?; x, lengths -> count, dim; vectors [bs, d] float32
                   (batches n: i/x, i/lengths -> i/vectors, n batches in one message)
                   (pool / pool_layers overrides are refused with proj_dim or sif: those are sized for the built one);
                   with job, total: each batch also sends rows, the vectors wait here in input order, no tensors back
    encode_result  job, discard? -> count, dim; vectors [total, d] of the job in input order (closes the job)
    fit_pc         x [n, sl], lengths [n] -> count, dim, explained: SIF's common component of these sentences'
                   vectors, stored in the model (sif models only)
    predict        vectors?; premise(+_lengths), hypothesis(+_lengths) -> count; logits, probs, pred (+ u, v)
    generate       n, max_len, temperature, top_k, seed?; prompt? [p] -> count; tokens [n, len], lengths [n]
    set_trainable  groups [names] | freeze_to k | unfreeze -> trainable_groups, trainable_params, groups
    set_hparams    lr (number | per-group list | {group: lr}), lr_div, mom, sqr_mom, wd, eps, clip, accum_steps,
                   drop_mult, *_p -> every hparam, lrs, dropouts
    save           path, meta? -> path, bytes, step
    load           path, parts (all | weights | encoder), allow_partial?, rebuild?; vocab_map? -> parts, step,
                   loaded, skipped, meta, built (+ config when built, new_words with a vocab_map); rebuild=true
                   replaces any model with one built from the checkpoint's own config
    reset_state    stream? -> {}
    model_info     -> tree, params, trainable_params, groups, trainable_groups, device, config, step, vec_dim
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch

from .. import distributed
from ..checkpoints import CheckpointMismatch, load_checkpoint, read_checkpoint, save_checkpoint
from ..errors import BadArgs, BridgeError
from ..models.archs import ARCH_PRESETS, ARCHS, DEFAULT_PRESETS, arch_of
from ..models.awd_lstm import AWDLSTMConfig
from ..models.heads import BridgeModel, HeadConfig
from ..objectives import get_objective
from ..objectives.base import GROUPS, LABELS, SCORES, SENTENCES, TARGETS, TensorSpec, lengths_name
from ..training import TrainConfig, Trainer, seed_everything
from .args import arg, path_arg, tensor_arg
from .registry import Args, OpFn, Reply, Tensors, op

INTS = (torch.int32, torch.int64)
COMMON_STEP_OPTS = ("objective", "return_logits", "hparams")  # every objective's; the rest are its own step options


class NoModel(BridgeError):
    code = "no_model"


def value_errors_are_bad_args(fn: OpFn) -> OpFn:
    """A ValueError from the model code is a bad request: reply bad_args with its message."""

    @functools.wraps(fn)
    def wrapper(session, args, tensors):
        try:
            return fn(session, args, tensors)
        except ValueError as e:
            raise BadArgs(str(e)) from e

    return wrapper


def trainer_of(session) -> Trainer:
    t = getattr(session, "trainer", None)
    if t is None:
        raise NoModel("no model in this backend: call build (or load a checkpoint) first")
    return t


NOT_CONFIG_ARGS = ("preset", "vocab_fingerprint", "token_weights")  # build args that are no config field


def field_type(config: Any, key: str) -> type:
    """The type a config field takes: its default's, or for a field defaulting to None (`int | None`) the other one."""
    default = getattr(config, key)
    if default is not None:
        return type(default)
    hint = typing.get_type_hints(type(config))[key]
    return next(t for t in typing.get_args(hint) if t is not types.NoneType)


def make_configs(args: Args) -> tuple[AWDLSTMConfig, HeadConfig, TrainConfig]:
    """Splits build args into the three configs: the arch's preset first (default: its reference size), then each key
    onto the config owning it."""
    arch = arg(args, "arch", str, arch_of(args))  # checked to be a str when given
    if arch not in ARCHS:
        raise BadArgs(f"unknown arch {arch!r} (one of {', '.join(ARCHS)})")
    presets = ARCH_PRESETS[arch]
    preset = arg(args, "preset", str, DEFAULT_PRESETS[arch])
    if preset not in presets:
        raise BadArgs(f"unknown preset {preset!r} for arch {arch} (one of {', '.join(presets)})")
    cfgs: list[Any] = [AWDLSTMConfig(**presets[preset]), HeadConfig(), TrainConfig()]
    owners = {f.name: c for c in cfgs for f in fields(c)}
    for key, value in args.items():
        if key in NOT_CONFIG_ARGS or value is None:
            continue
        if key not in owners:
            raise BadArgs(f"unknown build argument {key!r}")
        c = owners[key]
        kind = field_type(c, key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise BadArgs(f"build argument {key!r} must be {kind.__name__}, got {type(value).__name__}")
        setattr(c, key, value)
    mc, hc, tc = cfgs
    if "vocab_sz" not in args:
        raise BadArgs("missing argument 'vocab_sz'")
    for name in ("vocab_sz", "emb_sz", "n_hid", "n_layers", "accum_steps"):
        if getattr(mc if hasattr(mc, name) else tc, name) < 1:
            raise BadArgs(f"build argument {name!r} must be >= 1")
    if mc.bidir and mc.emb_sz % 2:
        raise BadArgs("a bidirectional encoder needs an even emb_sz (its last layer has emb_sz // 2 per direction)")
    if not 0 <= mc.oov_buckets < mc.vocab_sz:
        raise BadArgs(f"oov_buckets {mc.oov_buckets} must be within 0..{mc.vocab_sz - 1} (the vocabulary's last ids)")
    for name in ("pad_id", "unk_id", "bos_id", "eos_id"):
        if not 0 <= getattr(mc, name) < mc.vocab_sz:
            raise BadArgs(f"{name} {getattr(mc, name)} is outside the vocabulary (0..{mc.vocab_sz - 1})")
    return mc, hc, tc


def token_weights_arg(args: Args, mc: AWDLSTMConfig, hc: HeadConfig) -> torch.Tensor | None:
    """build's `token_weights` (one number >= 0 per word) as a float32 tensor: required by pool_weighting idf,
    refused otherwise (it would weigh nothing)."""
    weights = args.get("token_weights")
    if hc.pool_weighting != "idf":
        if weights is not None:
            raise BadArgs(f"token_weights weigh mean pooling with pool_weighting 'idf' only (this build: {hc.pool_weighting!r})")
        return None
    if weights is None:
        raise BadArgs(f"pool_weighting 'idf' needs build argument 'token_weights': {mc.vocab_sz} weights, one per word id")
    ok = isinstance(weights, list) and all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
    if not ok:
        raise BadArgs("build argument 'token_weights' must be a list of numbers, one per word id")
    if len(weights) != mc.vocab_sz:
        raise BadArgs(f"build argument 'token_weights' has {len(weights)} weights for a vocabulary of {mc.vocab_sz} words")
    bad = next((i for i, w in enumerate(weights) if not (math.isfinite(w) and w >= 0)), None)
    if bad is not None:
        raise BadArgs(f"build argument 'token_weights' must be finite and >= 0: word id {bad} has {weights[bad]!r}")
    return torch.tensor(weights, dtype=torch.float32)


def new_trainer(
    session, mc: AWDLSTMConfig, hc: HeadConfig, tc: TrainConfig, fingerprint: str, token_weights: torch.Tensor | None = None
) -> Trainer:
    """A fresh, seeded model and trainer in the session; token_weights: see BridgeModel (a load fills them)."""
    session.trainer = None  # free the old model first
    seed_everything(tc.seed)
    trainer = Trainer(BridgeModel(mc, hc, token_weights), tc, session.device, fingerprint)
    reseed_rank(tc.seed)
    session.trainer = trainer
    return trainer


def reseed_rank(seed: int) -> None:
    """Under --nproc, gives ranks 1.. their own generator (seed + rank) for dropout / weight-drop masks, once the
    weights are built (or loaded) alike on every rank; rank 0 and a lone process keep theirs."""
    r = distributed.rank()
    if r > 0:
        seed_everything(seed + r)


def build_result(t: Trainer) -> dict[str, Any]:
    s = t.summary()
    return {k: s[k] for k in ("config", "params", "trainable_params", "groups", "trainable_groups", "device", "vec_dim")}


def value_range(x: torch.Tensor) -> tuple[int, int]:
    """(min, max) of a non-empty integer tensor in one pass (a step checks several: two calls each cost more)."""
    lo, hi = torch.aminmax(x)
    return int(lo), int(hi)


def token_ids(session, tensors: Tensors, name: str, *, allow_ignore: bool = False) -> torch.Tensor:
    """Tensor `name` as int64 [bs, sl] on the session's device, ids checked against the vocabulary."""
    x = tensor_arg(tensors, name, dtypes=INTS, ndim=2)
    if x.numel() == 0:
        raise BadArgs(f"tensor {name!r} is empty (shape {list(x.shape)})")
    vocab_sz = trainer_of(session).model.cfg.vocab_sz
    lo, hi = value_range(x)
    # -100: a target ignored (looked for only when there are negative ids)
    negative_ok = allow_ignore and lo < 0 and not bool(((x < 0) & (x != -100)).any())
    if hi >= vocab_sz or (lo < 0 and not negative_ok):
        raise BadArgs(f"tensor {name!r} holds ids outside 0..{vocab_sz - 1} (min {lo}, max {hi})")
    return x.to(session.device, torch.long)


def sentences(session, tensors: Tensors, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [bs, sl], lengths [bs]) for `name` and `name_lengths` (`lengths` for `x`), lengths in 1..sl."""
    x = token_ids(session, tensors, name)
    lname = lengths_name(name)
    lengths = tensor_arg(tensors, lname, dtypes=INTS, ndim=1)
    if lengths.numel() != x.size(0):
        raise BadArgs(f"tensor {lname!r} has {lengths.numel()} lengths for {x.size(0)} rows of {name!r}")
    lo, hi = value_range(lengths)
    if lo < 1 or hi > x.size(1):
        raise BadArgs(f"tensor {lname!r} must be within 1..{x.size(1)} (min {lo}, max {hi})")
    return x, lengths.to(session.device, torch.long)


def labels_tensor(session, tensors: Tensors, name: str) -> torch.Tensor:
    """Class labels `name` [bs] as int64 on the device, each within 0..n_classes-1."""
    labels = tensor_arg(tensors, name, dtypes=INTS, ndim=1)
    n_classes = trainer_of(session).model.hc.n_classes
    lo, hi = value_range(labels) if labels.numel() else (0, 0)
    if lo < 0 or hi >= n_classes:
        raise BadArgs(f"{name} must be within 0..{n_classes - 1} (min {lo}, max {hi})")
    return labels.to(session.device, torch.long)


def groups_tensor(session, tensors: Tensors, name: str) -> torch.Tensor:
    """Group ids `name` [bs] as int64 on the device, each >= 0 (rows sharing one are positives of each other)."""
    groups = tensor_arg(tensors, name, dtypes=INTS, ndim=1)
    if groups.numel() and int(groups.min()) < 0:
        raise BadArgs(f"{name} must be >= 0 (min {int(groups.min())})")
    return groups.to(session.device, torch.long)


def scores_tensor(session, tensors: Tensors, name: str) -> torch.Tensor:
    """Gold similarity scores `name` [bs] float32 on the device, each within 0..1 (the TS side scales them)."""
    scores = tensor_arg(tensors, name, dtypes=(torch.float32,), ndim=1)
    if not bool(torch.isfinite(scores).all()):
        raise BadArgs(f"tensor {name!r} holds non-finite scores")
    if scores.numel() and (float(scores.min()) < 0 or float(scores.max()) > 1):
        raise BadArgs(f"tensor {name!r} must be scaled to 0..1 (min {float(scores.min())}, max {float(scores.max())})")
    return scores.to(session.device)


def read_tensor(session, tensors: Tensors, spec: TensorSpec, b: dict[str, torch.Tensor]) -> None:
    """Validates the tensor(s) of `spec` and adds them to batch `b` (sentences bring their lengths)."""
    if spec.kind == SENTENCES:
        x, lengths = sentences(session, tensors, spec.name)
        b[spec.name], b[lengths_name(spec.name)] = x, lengths
    elif spec.kind == LABELS:
        b[spec.name] = labels_tensor(session, tensors, spec.name)
    elif spec.kind == SCORES:
        b[spec.name] = scores_tensor(session, tensors, spec.name)
    elif spec.kind == GROUPS:
        b[spec.name] = groups_tensor(session, tensors, spec.name)
    else:
        b[spec.name] = token_ids(session, tensors, spec.name, allow_ignore=spec.kind == TARGETS)


def step_batch(session, objective: str, tensors: Tensors) -> dict[str, torch.Tensor]:
    """The objective's tensors, validated against its tensor set and moved to the device."""
    try:
        obj = get_objective(objective)
        tensor_set = obj.tensor_set(tensors)
    except ValueError as e:
        raise BadArgs(str(e)) from e
    b: dict[str, torch.Tensor] = {}
    first = tensor_set.tensors[0]
    for spec in tensor_set.tensors:
        if not spec.required and spec.name not in tensors:
            continue
        read_tensor(session, tensors, spec, b)
        if spec is first:
            continue
        if spec.kind == TARGETS and b[spec.name].shape != b[first.name].shape:
            raise BadArgs(
                f"tensors {first.name!r} {list(b[first.name].shape)} and {spec.name!r} {list(b[spec.name].shape)} "
                "must have the same shape"
            )
        if spec.same_rows and b[spec.name].size(0) != b[first.name].size(0):
            names = [t.name for t in tensor_set.tensors if t.same_rows]
            raise BadArgs(
                f"{', '.join(names)} must have the same batch size for {objective} "
                f"({first.name!r} has {b[first.name].size(0)} rows, {spec.name!r} {b[spec.name].size(0)})"
            )
    return b


def step_opts(objective: str, args: Args) -> dict[str, Any]:
    """The step's options without `objective`, each checked against the objective's declared step options."""
    options = {o.name: o for o in get_objective(objective).step_options}
    unknown = set(args) - set(COMMON_STEP_OPTS) - set(options)
    if unknown:
        known = ", ".join([*COMMON_STEP_OPTS, *options])
        raise BadArgs(f"unknown argument(s) {sorted(unknown)} for objective {objective!r}; it takes: {known}")
    for name, o in options.items():
        if name not in args or args[name] is None:
            continue
        value = arg(args, name, o.kind)
        if o.choices and value not in o.choices:
            raise BadArgs(f"argument {name!r} must be one of {', '.join(o.choices)}, got {value!r}")
        if o.positive and not value > 0:
            raise BadArgs(f"argument {name!r} must be > 0, got {value!r}")
        if o.non_negative and not value >= 0:
            raise BadArgs(f"argument {name!r} must be >= 0, got {value!r}")
    arg(args, "return_logits", bool, False)
    return {k: v for k, v in args.items() if k not in ("objective", "hparams")}


def cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


@op("build", every_rank=True)
@value_errors_are_bad_args
def build(session, args: Args, tensors: Tensors):
    """Builds a fresh model and optimizer from a preset and overrides (seeded); replaces any previous one."""
    mc, hc, tc = make_configs(args)
    hc.check()  # before token_weights_arg reads pool_weighting
    weights = token_weights_arg(args, mc, hc)
    t = new_trainer(session, mc, hc, tc, arg(args, "vocab_fingerprint", str, ""), weights)
    return build_result(t)


@dataclass(frozen=True)
class CheckedStep:
    """A training step's request, checked and on the device, not yet run."""

    objective: str
    batch: dict[str, torch.Tensor]
    opts: dict[str, Any]
    hparams: dict[str, Any] | None


def check_step(session, args: Args, tensors: Tensors) -> CheckedStep:
    """A train_step's arguments and tensors checked (nothing changes yet)."""
    trainer_of(session)
    objective = arg(args, "objective", str)
    batch, opts = step_batch(session, objective, tensors), step_opts(objective, args)
    hparams = args.get("hparams")
    if hparams is not None and not isinstance(hparams, dict):
        raise BadArgs("argument 'hparams' must be an object (set_hparams' arguments)")
    return CheckedStep(objective, batch, opts, hparams)


def run_step(session, step: CheckedStep) -> Reply:
    """Sets the step's hparams (if any), then one forward/backward; its metrics and output tensors."""
    if step.hparams is not None:
        apply_hparams(session, step.hparams)
    metrics, out = trainer_of(session).train_step(step.objective, step.batch, step.opts)
    return Reply(metrics, cpu(out))


@op("train_step")
@value_errors_are_bad_args
def train_step(session, args: Args, tensors: Tensors):
    """One forward/backward of `objective` (optimizer step every accum_steps calls); returns its metrics. `hparams`
    (set_hparams' arguments) are set first: a step whose schedule moved needs one request, not two."""
    return run_step(session, check_step(session, args, tensors))


STEP_TENSOR_SEPARATOR = "/"  # several calls in one message (train_steps, encode's batches): call i's `name` is `i/name`
STEP_TENSOR_NAME = re.compile(rf"(0|[1-9][0-9]*){re.escape(STEP_TENSOR_SEPARATOR)}(.+)", re.ASCII | re.DOTALL)


def split_by_step(tensors: Tensors, n: int, op_name: str) -> list[Tensors]:
    """The tensors of each of the n calls one request carries (named `i/<name>`, i in plain decimal)."""
    per: list[Tensors] = [{} for _ in range(n)]
    for name, t in tensors.items():
        m = STEP_TENSOR_NAME.fullmatch(name)
        if m is None or int(m[1]) >= n:
            raise BadArgs(f"tensor {name!r}: {op_name} tensors are named <step>/<name> with step in 0..{n - 1}")
        per[int(m[1])][m[2]] = t  # one spelling per step number: no two names land on one tensor
    return per


@op("train_steps")
@value_errors_are_bad_args
def train_steps(session, args: Args, tensors: Tensors):
    """Several train_steps in one request, run in order: `steps` is a list of train_step arguments, step i's
    tensors are named `i/<name>` -> steps (train_step's result for each); returned tensors named `i/<name>`.

    One message for several steps: with fast steps (a GPU) the per-message cost is what a step loses to the
    transport, and the client still chooses every step's batch, order and hyper-parameters. Every step's arguments
    and tensors are checked before the first runs, so a malformed request changes nothing; an error while a step
    runs (a non-finite loss is a result, not an error) stops the request there, naming the step."""
    steps = arg(args, "steps", list)
    if not steps or not all(isinstance(s, dict) for s in steps):
        raise BadArgs("argument 'steps' must be a non-empty list of train_step arguments (objects)")
    per_step = split_by_step(tensors, len(steps), "train_steps")
    trainer_of(session)
    checked = []
    for i, (step_args, step_tensors) in enumerate(zip(steps, per_step, strict=True)):
        with _naming_step(i, len(steps)):
            checked.append(check_step(session, step_args, step_tensors))
    results: list[dict[str, Any]] = []
    out: Tensors = {}
    for i, step in enumerate(checked):
        with _naming_step(i, len(steps)):
            reply = run_step(session, step)
        results.append(reply.result)
        out.update({f"{i}{STEP_TENSOR_SEPARATOR}{k}": v for k, v in reply.tensors.items()})
    return Reply({"steps": results}, out)


@contextlib.contextmanager
def _naming_step(i: int, n: int) -> Iterator[None]:
    """Errors inside step i of an n-step request say which step they come from."""
    where = f"step {i + 1} of {n} in this train_steps request"
    try:
        yield
    except BridgeError as e:
        raise type(e)(f"{where}: {e}", code=e.code, fatal=e.fatal) from e
    except ValueError as e:
        raise BadArgs(f"{where}: {e}") from e
    except Exception as e:
        raise BridgeError(f"{where}: {type(e).__name__}: {e}") from e


@op("flush", every_rank=True)
@value_errors_are_bad_args
def flush(session, args: Args, tensors: Tensors):
    """Applies the gradients of a partial accumulation now (scaled to their mean); a no-op when none is pending."""
    return trainer_of(session).flush()


@op("eval_step")
@value_errors_are_bad_args
def eval_step(session, args: Args, tensors: Tensors):
    """`objective`'s loss and metrics in eval mode, with logits (siamese), distances (triplet) or similarities."""
    t = trainer_of(session)
    objective = arg(args, "objective", str)
    if "hparams" in args:
        raise BadArgs("eval_step takes no hparams (an evaluation changes no hyper-parameter): send them with train_step")
    metrics, out = t.eval_step(objective, step_batch(session, objective, tensors), step_opts(objective, args))
    return Reply(metrics, cpu(out))


@op("encode")
@value_errors_are_bad_args
def encode(session, args: Args, tensors: Tensors):
    """Sentence vectors `vectors [bs, d]` float32 of `x`/`lengths`, in input order; pool / pool_layers override
    the built pooling, normalize=true scales each vector to unit length. With `batches: n`, n batches in one
    message: tensors `i/x`, `i/lengths` in, `i/vectors` out (fewer messages, fewer wake-ups beside the model).

    With `job: J, total: N`, each batch also names its rows of the job's output (`rows` / `i/rows`, within 0..N-1)
    and the vectors stay here, put in place; `encode_result` then sends all N in input order (encode_jobs.py)."""
    t = trainer_of(session)
    normalize = arg(args, "normalize", bool, False)
    n = arg(args, "batches", int, 0)  # 0: absent, one batch named x / lengths
    if n < 0 or (n == 0 and args.get("batches") is not None):
        raise BadArgs(f"argument 'batches' must be >= 1 (or absent for one batch), got {n}")
    job = session.encode_jobs.get(arg(args, "job", int), arg(args, "total", int)) if "job" in args else None
    per = split_by_step(tensors, n, "encode") if n else [tensors]
    batches = [sentences(session, b, "x") for b in per]  # every batch checked before any is encoded
    rows: list[torch.Tensor] = []
    if job is not None:
        rows = [tensor_arg(b, "rows", dtypes=INTS, ndim=1).long() for b in per]
        job.check(rows, [x.size(0) for x, _ in batches])
    out: Tensors = {}
    count = dim = 0
    for i, (x, lengths) in enumerate(batches):
        vecs = t.encode(x, lengths, args.get("pool"), args.get("pool_layers"))
        if normalize:
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        if job is not None:
            job.put(rows[i], vecs)
        else:
            out[f"{i}{STEP_TENSOR_SEPARATOR}vectors" if n else "vectors"] = vecs
        count, dim = count + vecs.size(0), vecs.size(1)
    return Reply({"count": count, "dim": dim}, cpu(out))


@op("encode_result")
@value_errors_are_bad_args
def encode_result(session, args: Args, tensors: Tensors):
    """The vectors [total, d] of encode job `job`, every row in input order, and closes the job; with discard=true
    closes it and sends nothing (a call that failed half way)."""
    discard = arg(args, "discard", bool, False)
    vectors = session.encode_jobs.take(arg(args, "job", int), discard=discard)
    if vectors is None:
        return {"count": 0, "dim": 0}
    return Reply({"count": vectors.size(0), "dim": vectors.size(1)}, {"vectors": vectors})


@op("fit_pc", every_rank=True)
@value_errors_are_bad_args
def fit_pc(session, args: Args, tensors: Tensors):
    """Fits SIF's common component on sentences x/lengths (the first right singular vector of their vectors, encoded
    in eval mode with none removed) and stores it in the model: from then on every sentence vector loses its part
    along it. Models built with sif only.

    Replies count, dim and explained (the share of the vectors' squared norm along the component).
    """
    t = trainer_of(session)
    x, lengths = sentences(session, tensors, "x")
    return t.fit_pc(x, lengths)


@op("predict")
@value_errors_are_bad_args
def predict(session, args: Args, tensors: Tensors):
    """NLI predictions for premise/hypothesis: logits, probs [bs, 3], pred [bs]; u, v too with vectors=true."""
    t = trainer_of(session)
    p, h = sentences(session, tensors, "premise"), sentences(session, tensors, "hypothesis")
    if p[0].size(0) != h[0].size(0):
        raise BadArgs("premise and hypothesis must have the same batch size")
    out = t.predict(p, h, arg(args, "vectors", bool, False))
    return Reply({"count": p[0].size(0)}, cpu(out))


@op("generate")
@value_errors_are_bad_args
def generate(session, args: Args, tensors: Tensors):
    """Samples `n` texts from the LM: tokens [n, len] (prompt first, pad after xxeos) and lengths [n]."""
    t = trainer_of(session)
    prompt = None
    if "prompt" in tensors:
        prompt = tensor_arg(tensors, "prompt", dtypes=INTS, ndim=1)
        if prompt.numel() == 0 or int(prompt.min()) < 0 or int(prompt.max()) >= t.model.cfg.vocab_sz:
            raise BadArgs("tensor 'prompt' must be a non-empty list of ids in the vocabulary")
        prompt = prompt.to(session.device, torch.long)
    n, max_len, top_k = arg(args, "n", int, 1), arg(args, "max_len", int, 50), arg(args, "top_k", int, 0)
    temperature = arg(args, "temperature", float, 1.0)
    if n < 1 or max_len < 1 or top_k < 0 or temperature <= 0:
        raise BadArgs("n and max_len must be >= 1, top_k >= 0, temperature > 0")
    seed = args.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise BadArgs("argument 'seed' must be int")
    toks, lengths = t.generate(prompt, n, max_len, temperature, top_k, seed)
    return Reply({"count": n}, cpu({"tokens": toks, "lengths": lengths}))


@op("set_trainable", every_rank=True)
@value_errors_are_bad_args
def set_trainable(session, args: Args, tensors: Tensors):
    """Chooses the trained groups: `groups` [names], or `freeze_to` k (fastai: groups[k:] train), or `unfreeze`."""
    t = trainer_of(session)
    if "groups" in args:
        names = args["groups"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadArgs("argument 'groups' must be a list of group names")
        t.set_trainable(names)
    elif "freeze_to" in args:
        t.freeze_to(arg(args, "freeze_to", int))
    elif args.get("unfreeze"):
        t.set_trainable(t.group_names)
    else:
        raise BadArgs("give one of 'groups', 'freeze_to' or 'unfreeze'")
    s = t.summary()
    return {"trainable_groups": s["trainable_groups"], "trainable_params": s["trainable_params"], "groups": t.group_names}


@op("set_hparams", every_rank=True)
@value_errors_are_bad_args
def set_hparams(session, args: Args, tensors: Tensors):
    """Sets hyper-parameters now: lr (number, list per group, or {group: lr}; lr_div), mom, sqr_mom, wd, eps,
    clip, accum_steps; dropouts (drop_mult, *_p) too. Loss settings are step options (train_step)."""
    return apply_hparams(session, args)


def apply_hparams(session, args: Args) -> dict[str, Any]:
    """set_hparams' work (train_step's `hparams` too): every hparam, lrs and dropouts after the change."""
    t = trainer_of(session)
    mc = t.model.cfg
    drop_keys = {"drop_mult", "embed_p", "input_p", "hidden_p", "weight_p", "output_p"}
    drops = {k: arg(args, k, float) for k in drop_keys & set(args)}
    if any(not 0.0 <= v < (10.0 if k == "drop_mult" else 1.0) for k, v in drops.items()):
        raise BadArgs(f"dropouts must be within [0, 1) (drop_mult within [0, 10)), got {drops}")
    hp = t.set_hparams({k: v for k, v in args.items() if k not in drop_keys})
    if drops:
        for k, v in drops.items():
            setattr(mc, k, v)
        t.model.encoder.set_dropouts(mc)
        if t.model.lm_head is not None:
            t.model.lm_head.output_dp.p = mc.p("output_p")
    return {**hp, "dropouts": {k: getattr(mc, k) for k in sorted(drop_keys)}}


@op("save")
@value_errors_are_bad_args
def save(session, args: Args, tensors: Tensors):
    """Writes a checkpoint atomically to `path`; `meta` (a JSON object) is stored with it."""
    t = trainer_of(session)
    meta = args.get("meta") or {}
    if not isinstance(meta, dict):
        raise BadArgs("argument 'meta' must be an object")
    return save_checkpoint(t, path_arg(session, args, "path"), meta)


@op("load", every_rank=True)
@value_errors_are_bad_args
def load(session, args: Args, tensors: Tensors):
    """Loads `parts` (all | weights | encoder) from `path`. With no model yet, or with rebuild=true, builds one from
    the checkpoint's own config first (replacing any model: its head / optimizer settings need not match the
    checkpoint's). `vocab_fingerprint`: the vocabulary the caller feeds it (a run's); a model rebuilt from a checkpoint
    of another vocabulary is refused, its word ids meaning other words. Tensor `vocab_map` [vocab_sz] (with
    parts=encoder): the checkpoint's id of each of the model's words, -1 if new.
    """
    path = path_arg(session, args, "path")
    parts = arg(args, "parts", str, "all")
    expected = arg(args, "vocab_fingerprint", str, "")
    built = False
    if arg(args, "rebuild", bool, False) or getattr(session, "trainer", None) is None:
        ck = read_checkpoint(path)
        fp_ck = ck.get("vocab_fingerprint") or ""
        if expected and fp_ck and fp_ck != expected:
            raise CheckpointMismatch(
                f"{path}: trained with another vocabulary (fingerprint {fp_ck!r}) than the one given ({expected!r}): "
                "a checkpoint of another run, whose word ids mean other words"
            )
        c = ck["config"]
        mc, hc, tc = AWDLSTMConfig(**c["model"]), HeadConfig(**c["head"]), TrainConfig(**c["train"])
        new_trainer(session, mc, hc, tc, ck.get("vocab_fingerprint", ""))
        built = True
    t = trainer_of(session)
    vocab_map = tensor_arg(tensors, "vocab_map", dtypes=INTS, ndim=1) if "vocab_map" in tensors else None
    res = load_checkpoint(t, path, parts, arg(args, "allow_partial", bool, False), vocab_map)
    if parts == "all":  # every rank restored rank 0's generator: their masks would match again
        reseed_rank(t.tc.seed + distributed.world_size() * res["step"])
    return {**res, "built": built, **({"config": build_result(t)["config"]} if built else {})}


@op("reset_state", every_rank=True)
def reset_state(session, args: Args, tensors: Tensors):
    """Forgets the LM hidden state of `stream` (all streams when absent)."""
    t = trainer_of(session)
    stream = args.get("stream")
    if stream is None:
        t.lm_state.clear()
    else:
        t.lm_state.pop(str(stream), None)
    return {}


@op("model_info")
def model_info(session, args: Args, tensors: Tensors):
    """The model's module tree, parameter counts (total, trainable, per group), device, config and step."""
    return trainer_of(session).summary()

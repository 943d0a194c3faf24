"""The training session the backend holds: model, optimizer with per-layer groups, objectives, accumulation.

TypeScript owns the schedule: it sets learning rates / momentum per group before steps (`set_hparams`) and
the trainable groups (`set_trainable`, for gradual unfreezing). Each objective (lm, siamese, triplet,
contrastive, simcse, cosent, cosine_mse) is a module of the `objectives` package; the Trainer dispatches to it by
name.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import distributed
from .errors import BadArgs
from .models.heads import BridgeModel
from .models.pooling import principal_component
from .objectives import get_objective
from .objectives.base import Sentences

OPTIMIZERS = ("adam", "adamw", "sgd")
FIT_PC_CHUNK = 256  # sentences per encoder call when fitting SIF's component
AUTOCAST_MODES = ("auto", "bf16", "off")


@dataclass
class TrainConfig:
    opt: str = "adamw"  # adam | adamw | sgd
    lr: float = 1e-3
    wd: float = 0.01
    mom: float = 0.9  # Adam's beta1 / SGD's momentum (ULMFiT cycles it 0.95 -> 0.85 -> 0.95)
    sqr_mom: float = 0.99  # Adam's beta2 (fastai's 0.99 rather than torch's 0.999)
    eps: float = 1e-8
    clip: float = 0.0  # max global grad norm; 0 = no clipping (fastai's LM learner uses 0.1)
    accum_steps: int = 1  # micro-batches per optimizer step
    autocast: str = "auto"  # auto|bf16: bf16 on a CUDA GPU that has it (the LSTM recurrence stays fp32) | off
    seed: int = 42

    def check(self) -> None:
        """Raises ValueError naming the first out-of-range field."""
        for name, value, allowed in (
            ("opt", self.opt, OPTIMIZERS),
            ("autocast", self.autocast, AUTOCAST_MODES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.accum_steps < 1:
            raise ValueError(f"accum_steps must be >= 1, got {self.accum_steps}")
        if self.lr < 0 or self.clip < 0:
            raise ValueError("lr and clip must be >= 0")


def seed_everything(seed: int) -> None:
    """Seeds Python's and torch's generators (CUDA too); the CPU LSTM kernels are deterministic."""
    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def join(batches: list[Sentences], pad_id: int) -> tuple[Tensor, Tensor, list[int]]:
    """Stacks sentence batches into one (padded to the longest real length) for a single encoder call."""
    sl = max(int(lengths.max()) for _, lengths in batches)
    xs = []
    for x, _ in batches:
        x = x[:, :sl]
        if x.size(1) < sl:
            x = F.pad(x, (0, sl - x.size(1)), value=pad_id)  # [bs, sl]
        xs.append(x)
    return torch.cat(xs), torch.cat([lengths for _, lengths in batches]), [x.size(0) for x in xs]


def fused_adam_supported(params: list[Tensor]) -> bool:
    """torch's fused Adam kernel: one pass over each tensor, no temporaries. The default per-tensor loop on CPU
    allocates and walks the word embeddings several times a step (measured: docs/findings.md, "The optimizer step").
    Same update, rounding differs in the last bits; used wherever torch has the kernel."""
    kernel_dtypes = (torch.float32, torch.float16, torch.bfloat16)
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype in kernel_dtypes for p in params)


class Trainer:
    """Model + optimizer + counters; one per backend session."""

    def __init__(self, model: BridgeModel, tc: TrainConfig, device: torch.device, vocab_fingerprint: str = "") -> None:
        tc.check()
        self.model, self.tc, self.device = model.to(device), tc, device
        self.vocab_fingerprint = vocab_fingerprint
        self.groups = model.param_groups()
        self.group_names = [name for name, _ in self.groups]
        self.opt = self._make_optimizer()
        self.step = 0  # optimizer steps taken
        self.micro = 0  # micro-batches accumulated since the last optimizer step
        self.lm_state: dict[str, list[tuple[Tensor, ...]]] = {}  # per stream, per layer: (h, c), + memory (sha_rnn)

    # ---- optimizer, hyper-parameters, freezing ----

    def _make_optimizer(self) -> torch.optim.Optimizer:
        tc = self.tc
        groups = [{"params": ps, "name": name, "lr": tc.lr} for name, ps in self.groups]
        if tc.opt == "sgd":
            return torch.optim.SGD(groups, lr=tc.lr, momentum=tc.mom, weight_decay=tc.wd)
        cls = torch.optim.AdamW if tc.opt == "adamw" else torch.optim.Adam
        params = [p for _, ps in self.groups for p in ps]
        fused = fused_adam_supported(params)
        return cls(groups, lr=tc.lr, betas=(tc.mom, tc.sqr_mom), eps=tc.eps, weight_decay=tc.wd, fused=fused)

    def group_lrs(self, lr: float | list[float] | dict[str, float], lr_div: float | None = None) -> list[float]:
        """Per-group learning rates from a number (divided by lr_div per group going down, as ULMFiT's
        lr / 2.6**k), a list bottom-to-top, or a {group: lr} dict (other groups keep theirs)."""
        n = len(self.groups)
        current = [g["lr"] for g in self.opt.param_groups]
        if isinstance(lr, dict):
            unknown = set(lr) - set(self.group_names)
            if unknown:
                raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; groups: {self.group_names}")
            return [float(lr.get(name, cur)) for name, cur in zip(self.group_names, current, strict=True)]
        if isinstance(lr, list):
            if len(lr) != n:
                raise ValueError(f"lr list must have one value per group ({n}: {self.group_names}), got {len(lr)}")
            return [float(v) for v in lr]
        div = lr_div or 1.0
        return [float(lr) / div ** (n - 1 - i) for i in range(n)]

    def set_hparams(self, hp: dict[str, Any]) -> dict[str, Any]:
        """Changes hyper-parameters now: lr (with lr_div), mom, sqr_mom, wd, eps and any TrainConfig field."""
        tc = replace(self.tc)  # all or nothing: a bad value leaves the session as it was
        for key, value in hp.items():
            if key in ("lr", "lr_div"):
                continue
            if key in ("opt", "seed", "autocast"):
                raise ValueError(f"{key!r} is fixed at build time")
            if not hasattr(tc, key):
                raise ValueError(f"unknown hyper-parameter {key!r}")
            kind = type(getattr(tc, key))
            ok = isinstance(value, str) if kind is str else isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or (kind is int and value != int(value)):
                raise ValueError(f"hyper-parameter {key!r} must be {kind.__name__}, got {value!r}")
            setattr(tc, key, kind(value))
        tc.check()
        lrs = self.group_lrs(hp["lr"], hp.get("lr_div")) if "lr" in hp else None
        self.tc = tc
        if lrs is not None:
            for g, lr in zip(self.opt.param_groups, lrs, strict=True):
                g["lr"] = lr
        for g in self.opt.param_groups:
            if tc.opt == "sgd":
                g["momentum"] = tc.mom
            else:
                g["betas"] = (tc.mom, tc.sqr_mom)
                g["eps"] = tc.eps
            g["weight_decay"] = tc.wd
        return self.hparams()

    def hparams(self) -> dict[str, Any]:
        return {**asdict(self.tc), "lrs": {g["name"]: g["lr"] for g in self.opt.param_groups}}

    def set_trainable(self, names: list[str]) -> None:
        """Trains exactly the named groups; the others are frozen (no gradient, no update, no decay)."""
        unknown = set(names) - set(self.group_names)
        if unknown:
            raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; groups: {self.group_names}")
        for name, ps in self.groups:
            for p in ps:
                p.requires_grad_(name in names)
        self.opt.zero_grad(set_to_none=True)
        self.micro = 0

    def freeze_to(self, n: int) -> list[str]:
        """fastai's freeze_to: groups[n:] train, groups[:n] are frozen (n < 0 counts from the top)."""
        names = self.group_names[n:]
        self.set_trainable(names)
        return names

    def trainable(self) -> list[str]:
        return [name for name, ps in self.groups if any(p.requires_grad for p in ps)]

    # ---- steps ----

    def autocast(self) -> contextlib.AbstractContextManager:
        use = self.device.type == "cuda" and self.tc.autocast in ("auto", "bf16") and torch.cuda.is_bf16_supported()
        return torch.autocast("cuda", dtype=torch.bfloat16) if use else contextlib.nullcontext()

    def train_step(self, objective: str, batch: dict[str, Tensor], opts: dict[str, Any]) -> tuple[dict, dict]:
        """One forward/backward; an optimizer step every accum_steps calls. Returns (metrics, tensors)."""
        self.model.train()
        obj = get_objective(objective)
        empty = False
        if obj.can_be_empty(batch):  # the same answer on every rank: they get shards of one batch
            empty = obj.is_empty(batch)
            if distributed.active():  # all ranks skip if any has nothing (no hang in a collective)
                empty = not distributed.all_true(not empty)
        if empty:  # no update, no accumulation; loss null keeps the TS loop's loss averages clean
            return {"loss": None, "count": 0, "correct": 0, "finite": True, "stepped": False, "step": self.step}, {}
        with self.autocast():
            loss, metrics, out = obj.forward(self, batch, opts, train=True)
        res = _floats(metrics)
        finite = bool(torch.isfinite(loss))
        if distributed.active():  # all ranks step or skip together
            finite = distributed.all_true(finite)
        if not finite:  # skip the (accumulated) step; LM states may hold the NaN: drop them
            self.opt.zero_grad(set_to_none=True)
            self.micro = 0
            self.lm_state.clear()
            return {**res, "finite": False, "stepped": False, "step": self.step}, out
        if not loss.requires_grad:  # e.g. cosent with only the (unused) head unfrozen: backward would fail obscurely
            raise BadArgs(
                f"{objective}: no trainable weight reaches its loss (trainable groups: {', '.join(self.trainable()) or 'none'}); "
                "unfreeze more groups (set_trainable) before training it"
            )
        (loss / self.tc.accum_steps).backward()
        self.micro += 1
        res.update(finite=True, stepped=False, step=self.step)
        if self.micro >= self.tc.accum_steps:
            self._apply_accumulated(res)
        return res, out

    def flush(self) -> dict[str, Any]:
        """Applies a partial accumulation (micro-batches short of accum_steps, e.g. at a stage's end): the
        gradients, each micro-batch's loss divided by accum_steps, are scaled by accum_steps / micro so the
        step uses the mean over the micro-batches taken, as a full accumulation does. No-op when none is
        pending. Returns flushed (the micro-batches applied), finite, stepped, step (and grad_norm)."""
        res: dict[str, Any] = {"flushed": self.micro, "finite": True, "stepped": False, "step": self.step}
        if self.micro == 0:
            return res
        scale = self.tc.accum_steps / self.micro
        if scale != 1.0:
            for _, ps in self.groups:
                for p in ps:
                    if p.grad is not None:
                        p.grad.mul_(scale)
        self._apply_accumulated(res)
        return res

    def _apply_accumulated(self, res: dict[str, Any]) -> None:
        """Steps the optimizer with the accumulated gradients (averaged over ranks, clipped) and clears them."""
        if distributed.active():
            distributed.average_gradients([p for _, ps in self.groups for p in ps if p.requires_grad])
        params = [p for _, ps in self.groups for p in ps if p.grad is not None]
        max_norm = self.tc.clip if self.tc.clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
        if math.isfinite(norm):
            self.opt.step()
            self.step += 1
            res["stepped"] = True
        else:  # a finite loss with inf / NaN gradients: skipped, and reported as a non-finite step
            res["finite"] = False
        res["grad_norm"] = norm if math.isfinite(norm) else None
        self.opt.zero_grad(set_to_none=True)
        self.micro = 0
        res["step"] = self.step

    @torch.no_grad()
    def eval_step(self, objective: str, batch: dict[str, Tensor], opts: dict[str, Any]) -> tuple[dict, dict]:
        """The objective's loss and metrics in eval mode (no dropout, no AR/TAR, no update)."""
        self.model.eval()
        obj = get_objective(objective)
        if obj.can_be_empty(batch) and obj.is_empty(batch):  # rank 0 alone evaluates: no collective here
            return {"loss": 0.0, "count": 0, "correct": 0}, obj.empty_outputs()  # loss 0: weighed by count 0 in TS
        with self.autocast():
            _, metrics, out = obj.forward(self, batch, {**opts, "return_logits": True}, train=False)
        return _floats(metrics), out

    def encode_batches(self, sents: list[Sentences]) -> list[Tensor]:
        """One encoder call for several sentence batches; the vectors split back per batch."""
        x, lengths, sizes = join(sents, self.model.cfg.pad_id)
        return list(self.model.encode(x, lengths).split(sizes))

    def head_batches(self, sents: list[Sentences]) -> list[Tensor]:
        """encode_batches for the NLI classifier: each sentence's head_inputs (its vector, + head_pool's pooling)."""
        x, lengths, sizes = join(sents, self.model.cfg.pad_id)
        return list(self.model.head_inputs(x, lengths).split(sizes))

    # ---- inference ----

    @torch.no_grad()
    def encode(self, x: Tensor, lengths: Tensor, pool: str | None = None, layers: str | None = None, sif: bool = True) -> Tensor:
        """Sentence vectors [bs, d] float32 in input order, eval mode, full precision."""
        self.model.eval()
        x = x[:, : int(lengths.max())]  # [bs, longest real length]: columns of padding only are skipped
        return self.model.encode(x, lengths, pool, layers, sif).float()

    @torch.no_grad()
    def fit_pc(self, x: Tensor, lengths: Tensor, chunk: int = FIT_PC_CHUNK) -> dict[str, Any]:
        """Fits SIF's common component: the first right singular vector of the sentence vectors of x [n, sl]
        (eval mode, in chunks of `chunk` rows, with no component removed) becomes the model's `sif_pc`.
        Returns count (n), dim and explained (the share of the vectors' squared norm along the component)."""
        pc_buffer = self.model.sif_pc
        if pc_buffer is None:
            raise ValueError("fit_pc: this model was built without sif, so it has no common component to fit (build it with sif)")
        vecs = torch.cat([self.encode(x[i : i + chunk], lengths[i : i + chunk], sif=False) for i in range(0, x.size(0), chunk)])
        pc, explained = principal_component(vecs)  # vecs [n, d]
        pc_buffer.copy_(pc)
        return {"count": vecs.size(0), "dim": vecs.size(1), "explained": explained}

    @torch.no_grad()
    def predict(self, premise: Sentences, hypothesis: Sentences, vectors: bool = False) -> dict[str, Tensor]:
        self.model.eval()
        u, v = self.head_batches([premise, hypothesis])  # [bs, head_dim] each
        logits = self.model.classify(u, v).float()  # [bs, n_classes]
        out = {"logits": logits, "probs": logits.softmax(-1), "pred": logits.argmax(-1)}
        if vectors:  # the sentence vectors (with head_mix the classifier's input mixes the layers its own way)
            vu, vv = self.encode_batches([premise, hypothesis])  # [bs, vec_dim] each
            out.update(u=vu.float(), v=vv.float())
        return out

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor | None,
        n: int,
        max_len: int,
        temperature: float,
        top_k: int,
        seed: int | None,
    ) -> tuple[Tensor, Tensor]:
        """Samples n continuations (the prompt, or xxbos); stops at xxeos or max_len new tokens.

        Returns tokens [n, prompt_len + generated] right-padded with pad_id (xxeos included) and lengths [n].
        pad, unk and bos are never sampled.
        """
        self.model.eval()
        cfg = self.model.cfg
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        if prompt is None:
            prompt = torch.full((1,), cfg.bos_id, dtype=torch.long, device=self.device)
        x = prompt.view(1, -1).expand(n, -1).contiguous()  # [n, p]
        logits, _, _, h = self.model.lm(x, None)
        last = logits[:, -1].float()  # [n, V]
        buckets = range(cfg.vocab_sz - cfg.oov_buckets, cfg.vocab_sz)  # hashed unseen words: no word to write
        banned = torch.tensor([cfg.pad_id, cfg.unk_id, cfg.bos_id, *buckets], device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        lengths = torch.full((n,), x.size(1), dtype=torch.long, device=self.device)
        toks = []
        for _ in range(max_len):
            last[:, banned] = -math.inf
            last = last / max(temperature, 1e-6)
            if 0 < top_k < last.size(-1):
                kth = last.topk(top_k, dim=-1).values[:, -1:]  # [n, 1]
                last = last.masked_fill(last < kth, -math.inf)
            nxt = torch.multinomial(last.softmax(-1), 1, generator=gen).squeeze(1)  # [n]
            nxt = torch.where(done, torch.full_like(nxt, cfg.pad_id), nxt)
            toks.append(nxt)
            lengths += (~done).long()
            done |= nxt == cfg.eos_id
            if bool(done.all()):
                break
            logits, _, _, h = self.model.lm(nxt.unsqueeze(1), h)  # [n, 1, V]
            last = logits[:, -1].float()
        return torch.cat([x, torch.stack(toks, 1)], 1), lengths

    # ---- state ----

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": rng_state(),
            "step": self.step,
            "trainable": self.trainable(),
        }

    def summary(self) -> dict[str, Any]:
        """Module tree, parameter counts (total, trainable, per group), device, config, step."""
        total = trainable = 0
        for p in iter_params(self.model):
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        return {
            "tree": str(self.model),
            "params": total,
            "trainable_params": trainable,
            "groups": {name: sum(p.numel() for p in ps) for name, ps in self.groups},
            "trainable_groups": self.trainable(),
            "device": str(self.device),
            "config": {"model": asdict(self.model.cfg), "head": asdict(self.model.hc), "train": asdict(self.tc)},
            "vocab_fingerprint": self.vocab_fingerprint,
            "step": self.step,
            "vec_dim": self.model.vec_dim(),
        }


def _floats(metrics: dict[str, Any]) -> dict[str, Any]:
    """Tensors to Python numbers for the JSON reply, in one device sync; non-finite floats become None (JSON
    has no NaN). Integer-valued tensors (counts) stay ints."""
    keys = [k for k, v in metrics.items() if isinstance(v, Tensor)]
    values = torch.stack([metrics[k].detach().double().reshape(()) for k in keys]).tolist() if keys else []
    out: dict[str, Any] = dict(metrics)
    for k, v in zip(keys, values, strict=True):
        is_int = not metrics[k].is_floating_point()
        out[k] = int(v) if is_int else v
    for k, v in out.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
    return out


def iter_params(model: nn.Module) -> Iterator[nn.Parameter]:
    """Each parameter once (tied weights counted once)."""
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            yield p

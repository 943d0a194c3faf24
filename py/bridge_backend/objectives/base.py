"""What an objective declares: its tensors, step options, validation metrics, and how it computes a loss.

One module per objective in this package defines `OBJECTIVE`, an instance of an `Objective` subclass; the
registry (objectives/__init__.py) finds it, the Trainer dispatches to it, ops/model.py validates requests
against its tensor sets and step options, and the `describe` op tells the TypeScript side about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from torch import Tensor

if TYPE_CHECKING:
    from ..models.heads import BridgeModel

Batch = dict[str, Tensor]
Sentences = tuple[Tensor, Tensor]  # token ids [bs, sl] int64 right-padded, lengths [bs] int64
Metrics = dict[str, Any]  # tensors or numbers; training._floats turns them into JSON numbers
Outputs = dict[str, Tensor]

# Tensor kinds (see TensorSpec.kind):
SENTENCES = "sentences"  # ids [bs, sl] right-padded, with `<name>_lengths` [bs] (`lengths` for `x`)
TOKENS = "tokens"  # ids [bs, sl]
TARGETS = "targets"  # ids or -100 (ignored) [bs, sl], the shape of the set's first tensor
LABELS = "labels"  # classes [bs], 0..n_classes-1 (0 entailment, 1 neutral, 2 contradiction)
SCORES = "scores"  # float32 [bs], one gold similarity per row, scaled to 0..1 by the TS side
GROUPS = "groups"  # ints >= 0 [bs]: rows with the same value mean the same thing (an image's captions)
KINDS = (SENTENCES, TOKENS, TARGETS, LABELS, SCORES, GROUPS)


def lengths_name(name: str) -> str:
    """The lengths tensor that goes with sentence tensor `name`."""
    return "lengths" if name == "x" else f"{name}_lengths"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    kind: str  # one of KINDS
    required: bool = True
    same_rows: bool = True  # rows must equal the set's first tensor's (in-batch hard negatives may differ)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "required": self.required, "same_rows": self.same_rows}
        if self.kind == SENTENCES:
            d["lengths"] = lengths_name(self.name)
        return d


@dataclass(frozen=True)
class TensorSet:
    """One accepted form of a batch; the set whose first tensor is present is the one validated."""

    name: str
    tensors: tuple[TensorSpec, ...]

    @property
    def selector(self) -> str:
        return self.tensors[0].name

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "tensors": [t.describe() for t in self.tensors]}


@dataclass(frozen=True)
class StepOption:
    """An argument of train_step / eval_step that this objective reads (beyond `objective`, `return_logits`).

    An option with a `default` is a loss setting (a margin, a temperature): a config's stage or task may give it
    (ts/config/schema.ts OBJECTIVE_SPECS declares the same options; test/backend/describe.test.ts holds the two
    alike) and a step without it uses the default. One without is a per-call control (lm's reset / stream).
    """

    name: str
    kind: type  # bool | str | float
    doc: str
    default: Any = None
    choices: tuple[str, ...] = ()
    positive: bool = False  # a float that must be > 0
    non_negative: bool = False  # a float that must be >= 0

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind.__name__, "doc": self.doc}
        if self.default is not None:
            d["default"] = self.default
        if self.choices:
            d["choices"] = list(self.choices)
        if self.positive:
            d["positive"] = True
        if self.non_negative:
            d["non_negative"] = True
        return d


class Encoder(Protocol):
    """What an objective may use of the model it trains (the Trainer is one): the model, the LM's carried hidden
    states, and batched encoding. Objectives see nothing else of the training machinery; their settings come with
    each step (Objective.option)."""

    @property
    def model(self) -> BridgeModel: ...

    @property
    def lm_state(self) -> dict[str, list[tuple[Tensor, ...]]]: ...

    def encode_batches(self, sents: list[Sentences]) -> list[Tensor]:
        """Sentence vectors of several batches, one encoder call."""
        ...

    def head_batches(self, sents: list[Sentences]) -> list[Tensor]:
        """The NLI classifier's inputs of several batches, one encoder call."""
        ...


VAL_METRICS = ("val_loss", "val_accuracy")  # what the TS evaluation derives from an objective's loss / correct
SIMILARITY_METRICS = ("val_loss", "val_spearman")  # the TS evaluation's Spearman over the validation set's `sim`


class Objective:
    """Base of every objective. Subclasses set the class attributes and implement `forward`."""

    name: ClassVar[str]
    doc: ClassVar[str]
    tensor_sets: ClassVar[tuple[TensorSet, ...]]  # alternatives; a request matches the first whose selector it has
    step_options: ClassVar[tuple[StepOption, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = VAL_METRICS  # validation metrics the stage yields
    uses_head: ClassVar[bool] = False  # trains parameters of the "head" group (so unfreezing starts there)
    shardable: ClassVar[bool] = True  # N data-parallel shards of B/N rows step like one batch of B rows

    def forward(self, trainer: Encoder, batch: Batch, opts: dict[str, Any], train: bool) -> tuple[Tensor, Metrics, Outputs]:
        """(loss to back-propagate, metrics with at least loss / count / correct, output tensors)."""
        raise NotImplementedError

    def option(self, opts: dict[str, Any], name: str) -> Any:
        """The step's value of the declared option `name`, else its default."""
        value = opts.get(name)
        if value is not None:
            return value
        for o in self.step_options:
            if o.name == name:
                return o.default
        raise KeyError(f"objective {self.name!r} declares no step option {name!r}")

    def can_be_empty(self, batch: Batch) -> bool:
        """Whether a batch of this form may hold nothing to train on (a small final batch, a rank's shard).
        Depends only on which tensors are present, so every rank answers alike (it decides on a collective)."""
        return False

    def is_empty(self, batch: Batch) -> bool:
        """Whether this batch has nothing to train on; asked only when can_be_empty."""
        return False

    def empty_outputs(self) -> Outputs:
        """eval_step's output tensors for an empty batch (the shapes a real one has, with no rows)."""
        return {}

    def tensor_set(self, present: set[str] | dict[str, Any]) -> TensorSet:
        """The tensor set a request with tensors `present` is validated against."""
        for s in self.tensor_sets:
            if s.selector in present:
                return s
        if len(self.tensor_sets) == 1:
            return self.tensor_sets[0]  # validation names the missing tensor
        forms = "; or ".join(f"{s.name} ({', '.join(t.name for t in s.tensors)})" for s in self.tensor_sets)
        raise ValueError(f"objective {self.name!r} needs one of: {forms}; got tensors {sorted(present)}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "doc": self.doc,
            "uses_head": self.uses_head,
            "shardable": self.shardable,
            "metrics": list(self.metrics),
            "tensors": [s.describe() for s in self.tensor_sets],
            "step_options": [o.describe() for o in self.step_options],
        }

"""The objective registry and the `describe` catalogue: one module per objective, dispatched and validated by name."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import call
from test_training import lm_batch, make, pair_batch, sents

from bridge_backend.errors import BadArgs
from bridge_backend.objectives import OBJECTIVES, Objective, get_objective
from bridge_backend.objectives.base import SENTENCES, StepOption, TensorSet, TensorSpec
from bridge_backend.session import Session


def test_every_objective_module_is_registered_with_its_declarations() -> None:
    assert set(OBJECTIVES) == {"lm", "siamese", "triplet", "contrastive", "simcse", "cosent", "cosine_mse", "supcon"}
    assert {n for n, o in OBJECTIVES.items() if o.uses_head} == {"lm", "siamese"}
    # in-batch negatives, and CoSENT's ranking of every pair against the batch's others
    assert {n for n, o in OBJECTIVES.items() if not o.shardable} == {"contrastive", "simcse", "cosent", "supcon"}
    assert OBJECTIVES["lm"].metrics == ("val_loss", "val_accuracy", "val_perplexity")
    similarity = {"cosent", "cosine_mse"}
    assert all(o.metrics == ("val_loss", "val_spearman") for n, o in OBJECTIVES.items() if n in similarity)
    assert all(o.metrics[:2] == ("val_loss", "val_accuracy") for n, o in OBJECTIVES.items() if n not in similarity)
    assert [ts.name for ts in OBJECTIVES["contrastive"].tensor_sets] == ["sentences", "pairs", "anchors"]
    unknown = "unknown objective 'mlm' \\(one of lm, siamese, triplet, contrastive, simcse, cosent, cosine_mse, supcon\\)"
    with pytest.raises(ValueError, match=unknown):
        get_objective("mlm")


class _MeanNorm(Objective):
    """A new objective as a module would declare it: pulls the mean sentence vector's norm towards `target`."""

    name = "mean_norm"
    doc = "test objective"
    tensor_sets = (TensorSet("sentences", (TensorSpec("x", SENTENCES),)),)
    step_options = (StepOption("target", float, "the norm aimed at", default=1.0, positive=True),)

    def forward(self, trainer: Any, batch: dict[str, torch.Tensor], opts: dict[str, Any], train: bool):
        (v,) = trainer.encode_batches([(batch["x"], batch["lengths"])])
        loss = (v.norm(dim=-1).mean() - float(self.option(opts, "target"))) ** 2
        return loss, {"loss": loss, "count": v.size(0), "correct": 0}, {}


def test_a_new_objective_is_one_registration(s: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OBJECTIVES, "mean_norm", _MeanNorm())
    x, lengths = sents([3, 5, 2], 4)
    r = call(s, "train_step", {"objective": "mean_norm", "target": 2.0}, {"x": x, "lengths": lengths}).result
    assert r["stepped"] and r["count"] == 3 and r["loss"] > 0
    with pytest.raises(BadArgs, match="argument 'target' must be > 0"):
        call(s, "train_step", {"objective": "mean_norm", "target": -1.0}, {"x": x, "lengths": lengths})
    with pytest.raises(BadArgs, match="missing tensor 'lengths'"):
        call(s, "eval_step", {"objective": "mean_norm"}, {"x": x})
    described = {o["name"]: o for o in call(s, "describe").result["objectives"]}
    target = {"name": "target", "type": "float", "doc": "the norm aimed at", "default": 1.0, "positive": True}
    assert described["mean_norm"]["step_options"] == [target]


def test_step_options_are_the_objectives_own(s: Session) -> None:
    b = pair_batch()
    not_siamese = r"unknown argument\(s\) \['margin'\] for objective 'siamese'; it takes: objective, return_logits"
    with pytest.raises(BadArgs, match=not_siamese):
        call(s, "train_step", {"objective": "siamese", "margin": 1.0}, b)
    with pytest.raises(BadArgs, match="argument 'distance' must be one of cosine, euclidean, got 'manhattan'"):
        call(s, "train_step", {"objective": "triplet", "distance": "manhattan"}, b)
    with pytest.raises(BadArgs, match="argument 'temperature' must be > 0"):
        call(s, "train_step", {"objective": "contrastive", "temperature": 0}, b)
    with pytest.raises(BadArgs, match="argument 'reset' must be bool"):
        call(s, "eval_step", {"objective": "lm", "reset": "yes"}, lm_batch())


def test_tensor_sets_are_alternatives_and_checked_together(s: Session) -> None:
    with pytest.raises(BadArgs, match=r"objective 'triplet' needs one of: pairs \(premise, hypothesis, labels\); or triplets"):
        call(s, "train_step", {"objective": "triplet"}, {})
    a, al = sents([3, 4, 2], 1)
    p, pl = sents([2, 5, 3], 2)
    n, nl = sents([4, 4], 3)  # one negative short
    trip = {"anchor": a, "anchor_lengths": al, "positive": p, "positive_lengths": pl, "negative": n, "negative_lengths": nl}
    rows = r"anchor, positive, negative must have the same batch size for triplet \('anchor' has 3 rows, 'negative' 2\)"
    with pytest.raises(BadArgs, match=rows):
        call(s, "train_step", {"objective": "triplet"}, trip)
    # contrastive's explicit negatives are extra in-batch candidates: any number of them
    assert call(s, "train_step", {"objective": "contrastive"}, trip).result["count"] == 3


def test_describe_lists_ops_objectives_enums_and_defaults(s: Session) -> None:
    d = call(s, "describe").result
    ops = {o["name"]: o for o in d["ops"]}
    assert {"build", "train_step", "load", "describe", "init_distributed"} <= set(ops)
    assert all(o["doc"] and "\n" not in o["doc"] for o in ops.values())
    every_rank = {name for name, o in ops.items() if o["every_rank"]}
    assert {"build", "load", "set_hparams", "set_trainable", "reset_state", "flush", "init_distributed"} <= every_rank
    assert not {"train_step", "eval_step", "save", "encode", "predict"} & every_rank
    lm = next(o for o in d["objectives"] if o["name"] == "lm")
    assert lm["uses_head"] and lm["shardable"] and lm["metrics"][-1] == "val_perplexity"
    assert [t["name"] for t in lm["tensors"][0]["tensors"]] == ["x", "y"]
    assert d["enums"]["pool"] == ["last", "mean", "max", "concat"] and d["enums"]["opt"] == ["adam", "adamw", "sgd"]
    assert "tiny" in d["enums"]["preset"] and d["presets"]["awd_lstm"]["tiny"]["n_layers"] == 2
    assert d["enums"]["arch"] == ["awd_lstm", "sha_rnn"] and d["presets"]["sha_rnn"]["tiny"]["n_hid"] == 64
    assert d["defaults"]["head"]["pool"] == "concat" and d["defaults"]["train"]["opt"] == "adamw"


def test_an_absent_step_option_is_its_declared_default_and_a_given_one_changes_the_loss() -> None:
    t = make(seed=3)
    b = pair_batch()
    default, _ = t.eval_step("contrastive", b, {})
    same, _ = t.eval_step("contrastive", b, {"temperature": 0.05})
    warmer, _ = t.eval_step("contrastive", b, {"temperature": 0.5})
    assert default["loss"] == same["loss"] != warmer["loss"]
    # AR / TAR are the lm objective's options now: the regulariser follows them
    ar_tar, _ = make(seed=3).train_step("lm", lm_batch(), {"reset": True})
    none, _ = make(seed=3).train_step("lm", lm_batch(), {"reset": True, "alpha": 0.0, "beta": 0.0})
    assert ar_tar["reg"] > 0 and none["reg"] == 0
    with pytest.raises(KeyError, match="declares no step option 'margin'"):
        get_objective("contrastive").option({}, "margin")

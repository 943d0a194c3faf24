"""The model ops as the server dispatches them: args, tensors, replies, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, call
from test_training import lm_batch, pair_batch, sents

from bridge_backend.errors import BadArgs, BridgeError
from bridge_backend.session import Session


def test_build_reports_groups_and_sizes() -> None:
    s = Session(lambda *_: None, "cpu")
    r = call(s, "build", {**TINY, "bidir": True, "pool": "max", "lr": 1}).result
    assert r["groups"] == {"emb": 640, "rnn0": r["groups"]["rnn0"], "rnn1": r["groups"]["rnn1"], "head": r["groups"]["head"]}
    assert r["config"]["model"]["bidir"] is True and r["config"]["train"]["lr"] == 1.0
    assert r["vec_dim"] == 16 and r["device"] == "cpu"
    assert s.model_summary()["tree"].startswith("BridgeModel(")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"preset": "tiny"}, "vocab_sz"),
        ({**TINY, "n_hidden": 3}, "unknown build argument 'n_hidden'"),
        ({**TINY, "preset": "huge"}, "unknown preset"),
        ({**TINY, "emb_sz": "16"}, "'emb_sz' must be int"),
        ({**TINY, "pool": "median"}, "pool must be one of"),
        ({**TINY, "pad_id": 40}, "pad_id 40 is outside"),
        ({**TINY, "opt": "lion"}, "opt must be one of"),
    ],
)
def test_build_rejects_bad_args(args: dict, message: str) -> None:
    with pytest.raises(BadArgs, match=message):
        call(Session(lambda *_: None, "cpu"), "build", args)


def test_ops_need_a_model() -> None:
    with pytest.raises(BridgeError, match="call build"):
        call(Session(lambda *_: None, "cpu"), "train_step", {"objective": "lm"}, lm_batch())


def test_train_and_eval_every_objective_with_int32_tensors(s: Session) -> None:
    i32 = lambda b: {k: v.to(torch.int32) for k, v in b.items()}  # noqa: E731
    x, lengths = sents([3, 5, 2], 4)
    batches = {
        "lm": lm_batch(),
        "siamese": pair_batch(),
        "triplet": pair_batch(),
        "contrastive": pair_batch(),
        "simcse": {"x": x, "lengths": lengths},
    }
    for objective, b in batches.items():
        r = call(s, "train_step", {"objective": objective}, i32(b)).result
        assert r["loss"] > 0 and r["stepped"] and r["count"] > 0, objective
        e = call(s, "eval_step", {"objective": objective}, b)
        assert e.result["loss"] > 0
        if objective == "siamese":
            assert e.tensors["logits"].shape == (8, 3)
    assert call(s, "model_info").result["step"] == 5
    # explicit triplets, and contrastive with anchor/positive only
    a, al = sents([3, 4], 1)
    p, pl = sents([2, 5], 2)
    n, nl = sents([4, 4], 3)
    trip = {"anchor": a, "anchor_lengths": al, "positive": p, "positive_lengths": pl, "negative": n, "negative_lengths": nl}
    assert call(s, "train_step", {"objective": "triplet", "margin": 1.0, "distance": "euclidean"}, trip).result["count"] == 2
    ap = {k: v for k, v in trip.items() if not k.startswith("negative")}
    assert call(s, "train_step", {"objective": "contrastive", "temperature": 0.1}, ap).result["count"] == 2


def test_bad_tensors_are_named(s: Session) -> None:
    b = pair_batch()
    with pytest.raises(BadArgs, match="missing tensor 'hypothesis_lengths'"):
        call(s, "train_step", {"objective": "siamese"}, {k: v for k, v in b.items() if k != "hypothesis_lengths"})
    with pytest.raises(BadArgs, match="outside 0..39"):
        call(s, "train_step", {"objective": "siamese"}, {**b, "premise": b["premise"] + 100})
    with pytest.raises(BadArgs, match="'premise_lengths' must be within 1..7"):
        call(s, "train_step", {"objective": "siamese"}, {**b, "premise_lengths": b["premise_lengths"] * 0})
    with pytest.raises(BadArgs, match="must be int32, int64"):
        call(s, "encode", {}, {"x": torch.zeros(2, 3), "lengths": torch.tensor([1, 2])})
    with pytest.raises(BadArgs, match="unknown objective"):
        call(s, "train_step", {"objective": "mlm"}, b)
    with pytest.raises(BadArgs, match="unknown argument"):
        call(s, "train_step", {"objective": "siamese", "lr": 1}, b)
    with pytest.raises(BadArgs, match="labels must be within"):
        call(s, "train_step", {"objective": "siamese"}, {**b, "labels": b["labels"] + 3})
    y = lm_batch()["y"].clone()
    y[0, 0] = -100  # ignored target: fine
    assert call(s, "train_step", {"objective": "lm"}, {"x": lm_batch()["x"], "y": y}).result["count"] == 51


def test_encode_predict_generate(s: Session) -> None:
    x, lengths = sents([3, 5, 2], 4)
    r = call(s, "encode", {}, {"x": x, "lengths": lengths})
    assert r.tensors["vectors"].shape == (3, 48) and r.tensors["vectors"].dtype == torch.float32
    r2 = call(s, "encode", {"pool": "mean", "pool_layers": "all"}, {"x": x, "lengths": lengths})
    assert r2.tensors["vectors"].shape == (3, 48) and r2.result == {"count": 3, "dim": 48}
    unit = call(s, "encode", {"normalize": True}, {"x": x, "lengths": lengths}).tensors["vectors"]
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(3))
    b = pair_batch()
    p = call(s, "predict", {"vectors": True}, {k: v for k, v in b.items() if k != "labels"})
    assert p.tensors["probs"].shape == (8, 3) and p.tensors["pred"].shape == (8,) and p.tensors["u"].shape == (8, 48)
    g = call(s, "generate", {"n": 3, "max_len": 5, "top_k": 4, "seed": 1}, {"prompt": torch.tensor([2, 7], dtype=torch.int32)})
    assert g.tensors["tokens"].shape[0] == 3 and g.tensors["tokens"][:, :2].tolist() == [[2, 7]] * 3


def test_encode_batches_in_one_message_give_each_batch_its_own_vectors(s: Session) -> None:
    (x1, l1), (x2, l2) = sents([3, 5, 2], 4), sents([6, 1], 5)
    one = [call(s, "encode", {"normalize": True}, {"x": x, "lengths": n}).tensors["vectors"] for x, n in ((x1, l1), (x2, l2))]
    both = call(s, "encode", {"normalize": True, "batches": 2}, {"0/x": x1, "0/lengths": l1, "1/x": x2, "1/lengths": l2})
    assert both.result == {"count": 5, "dim": 48} and list(both.tensors) == ["0/vectors", "1/vectors"]
    assert torch.equal(both.tensors["0/vectors"], one[0]) and torch.equal(both.tensors["1/vectors"], one[1])
    with pytest.raises(BadArgs, match="'batches' must be >= 1"):
        call(s, "encode", {"batches": 0}, {"x": x1, "lengths": l1})
    with pytest.raises(BadArgs, match="encode tensors are named <step>/<name>"):
        call(s, "encode", {"batches": 1}, {"x": x1, "lengths": l1})
    with pytest.raises(BadArgs, match="lengths"):  # batch 1 lacks its lengths: refused before batch 0 is encoded
        call(s, "encode", {"batches": 2}, {"0/x": x1, "0/lengths": l1, "1/x": x2})


def test_an_encode_job_gathers_its_batches_vectors_in_input_order(s: Session) -> None:
    (x1, l1), (x2, l2) = sents([3, 5, 2], 4), sents([6, 1], 5)
    one = [call(s, "encode", {}, {"x": x, "lengths": n}).tensors["vectors"] for x, n in ((x1, l1), (x2, l2))]
    r1, r2 = torch.tensor([4, 0, 2], dtype=torch.int32), torch.tensor([1, 3], dtype=torch.int32)
    job = {"job": 7, "total": 5}
    first = call(s, "encode", {**job, "batches": 1}, {"0/x": x1, "0/lengths": l1, "0/rows": r1})
    assert first.result == {"count": 3, "dim": 48} and first.tensors == {}  # the vectors stay in the backend
    call(s, "encode", job, {"x": x2, "lengths": l2, "rows": r2})
    got = call(s, "encode_result", {"job": 7})
    assert got.result == {"count": 5, "dim": 48}
    expected = torch.empty(5, 48)
    expected[r1.long()], expected[r2.long()] = one[0], one[1]
    assert torch.equal(got.tensors["vectors"], expected)
    assert len(s.encode_jobs) == 0  # taken: closed
    with pytest.raises(BadArgs, match="no open encode job 7"):
        call(s, "encode_result", {"job": 7})


def test_an_encode_job_refuses_bad_rows_before_encoding_and_a_result_with_rows_missing(s: Session) -> None:
    x, lengths = sents([3, 5, 2], 4)
    job = {"job": 1, "total": 4}
    for rows, message in (
        ([0, 1], "names 2 rows for 3 sentences"),
        ([0, 1, 4], r"within 0..3 \(min 0, max 4\)"),
        ([0, 1, 1], "encoded twice"),
    ):
        with pytest.raises(BadArgs, match=message):
            call(s, "encode", job, {"x": x, "lengths": lengths, "rows": torch.tensor(rows, dtype=torch.int32)})
    with pytest.raises(BadArgs, match="missing tensor 'rows'"):
        call(s, "encode", job, {"x": x, "lengths": lengths})
    call(s, "encode", job, {"x": x, "lengths": lengths, "rows": torch.tensor([3, 0, 1], dtype=torch.int32)})
    with pytest.raises(BadArgs, match="encoded twice"):  # a row written by an earlier request
        call(s, "encode", job, {"x": x[:1], "lengths": lengths[:1], "rows": torch.tensor([3], dtype=torch.int32)})
    with pytest.raises(BadArgs, match="job 1 has 4 rows; this request says 9"):
        call(s, "encode", {"job": 1, "total": 9}, {"x": x, "lengths": lengths, "rows": torch.tensor([0, 1, 2])})
    with pytest.raises(BadArgs, match=r"1 of 4 rows never encoded \(the first: row 2\)"):
        call(s, "encode_result", {"job": 1})
    call(s, "encode", {"job": 2, "total": 3}, {"x": x, "lengths": lengths, "rows": torch.tensor([0, 1, 2])})
    assert call(s, "encode_result", {"job": 2, "discard": True}).result == {"count": 0, "dim": 0}
    assert len(s.encode_jobs) == 0


def test_set_trainable_and_hparams(s: Session) -> None:
    r = call(s, "set_trainable", {"freeze_to": -1}).result
    assert r["trainable_groups"] == ["head"] and r["groups"] == ["emb", "rnn0", "rnn1", "head"]
    assert call(s, "set_trainable", {"groups": ["emb", "head"]}).result["trainable_groups"] == ["emb", "head"]
    assert call(s, "set_trainable", {"unfreeze": True}).result["trainable_groups"] == ["emb", "rnn0", "rnn1", "head"]
    with pytest.raises(BadArgs, match="unknown parameter group"):
        call(s, "set_trainable", {"groups": ["rnn7"]})
    h = call(s, "set_hparams", {"lr": [1e-4, 2e-4, 3e-4, 4e-4], "mom": 0.8, "drop_mult": 0.5}).result
    assert h["lrs"] == {"emb": 1e-4, "rnn0": 2e-4, "rnn1": 3e-4, "head": 4e-4} and h["mom"] == 0.8
    assert s.trainer.model.encoder.rnns[0].fwd.weight_p == pytest.approx(0.1)
    with pytest.raises(BadArgs, match="unknown hyper-parameter"):
        call(s, "set_hparams", {"momentum": 0.9})


def test_save_and_load_ops(s: Session, tmp_path: Path) -> None:
    call(s, "train_step", {"objective": "siamese"}, pair_batch())
    path = str(tmp_path / "run" / "last.pt")
    assert call(s, "save", {"path": path, "meta": {"stage": "siamese"}}).result["step"] == 1
    fresh = Session(lambda *_: None, "cpu")
    r = call(fresh, "load", {"path": path}).result  # no model yet: built from the checkpoint's config
    assert r["built"] and r["step"] == 1 and r["meta"] == {"stage": "siamese"}
    x, lengths = sents([3, 5], 4)
    t = {"x": x, "lengths": lengths}
    assert torch.equal(call(fresh, "encode", {}, t).tensors["vectors"], call(s, "encode", {}, t).tensors["vectors"])
    other = Session(lambda *_: None, "cpu")
    call(other, "build", {**TINY, "vocab_sz": 41})
    with pytest.raises(BridgeError, match="vocabulary size differs") as e:
        call(other, "load", {"path": path})
    assert e.value.code == "checkpoint_mismatch"
    vocab_map = torch.cat([torch.arange(40), torch.tensor([-1])]).to(torch.int32)  # one new word at the end
    r = call(other, "load", {"path": path, "parts": "encoder"}, {"vocab_map": vocab_map}).result
    assert r["new_words"] == 1 and r["skipped"] == []
    call(s, "reset_state", {})


def test_load_rebuild_builds_from_the_checkpoint_config(s: Session, tmp_path: Path) -> None:
    call(s, "train_step", {"objective": "siamese"}, pair_batch())
    path = str(tmp_path / "stage.pt")
    call(s, "save", {"path": path})
    other = Session(lambda *_: None, "cpu")
    call(other, "build", {**TINY, "pool": "max", "pool_layers": "all", "opt": "sgd"})  # another head and optimizer
    with pytest.raises(BridgeError) as e:
        call(other, "load", {"path": path, "parts": "weights"})
    assert e.value.code == "checkpoint_mismatch"
    r = call(other, "load", {"path": path, "parts": "weights", "rebuild": True}).result
    assert r["built"] and r["config"]["head"]["pool"] == s.trainer.model.hc.pool
    assert other.trainer.tc.opt == s.trainer.tc.opt
    x, lengths = sents([3, 5], 4)
    t = {"x": x, "lengths": lengths}
    assert torch.equal(call(other, "encode", {}, t).tensors["vectors"], call(s, "encode", {}, t).tensors["vectors"])
    # the caller's vocabulary: its own is accepted, another run's refused (its ids would mean other words)
    own = s.trainer.vocab_fingerprint
    assert call(other, "load", {"path": path, "parts": "weights", "rebuild": True, "vocab_fingerprint": own}).result["built"]
    with pytest.raises(BridgeError, match="trained with another vocabulary") as e:
        call(other, "load", {"path": path, "parts": "weights", "rebuild": True, "vocab_fingerprint": "another-run"})
    assert e.value.code == "checkpoint_mismatch"


def test_flush_applies_a_partial_accumulation_as_its_mean() -> None:
    base = {**TINY, "opt": "sgd", "lr": 0.5, "mom": 0.0, "wd": 0.0, "drop_mult": 0.0, "head_p": 0.0}
    b = pair_batch()
    halves = [{k: v[:4] for k, v in b.items()}, {k: v[4:] for k, v in b.items()}]
    one, acc = Session(lambda *_: None, "cpu"), Session(lambda *_: None, "cpu")
    call(one, "build", {**base, "accum_steps": 2})
    call(acc, "build", {**base, "accum_steps": 4})
    assert call(one, "flush").result == {"flushed": 0, "finite": True, "stepped": False, "step": 0}  # nothing pending
    for h in halves:
        call(one, "train_step", {"objective": "siamese"}, h)
        assert not call(acc, "train_step", {"objective": "siamese"}, h).result["stepped"]
    r = call(acc, "flush").result  # 2 of 4 micro-batches: the same step as a full accumulation of 2
    assert r["flushed"] == 2 and r["stepped"] and r["step"] == 1 == one.trainer.step
    assert acc.trainer.micro == 0
    for p, q in zip(one.trainer.model.parameters(), acc.trainer.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_train_step_sets_its_hparams_first_as_set_hparams_then_train_step_would() -> None:
    from conftest import built_session

    hp = {"lr": [0.001, 0.002, 0.004, 0.008], "mom": 0.9, "drop_mult": 0.3}
    two = built_session(**TINY)  # build seeds the process's generators: each session is built just before its steps
    call(two, "set_hparams", hp)
    separate = [call(two, "train_step", {"objective": "siamese"}, pair_batch()).result["loss"] for _ in range(3)]
    one = built_session(**TINY)
    together = [call(one, "train_step", {"objective": "siamese", "hparams": hp}, pair_batch()).result["loss"]]
    together += [call(one, "train_step", {"objective": "siamese"}, pair_batch()).result["loss"] for _ in range(2)]
    assert together == separate
    assert [g["lr"] for g in one.trainer.opt.param_groups] == hp["lr"]
    with pytest.raises(BadArgs, match="argument 'hparams' must be an object"):
        call(one, "train_step", {"objective": "siamese", "hparams": 0.1}, pair_batch())
    with pytest.raises(BadArgs, match="dropouts must be within"):
        call(one, "train_step", {"objective": "siamese", "hparams": {"drop_mult": 20.0}}, pair_batch())


def test_eval_step_refuses_hparams(s: Session) -> None:
    with pytest.raises(BadArgs, match="eval_step takes no hparams"):
        call(s, "eval_step", {"objective": "siamese", "hparams": {"lr": 0.1}}, pair_batch())


def test_train_steps_runs_its_steps_as_train_step_would_one_request_each() -> None:
    from conftest import built_session

    hp = {"lr": 0.003, "mom": 0.9}
    batches = [pair_batch(), pair_batch(), pair_batch()]
    steps = [{"objective": "siamese", "hparams": hp}, {"objective": "siamese"}, {"objective": "siamese", "return_logits": True}]
    one = built_session(**TINY)  # build seeds the process's generators: each session is built just before its steps
    separate = [call(one, "train_step", a, b) for a, b in zip(steps, batches, strict=True)]
    many = built_session(**TINY)
    tensors = {f"{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()}
    together = call(many, "train_steps", {"steps": steps}, tensors)
    assert together.result["steps"] == [r.result for r in separate]
    assert list(together.tensors) == ["2/logits"]
    assert torch.equal(together.tensors["2/logits"], separate[2].tensors["logits"])
    for p, q in zip(one.trainer.model.parameters(), many.trainer.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_train_steps_refuses_bad_requests_and_names_the_failing_step(s: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    b = pair_batch()
    with pytest.raises(BadArgs, match="'steps' must be a non-empty list"):
        call(s, "train_steps", {"steps": []}, {})
    for bad in ("premise", "1/premise", "01/premise", "\u0661/premise", "-1/premise", " 0/premise"):
        with pytest.raises(BadArgs, match="train_steps tensors are named <step>/<name>"):
            call(s, "train_steps", {"steps": [{"objective": "siamese"}]}, {bad: b["premise"]})
    before = s.trainer.step
    two = {**{f"0/{k}": v for k, v in b.items()}, "1/premise": b["premise"]}
    with pytest.raises(BadArgs, match=r"step 2 of 2 in this train_steps request: missing tensor"):
        call(s, "train_steps", {"steps": [{"objective": "siamese"}, {"objective": "siamese"}]}, two)
    both = {**{f"0/{k}": v for k, v in b.items()}, **{f"1/{k}": v for k, v in b.items()}}
    with pytest.raises(BadArgs, match=r"step 2 of 2 .*'hparams' must be an object"):
        call(s, "train_steps", {"steps": [{"objective": "siamese"}, {"objective": "siamese", "hparams": 1}]}, both)
    assert s.trainer.step == before, "a malformed request is refused whole: no step of it ran"
    # an error while a step runs (not a malformed request) names its step too; the steps before it stay applied
    real, calls = s.trainer.train_step, []

    def failing_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("device lost")
        return real(*a, **k)

    monkeypatch.setattr(s.trainer, "train_step", failing_second)
    with pytest.raises(BridgeError, match=r"step 2 of 2 in this train_steps request: RuntimeError: device lost"):
        call(s, "train_steps", {"steps": [{"objective": "siamese"}, {"objective": "siamese"}]}, both)
    assert s.trainer.step == before + 1

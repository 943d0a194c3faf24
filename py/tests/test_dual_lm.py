"""dual_lm: a forward and a backward LM's encoders whose pooled vectors are concatenated (ULMFiT's fwd + bwd).

Shapes, each half equal to a separately built encoder of its direction, batch invariance, every sentence objective
training both encoders, checkpoints carrying both, and `init_from` with a forward and a backward source.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import TINY, built_session, call
from test_awd_lstm import assert_batch_invariant
from test_training import V, batch_for, make, pair_batch, sents

from bridge_backend.errors import BadArgs, BridgeError
from bridge_backend.models import BridgeModel, HeadConfig
from bridge_backend.models.pooling import POOL_LAYERS, POOLS
from bridge_backend.session import Session

DUAL = {**TINY, "dual_lm": True}
SENTENCE_OBJECTIVES = ["siamese", "triplet", "contrastive", "simcse"]


def session(**build) -> Session:
    return built_session(**build)


def one_encoder_like(dual: BridgeModel, half: str, backwards: bool | None = None) -> BridgeModel:
    """A model of one encoder, built on its own, holding `half`'s weights; it reads in `half`'s direction unless
    `backwards` says otherwise."""
    backwards = half == "bwd" if backwards is None else backwards
    m = BridgeModel(replace(dual.cfg, backwards=backwards), HeadConfig(pool=dual.hc.pool, pool_layers=dual.hc.pool_layers))
    m.encoder.load_state_dict(getattr(dual.encoder, half).state_dict())
    return m.eval()


def test_vectors_are_forward_then_backward_and_the_head_sizes_itself() -> None:
    t = make(head={"head_hidden": 8, "dual_lm": True})
    single = make(head={"head_hidden": 8})
    m = t.model.eval()
    assert m.vec_dim() == 2 * single.model.vec_dim() == 2 * 3 * 16  # concat pooling over the 16-d top layer, twice
    assert m.nli_head.layers[1].in_features == 4 * m.vec_dim()  # InferSent features of the doubled vectors
    assert m.lm_head is None
    x, lengths = sents([5, 2, 7], 3)
    with torch.no_grad():
        v = m.encode(x, lengths)
        fwd, bwd = one_encoder_like(m, "fwd"), one_encoder_like(m, "bwd")
        d = fwd.vec_dim()
        assert v.shape == (3, 2 * d)
        torch.testing.assert_close(v[:, :d], fwd.encode(x, lengths), rtol=0, atol=0)
        torch.testing.assert_close(v[:, d:], bwd.encode(x, lengths), rtol=0, atol=0)
        # the backward half really reads right to left: a forward encoder with its weights gives other vectors
        read_forward = one_encoder_like(m, "bwd", backwards=False)
        assert not torch.allclose(v[:, d:], read_forward.encode(x, lengths), atol=1e-3)


@pytest.mark.parametrize("pool_kind", POOLS)
@pytest.mark.parametrize("layers", POOL_LAYERS)
def test_batch_invariance(pool_kind: str, layers: str) -> None:
    """A sentence's vector alone equals its vector among longer and shorter batch-mates, whatever the padding holds."""
    torch.manual_seed(0)
    m = make(head={"pool": pool_kind, "pool_layers": layers, "dual_lm": True}).model.eval()
    lengths = [6, 2, 9, 1, 6, 4]
    x, lens = sents(lengths, 0)
    pad_mask = torch.arange(x.size(1)) >= lens.unsqueeze(1)
    x_garbage = torch.where(pad_mask, torch.randint(4, V, x.shape), x)
    with torch.no_grad():
        batch = m.encode(x, lens)
        torch.testing.assert_close(m.encode(x_garbage, lens), batch, atol=1e-5, rtol=1e-5)
        for i, n in enumerate(lengths):
            torch.testing.assert_close(batch[i : i + 1], m.encode(x[i : i + 1, :n], lens[i : i + 1]), atol=1e-5, rtol=1e-5)
        perm = torch.tensor([3, 0, 5, 1, 4, 2])
        torch.testing.assert_close(m.encode(x[perm], lens[perm]), batch[perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pool_kind", POOLS)
def test_batch_invariance_with_every_vector_option(pool_kind: str) -> None:
    """pool_emb, idf weights (the backward half's in its reading order), a fitted SIF component over both halves and a
    projection of their concat: still independent of batch-mates and padding."""
    torch.manual_seed(0)
    options = {"pool_emb": True, "pool_weighting": "idf", "sif": True, "proj_dim": 12}
    t = make(head={"pool": pool_kind, "pool_layers": "all", "dual_lm": True, **options})
    assert t.model.token_weights is not None and t.model.proj is not None
    t.model.token_weights.copy_(torch.rand(V) * 2.5 + 0.5)
    assert t.model.proj.in_features == 2 * ((3 if pool_kind == "concat" else 1) * (32 + 16 + 16))
    x, lens = sents([(i % 9) + 1 for i in range(40)], 1)
    t.fit_pc(x, lens)
    assert_batch_invariant(t.model.eval())


@pytest.mark.parametrize("objective", SENTENCE_OBJECTIVES)
def test_each_sentence_objective_trains_both_encoders(objective: str) -> None:
    t = make(lr=1e-3, accum_steps=2, head={"head_hidden": 8, "dual_lm": True})  # accum 2: grads stay after one micro-batch
    res, _ = t.train_step(objective, batch_for(objective), {})
    assert res["finite"] is True and res["stepped"] is False
    for half in (t.model.encoder.fwd, t.model.encoder.bwd):
        g = half.emb.weight.grad
        assert g is not None and g.abs().sum() > 0
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in half.rnns.parameters())
    if objective == "siamese":
        assert all(p.grad is not None for p in t.model.nli_head.parameters())


def test_param_groups_hold_both_encoders_once() -> None:
    m = make(head={"dual_lm": True}).model
    groups = m.param_groups()
    assert [name for name, _ in groups] == ["emb", "rnn0", "rnn1", "head"]
    ids = [id(p) for _, ps in groups for p in ps]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))
    emb = dict(groups)["emb"]
    assert {id(p) for p in emb} == {id(m.encoder.fwd.emb.weight), id(m.encoder.bwd.emb.weight)}


def test_ops_encode_predict_and_refusals() -> None:
    s = session(**DUAL)
    one = session(**TINY)
    info = call(s, "model_info").result
    assert info["vec_dim"] == 2 * call(one, "model_info").result["vec_dim"]
    assert info["config"]["head"]["dual_lm"] is True
    x, lengths = sents([4, 6, 2], 1)
    r = call(s, "encode", {}, {"x": x, "lengths": lengths})
    assert r.result == {"count": 3, "dim": info["vec_dim"]}
    assert call(s, "encode", {"pool": "max"}, {"x": x, "lengths": lengths}).result["dim"] == 2 * 16
    b = pair_batch()
    p = call(
        s, "predict", {"vectors": True}, {k: b[k] for k in ("premise", "premise_lengths", "hypothesis", "hypothesis_lengths")}
    )
    assert p.tensors["probs"].shape == (8, 3) and p.tensors["u"].shape == (8, info["vec_dim"])
    call(s, "set_hparams", {"drop_mult": 0.5})  # reaches both encoders' dropouts
    assert s.trainer.model.encoder.bwd.input_dp.p == pytest.approx(0.5 * 0.25)
    with pytest.raises(
        BadArgs, match=r"dual_lm model .* has no language-model head.*init: \{ from: FORWARD_RUN, backward: BACKWARD_RUN \}"
    ):
        call(s, "train_step", {"objective": "lm"}, batch_for("lm"))
    with pytest.raises(BadArgs, match="dual_lm holds a forward and a backward one-directional encoder.*drop bidir"):
        session(**DUAL, bidir=True)
    with pytest.raises(BadArgs, match="drop backwards"):
        session(**DUAL, backwards=True)


def test_checkpoints_carry_both_encoders(tmp_path: Path) -> None:
    s = session(**DUAL)
    call(s, "train_step", {"objective": "siamese"}, pair_batch())
    path = str(tmp_path / "dual.pt")
    call(s, "save", {"path": path})
    x, lengths = sents([4, 6, 2], 1)
    before = call(s, "encode", {}, {"x": x, "lengths": lengths}).tensors["vectors"]
    fresh = Session(lambda *_: None, "cpu")  # rebuilt from the checkpoint's own config: dual_lm included
    assert call(fresh, "load", {"path": path}).result["built"] is True
    torch.testing.assert_close(call(fresh, "encode", {}, {"x": x, "lengths": lengths}).tensors["vectors"], before)
    # a next stage's model takes both encoders by name
    nxt = session(**{**DUAL, "seed": 1, "pool": "mean"})
    loaded = call(nxt, "load", {"path": path, "parts": "encoder"}).result["loaded"]
    assert loaded == len([k for k in s.trainer.model.state_dict() if k.startswith("encoder.")])
    for half in ("fwd", "bwd"):
        a, b = getattr(s.trainer.model.encoder, half), getattr(nxt.trainer.model.encoder, half)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(BridgeError, match="dual_lm"):  # a one-encoder model cannot take all of it
        call(session(**TINY), "load", {"path": path, "parts": "weights"})


def lm_checkpoint(tmp_path: Path, name: str, backwards: bool, seed: int, vocab_sz: int = V) -> str:
    s = session(**{**TINY, "vocab_sz": vocab_sz, "backwards": backwards, "seed": seed})
    path = str(tmp_path / f"{name}.pt")
    call(s, "save", {"path": path})
    return path


def test_init_from_a_forward_and_a_backward_lm_matches_each_vocabulary(tmp_path: Path) -> None:
    fwd_path = lm_checkpoint(tmp_path, "fwd", False, 1, vocab_sz=30)
    bwd_path = lm_checkpoint(tmp_path, "bwd", True, 2, vocab_sz=50)
    fwd_emb = torch.load(fwd_path, weights_only=True)["model"]["encoder.emb.weight"]
    bwd_state = torch.load(bwd_path, weights_only=True)["model"]
    s = session(**DUAL)
    fwd_map = torch.tensor([*range(30), *[-1] * (V - 30)], dtype=torch.int32)  # 10 new words
    bwd_map = torch.arange(V, dtype=torch.int32).flip(0)  # every word known, ids reversed
    r = call(
        s, "init_from", {"path": fwd_path, "backward_path": bwd_path}, {"vocab_map": fwd_map, "backward_vocab_map": bwd_map}
    ).result
    assert (r["copied"], r["new"], r["source"]["direction"]) == (30, 10, "forward")
    assert (r["backward"]["copied"], r["backward"]["new"], r["backward"]["source"]["direction"]) == (V, 0, "backward")
    assert r["skipped"] == [] and r["backward"]["skipped"] == []
    enc = s.trainer.model.encoder
    assert torch.equal(enc.fwd.emb.weight[:30], fwd_emb) and torch.allclose(enc.fwd.emb.weight[35], fwd_emb.mean(0))
    assert torch.equal(enc.bwd.emb.weight, bwd_state["encoder.emb.weight"][bwd_map.long()])
    assert torch.equal(enc.bwd.rnns[1].fwd.weight_hh_raw, bwd_state["encoder.rnns.1.fwd.weight_hh_raw"])


def test_init_from_names_a_direction_mismatch_and_a_missing_backward_lm(tmp_path: Path) -> None:
    fwd_path = lm_checkpoint(tmp_path, "fwd", False, 1)
    bwd_path = lm_checkpoint(tmp_path, "bwd", True, 2)
    s = session(**DUAL)
    before = [p.clone() for p in s.trainer.model.encoder.parameters()]
    with pytest.raises(
        BridgeError,
        match=r"init.backward \(the backward LM\): the pretrained model .*fwd.pt does not fit this model's backward "
        r"encoder .*direction forward vs backward",
    ) as e:
        call(s, "init_from", {"path": fwd_path, "backward_path": fwd_path})
    assert e.value.code == "init_mismatch"
    assert all(torch.equal(p, q) for p, q in zip(before, s.trainer.model.encoder.parameters(), strict=True)), "nothing loaded"
    with pytest.raises(BridgeError, match=r"init.from \(the forward LM\).*direction backward vs forward"):
        call(s, "init_from", {"path": bwd_path, "backward_path": bwd_path})
    with pytest.raises(BridgeError, match=r"give the backward LM too \(init.backward"):
        call(s, "init_from", {"path": fwd_path})
    with pytest.raises(BadArgs, match="backward_path starts the backward encoder of a dual_lm model"):
        call(session(**TINY), "init_from", {"path": fwd_path, "backward_path": bwd_path})


def test_init_from_a_dual_lm_checkpoint_alone_loads_both_halves(tmp_path: Path) -> None:
    src = session(**{**DUAL, "seed": 5})
    path = str(tmp_path / "dual.pt")
    call(src, "save", {"path": path})
    s = session(**DUAL)
    r = call(s, "init_from", {"path": path}, {"vocab_map": torch.arange(V, dtype=torch.int32)}).result
    assert r["source"]["direction"] == "forward+backward" and r["backward"]["copied"] == V
    a, b = src.trainer.model.encoder, s.trainer.model.encoder
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(BridgeError, match="direction forward\\+backward vs forward"):  # one encoder from two: refused
        call(session(**TINY), "init_from", {"path": path})

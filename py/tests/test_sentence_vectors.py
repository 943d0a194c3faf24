"""Sentence-vector options: the embedding layer pooled too (pool_emb), idf-weighted means (pool_weighting), SIF's
common component (sif, fit_pc) and a learned projection (proj_dim): widths, values, build refusals, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, built_session, call
from test_training import V, pair_batch, sents

from bridge_backend.checkpoints import read_checkpoint
from bridge_backend.errors import BadArgs, BridgeError
from bridge_backend.models.awd_lstm import reverse_within
from bridge_backend.models.pooling import pool, principal_component
from bridge_backend.session import Session


def session(**build) -> Session:
    return built_session(**{**TINY, **build})


def idf(seed: int = 0) -> list[float]:
    """Random per-word weights in 0.5..3 (what the TS side's idf looks like)."""
    return (torch.rand(V, generator=torch.Generator().manual_seed(seed)) * 2.5 + 0.5).tolist()


def encode(s: Session, x: torch.Tensor, lengths: torch.Tensor, **args) -> torch.Tensor:
    return call(s, "encode", args, {"x": x, "lengths": lengths}).tensors["vectors"]


@pytest.mark.parametrize("pool_kind, layers, extra", [("concat", "top", 3 * 16), ("mean", "all", 16), ("last", "top", 16)])
def test_pool_emb_appends_the_embedding_layer_pooled_alike(pool_kind: str, layers: str, extra: int) -> None:
    plain = session(pool=pool_kind, pool_layers=layers)
    with_emb = session(pool=pool_kind, pool_layers=layers, pool_emb=True)  # the same seed: the same encoder weights
    d = call(plain, "model_info").result["vec_dim"]
    assert call(with_emb, "model_info").result["vec_dim"] == d + extra  # the pooled emb_sz (16) embedding
    assert with_emb.trainer.model.nli_head.layers[1].in_features == 4 * (d + extra)  # the siamese head sizes itself
    x, lengths = sents([4, 7, 2], 3)
    v, ref = encode(with_emb, x, lengths), encode(plain, x, lengths)
    assert v.shape == (3, d + extra)
    torch.testing.assert_close(v[:, :d], ref, atol=0, rtol=0)  # the LSTM layers' part first, as before
    with torch.no_grad():
        emb = with_emb.trainer.model.encoder.emb(x)  # [bs, sl, emb_sz], no dropout in eval
        torch.testing.assert_close(v[:, d:], pool(emb, lengths, pool_kind))


def test_idf_weights_every_mean_and_padding_never_counts() -> None:
    weights = idf()
    s = session(pool="concat", pool_weighting="idf", token_weights=weights)
    plain = session(pool="concat")
    x, lengths = sents([5, 3, 6], 2)
    v, ref = encode(s, x, lengths), encode(plain, x, lengths)
    m = s.trainer.model
    with torch.no_grad():
        top = m.encoder(x, lengths)[0][-1]  # [bs, sl, 16]
    w = torch.tensor(weights)[x] * (torch.arange(x.size(1)) < lengths.unsqueeze(1))  # [bs, sl], 0 on padding
    weighted = (top * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True)
    torch.testing.assert_close(v[:, 32:], weighted)  # concat's mean part (after last and max) is weighted
    torch.testing.assert_close(v[:, :32], ref[:, :32], atol=0, rtol=0)  # last and max are not
    assert torch.equal(m.token_weights, torch.tensor(weights))
    # weights of 1 everywhere are the plain mean
    ones = session(pool="mean", pool_weighting="idf", token_weights=[1.0] * V)
    torch.testing.assert_close(encode(ones, x, lengths), encode(session(pool="mean"), x, lengths))


def test_idf_weights_follow_a_backward_encoder_s_reading_order() -> None:
    """A one-hot weight on one word: the weighted mean of a backward encoder's states is its state on that word,
    at the word's place in the reversed reading (lengths - 1 - p)."""
    x = torch.tensor([[5, 6, 7, 8, 1], [9, 10, 11, 1, 1]])  # 1 = pad
    lengths = torch.tensor([4, 3])
    weights = [0.0] * V
    weights[6] = weights[11] = 1.0  # word 6 at position 1 of row 0, word 11 at position 2 of row 1
    s = session(pool="mean", backwards=True, pool_weighting="idf", token_weights=weights)
    v = encode(s, x, lengths)
    with torch.no_grad():
        top = s.trainer.model.encoder(x, lengths)[0][-1]  # reading order
    torch.testing.assert_close(v[0], top[0, 4 - 1 - 1])
    torch.testing.assert_close(v[1], top[1, 3 - 1 - 2])
    assert torch.equal(reverse_within(lengths, 5)[0, :4], torch.tensor([3, 2, 1, 0]))


@pytest.mark.parametrize(
    "build, message",
    [
        ({"pool_weighting": "idf"}, "pool_weighting 'idf' needs build argument 'token_weights': 40 weights"),
        ({"pool_weighting": "idf", "token_weights": [1.0] * 39}, "'token_weights' has 39 weights for a vocabulary of 40"),
        ({"pool_weighting": "idf", "token_weights": [1.0] * 39 + [-1.0]}, "finite and >= 0: word id 39 has -1.0"),
        ({"pool_weighting": "idf", "token_weights": [1.0] * 39 + ["x"]}, "must be a list of numbers"),
        ({"token_weights": [1.0] * 40}, "with pool_weighting 'idf' only \\(this build: 'none'\\)"),
        ({"pool_weighting": "tfidf"}, "pool_weighting must be one of none, idf"),
        ({"proj_dim": 0}, "proj_dim must be >= 1"),
        ({"proj_dim": 8.0}, "'proj_dim' must be int, got float"),
        ({"sif": 1}, "'sif' must be bool, got int"),
    ],
)
def test_build_refuses_bad_vector_options(build: dict, message: str) -> None:
    with pytest.raises(BadArgs, match=message):
        session(**build)


def test_idf_weights_and_the_fitted_component_survive_save_and_load(tmp_path: Path) -> None:
    s = session(pool="concat", pool_emb=True, pool_weighting="idf", token_weights=idf(1), sif=True, proj_dim=12)
    x, lengths = sents([6, 3, 8, 5], 4)
    fit = sents(list(range(1, 12)) * 3, 5)
    call(s, "fit_pc", {}, {"x": fit[0], "lengths": fit[1]})
    path = str(tmp_path / "sv.pt")
    call(s, "save", {"path": path})
    ck = read_checkpoint(path)
    assert torch.equal(ck["model"]["token_weights"], torch.tensor(idf(1)))
    assert ck["config"]["head"]["proj_dim"] == 12 and ck["config"]["head"]["sif"] is True
    for args in ({"path": path}, {"path": path, "parts": "weights", "rebuild": True}):  # resume; eval / embed
        fresh = Session(lambda *_: None, "cpu")
        assert call(fresh, "load", args).result["built"]
        torch.testing.assert_close(encode(fresh, x, lengths), encode(s, x, lengths), atol=0, rtol=0)
        assert torch.equal(fresh.trainer.model.sif_pc, s.trainer.model.sif_pc)
    # a model built with other weights takes the checkpoint's (they are the model's, as its weights are)
    other = session(pool="concat", pool_emb=True, pool_weighting="idf", token_weights=idf(2), sif=True, proj_dim=12)
    call(other, "load", {"path": path, "parts": "weights"})
    torch.testing.assert_close(encode(other, x, lengths), encode(s, x, lengths), atol=0, rtol=0)
    # parts=encoder (the next stage) takes the projection, keeps its own built weights and an unfitted component
    nxt = session(pool="concat", pool_emb=True, pool_weighting="idf", token_weights=idf(2), sif=True, proj_dim=12, seed=7)
    r = call(nxt, "load", {"path": path, "parts": "encoder"}).result
    m = nxt.trainer.model
    assert r["skipped"] == [] and torch.equal(m.proj.weight, s.trainer.model.proj.weight)
    assert torch.equal(m.token_weights, torch.tensor(idf(2))) and not m.sif_pc.any()
    # a stage pooling otherwise starts its own projection
    wider = session(pool="mean", pool_layers="all", proj_dim=12)
    r = call(wider, "load", {"path": path, "parts": "encoder", "allow_partial": True}).result
    assert r["skipped"] == ["proj.weight"] and torch.equal(wider.trainer.model.proj.bias, s.trainer.model.proj.bias)


def test_a_checkpoint_from_before_the_vector_options_still_loads(tmp_path: Path) -> None:
    s = session()
    path = tmp_path / "old.pt"
    call(s, "save", {"path": str(path)})
    ck = read_checkpoint(path)
    for key in ("pool_emb", "pool_weighting", "sif", "proj_dim"):
        del ck["config"]["head"][key]
    torch.save(ck, path)
    x, lengths = sents([3, 5], 1)
    for args in ({"path": str(path), "parts": "weights"}, {"path": str(path), "rebuild": True}):
        other = session(seed=3)
        call(other, "load", args)
        torch.testing.assert_close(encode(other, x, lengths), encode(s, x, lengths), atol=0, rtol=0)
    with pytest.raises(BridgeError, match=r"architecture differs: sif \(checkpoint False, model True\)"):
        call(session(sif=True), "load", {"path": str(path), "parts": "weights"})


def test_fit_pc_stores_the_first_singular_vector_and_vectors_lose_their_part_along_it() -> None:
    s = session(pool="mean", sif=True)
    x, lengths = sents([(i % 9) + 1 for i in range(300)], 6)  # more than one chunk of 256
    before = encode(s, x, lengths)
    assert torch.equal(before, encode(session(pool="mean"), x, lengths))  # not fitted: nothing removed
    r = call(s, "fit_pc", {}, {"x": x.to(torch.int32), "lengths": lengths}).result
    assert r["count"] == 300 and r["dim"] == 16 and 0 < r["explained"] <= 1
    pc = s.trainer.model.sif_pc
    _, sv, vh = torch.linalg.svd(before.double(), full_matrices=False)
    torch.testing.assert_close(pc.double().abs(), vh[0].abs(), atol=1e-5, rtol=1e-4)  # up to its sign
    assert r["explained"] == pytest.approx(float(sv[0] ** 2 / (sv**2).sum()), rel=1e-5)
    after = encode(s, x, lengths)
    assert (after @ pc).abs().max() < 1e-5  # orthogonal to the component
    torch.testing.assert_close(after, before - (before @ pc).unsqueeze(1) * pc)
    # refitting on the component-free model finds the same component: fitting never removes it first
    call(s, "fit_pc", {}, {"x": x, "lengths": lengths})
    torch.testing.assert_close(s.trainer.model.sif_pc, pc)
    with pytest.raises(BadArgs, match="fit_pc: this model was built without sif"):
        call(session(), "fit_pc", {}, {"x": x, "lengths": lengths})
    with pytest.raises(BadArgs, match="missing tensor 'lengths'"):
        call(s, "fit_pc", {}, {"x": x})


def test_the_component_is_removed_from_encoded_vectors_only_not_from_what_the_head_sees() -> None:
    """A component fitted at a stage's end must not shift the vectors the stage's classifier head learned on."""
    s = session(pool="mean", sif=True, drop_mult=0.0)
    x, lengths = sents([4, 6, 3], 2)
    t = s.trainer
    before = t.predict((x, lengths), (x.flip(0), lengths.flip(0)))["logits"]
    call(s, "fit_pc", {}, {"x": x, "lengths": lengths})
    encoded = t.encode(x, lengths)  # what eval and embed get
    assert (encoded @ t.model.sif_pc).abs().max() < 1e-5
    t.model.train()
    (v,) = t.encode_batches([(x, lengths)])  # what the objectives train on
    assert (v @ t.model.sif_pc).abs().max() > 1e-3 and v.requires_grad
    after = t.predict((x, lengths), (x.flip(0), lengths.flip(0)))["logits"]
    assert torch.equal(before, after)


def test_principal_component_of_a_common_direction() -> None:
    g = torch.Generator().manual_seed(0)
    common = torch.nn.functional.normalize(torch.randn(20, generator=g), dim=0)
    v = 5 * common + 0.1 * torch.randn(500, 20, generator=g)  # [500, 20], one strong shared direction
    pc, explained = principal_component(v)
    assert float(pc @ common) > 0.999 and explained > 0.9  # positive sign: the rows project positively
    with pytest.raises(ValueError, match="all 3 sentence vectors are zero"):
        principal_component(torch.zeros(3, 4))


def test_proj_dim_projects_in_the_top_encoder_group() -> None:
    s = session(proj_dim=10, pool="concat")
    info = call(s, "model_info").result
    m = s.trainer.model
    assert info["vec_dim"] == 10 and m.proj.in_features == 48 and m.nli_head.layers[1].in_features == 4 * 10
    groups = dict(m.param_groups())
    assert {id(p) for p in m.proj.parameters()} <= {id(p) for p in groups["rnn1"]}
    assert info["groups"]["head"] == sum(p.numel() for p in m.nli_head.parameters()) + sum(
        p.numel() for p in m.lm_head.parameters() if p is not m.encoder.emb.weight
    )
    x, lengths = sents([4, 2], 0)
    assert encode(s, x, lengths).shape == (2, 10)
    call(s, "set_trainable", {"freeze_to": -1})  # the head alone: the projection is frozen with the encoder's top
    assert not m.proj.weight.requires_grad
    call(s, "set_trainable", {"freeze_to": -2})
    assert m.proj.weight.requires_grad
    with pytest.raises(BadArgs, match="pool 'max' / pool_layers 'top' differ from the built 'concat' / 'top'"):
        encode(s, x, lengths, pool="max")
    with pytest.raises(BadArgs, match="SIF component"):
        encode(session(sif=True), x, lengths, pool_layers="all")
    assert encode(session(pool_emb=True), x, lengths, pool="max").shape == (2, 16 + 16)  # without either: fine


def test_head_pool_gives_the_classifier_max_pooling_beside_an_unchanged_vector() -> None:
    plain = session(pool="mean", pool_layers="all", pool_emb=True)
    s = session(pool="mean", pool_layers="all", pool_emb=True, head_pool="max")  # the same seed: the same encoder
    m = s.trainer.model
    d = call(s, "model_info").result["vec_dim"]
    assert d == call(plain, "model_info").result["vec_dim"]  # the sentence vector keeps its width ...
    assert m.head_dim() == 2 * d and m.nli_head.layers[1].in_features == 4 * 2 * d  # ... the classifier sees both
    x, lengths = sents([4, 7, 2], 3)
    torch.testing.assert_close(encode(s, x, lengths), encode(plain, x, lengths), atol=0, rtol=0)
    m.eval()
    with torch.no_grad():
        h = m.head_inputs(x, lengths)  # [3, 2d]
        outs, _ = m.encoder(x, lengths, with_emb=True)  # embedding first, then each layer
        want = torch.cat([*(pool(o, lengths, "max") for o in outs[1:]), pool(outs[0], lengths, "max")], dim=-1)
    torch.testing.assert_close(h[:, :d], encode(s, x, lengths), atol=0, rtol=0)
    torch.testing.assert_close(h[:, d:], want, atol=0, rtol=0)
    # predict classifies from the wider input but hands back the sentence vectors
    b = pair_batch()
    p = call(s, "predict", {"vectors": True}, {k: v for k, v in b.items() if k != "labels"}).tensors
    assert p["probs"].shape == (8, 3)
    torch.testing.assert_close(p["u"], encode(s, b["premise"], b["premise_lengths"]))


def test_head_pool_siamese_learns_a_tiny_batch_and_its_gradients_reach_the_encoder() -> None:
    s = session(pool="mean", pool_layers="all", head_pool="max", drop_mult=0.0, lr=1e-2, wd=0.0)
    b = pair_batch()
    losses = [call(s, "train_step", {"objective": "siamese"}, b).result["loss"] for _ in range(40)]
    assert losses[-1] < 0.2 * losses[0], f"{losses[0]:.4f} -> {losses[-1]:.4f}"
    s = session(pool="mean", pool_layers="all", head_pool="max", accum_steps=2)  # accum 2: the gradients stay
    assert not call(s, "train_step", {"objective": "siamese"}, b).result["stepped"]
    m = s.trainer.model
    for name, p in m.encoder.rnns.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_describe_lists_the_pool_weightings_and_the_fit_pc_op() -> None:
    d = call(session(), "describe").result
    assert d["enums"]["pool_weighting"] == ["none", "idf"]
    head = d["defaults"]["head"]
    assert (head["pool_emb"], head["pool_weighting"], head["sif"], head["proj_dim"]) == (False, "none", False, None)
    ops = {o["name"]: o for o in d["ops"]}
    assert ops["fit_pc"]["every_rank"] and "SIF" in ops["fit_pc"]["doc"]


def test_layer_mix_starts_as_all_learns_its_layer_shares_and_travels_with_the_encoder(tmp_path: Path) -> None:
    x, lengths = sents([6, 3, 8, 5], 4)
    mixed = session(pool="mean", pool_layers="mix", pool_emb=True, drop_mult=0.0, lr=1e-2)
    plain = session(pool="mean", pool_layers="all", pool_emb=True, drop_mult=0.0, lr=1e-2)
    torch.testing.assert_close(encode(mixed, x, lengths), encode(plain, x, lengths), atol=0, rtol=0)
    m = mixed.trainer.model
    assert m.layer_mix.weights.shape == (3,)  # two LSTM layers and the embedding
    groups = dict(m.param_groups())
    assert {id(p) for p in m.layer_mix.parameters()} <= {id(p) for p in groups["rnn1"]}
    for _ in range(5):
        call(mixed, "train_step", {"objective": "contrastive"}, pair_batch())
    shares = m.layer_mix.shares()
    assert not torch.allclose(shares, torch.full((3,), 1 / 3)), "the objective moved the layer shares"
    path = str(tmp_path / "mix.pt")
    call(mixed, "save", {"path": path})
    fresh = Session(lambda *_: None, "cpu")
    call(fresh, "load", {"path": path, "parts": "weights", "rebuild": True})  # as eval and embed open a run
    torch.testing.assert_close(encode(fresh, x, lengths), encode(mixed, x, lengths), atol=0, rtol=0)
    nxt = session(pool="mean", pool_layers="mix", pool_emb=True, seed=9)
    call(nxt, "load", {"path": path, "parts": "encoder"})  # the next stage starts from the learnt mix
    assert torch.equal(nxt.trainer.model.layer_mix.weights, m.layer_mix.weights)
    with pytest.raises(BadArgs, match="pool_layers 'mix' needs a model built with it"):
        encode(plain, x, lengths, pool_layers="mix")


@pytest.mark.parametrize("head_pool", ["none", "max"])
def test_head_mix_gives_the_classifier_a_mix_of_its_own_and_leaves_the_vector_to_the_shared_one(head_pool: str) -> None:
    x, lengths = sents([6, 3, 8, 5], 4)
    base = {"pool": "mean", "pool_layers": "mix", "pool_emb": True, "drop_mult": 0.0, "lr": 1e-2, "head_pool": head_pool}
    own, shared = session(**base, head_mix=True), session(**base)
    m = own.trainer.model
    # the same encoder, the same vectors; the classifier's mix is a head parameter, apart from the shared one
    torch.testing.assert_close(encode(own, x, lengths), encode(shared, x, lengths), atol=0, rtol=0)
    groups = dict(m.param_groups())
    assert {id(p) for p in m.head_layer_mix.parameters()} <= {id(p) for p in groups["head"]}
    before = m.layer_mix.weights.detach().clone()
    for _ in range(5):
        call(own, "train_step", {"objective": "siamese"}, pair_batch())
    assert not torch.allclose(m.head_layer_mix.shares(), torch.full((3,), 1 / 3)), "the classifier moved its own shares"
    assert torch.equal(m.layer_mix.weights, before), "the classifier's loss never reaches the shared mix"
    with torch.no_grad():  # the classifier sees its own mix of the layers, the vector the shared one
        m.eval()
        assert not torch.allclose(m.head_inputs(x, lengths)[:, : m.vec_dim()], m.encode(x, lengths))
    pair = {"premise": x, "premise_lengths": lengths, "hypothesis": x, "hypothesis_lengths": lengths}
    p = call(own, "predict", {"vectors": True}, pair)
    torch.testing.assert_close(p.tensors["u"], encode(own, x, lengths), atol=0, rtol=0)  # predict's vectors are the vectors
    with pytest.raises(BadArgs, match="head_mix .* needs pool_layers 'mix'"):
        session(pool="mean", pool_layers="all", head_mix=True)
    with pytest.raises(BadArgs, match="head_mix cannot go with proj_dim"):
        session(**base, head_mix=True, proj_dim=8)


def test_layer_mix_is_one_set_of_shares_for_both_encoders_of_a_dual_lm(tmp_path: Path) -> None:
    s = session(pool="mean", pool_layers="mix", dual_lm=True, drop_mult=0.0, lr=1e-2)
    m = s.trainer.model
    x, lengths = sents([6, 3, 8, 5], 4)
    assert m.layer_mix.weights.shape == (2,) and encode(s, x, lengths).shape == (4, 2 * (32 + 16))
    for _ in range(5):
        call(s, "train_step", {"objective": "contrastive"}, pair_batch())
    assert not torch.allclose(m.layer_mix.shares(), torch.full((2,), 0.5)), "the objective moved the shared shares"
    # the learnt mix is in the checkpoint: a run opened from it (eval, embed) gives the same vectors
    path = str(tmp_path / "dual-mix.pt")
    call(s, "save", {"path": path})
    fresh = Session(lambda *_: None, "cpu")
    call(fresh, "load", {"path": path, "parts": "weights", "rebuild": True})
    assert torch.equal(fresh.trainer.model.layer_mix.weights, m.layer_mix.weights)
    torch.testing.assert_close(encode(fresh, x, lengths), encode(s, x, lengths), atol=0, rtol=0)

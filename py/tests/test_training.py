"""The training session: every objective learns, gradients reach the embedding, seeds, accumulation, freezing."""

from __future__ import annotations

import math

import pytest
import torch

from bridge_backend import training
from bridge_backend.losses import info_nce, triplet_loss
from bridge_backend.models import AWDLSTMConfig, BridgeModel, HeadConfig, awd_lstm_presets
from bridge_backend.objectives.pairs import pairs_to_triplets
from bridge_backend.training import TrainConfig, Trainer, fused_adam_supported, seed_everything

V, PAD, BOS, EOS = 40, 1, 2, 3


def make(seed: int = 0, head: dict | None = None, **kw) -> Trainer:
    seed_everything(seed)
    train_keys = set(TrainConfig.__dataclass_fields__)
    tc = TrainConfig(**{k: v for k, v in kw.items() if k in train_keys}, seed=seed)
    mc = AWDLSTMConfig(vocab_sz=V, **{**awd_lstm_presets["tiny"], **{k: v for k, v in kw.items() if k not in train_keys}})
    return Trainer(BridgeModel(mc, HeadConfig(**(head or {"head_hidden": 32}))), tc, torch.device("cpu"))


def sents(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lengths), max(lengths)), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randint(4, V, (n,), generator=g)
    return x, torch.tensor(lengths)


def pair_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """8 pairs, 4 premises, each with an entailment and a contradiction (NLI-style)."""
    p, pl = sents([5, 7, 4, 6], seed)
    h, hl = sents([3, 4, 5, 2, 6, 3, 4, 5], seed + 1)
    idx = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    return {
        "premise": p[idx],
        "premise_lengths": pl[idx],
        "hypothesis": h,
        "hypothesis_lengths": hl,
        "labels": torch.tensor([0, 2, 0, 2, 0, 2, 0, 1]),
    }


def lm_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(4, V, (4 * 13 + 1,), generator=g)
    return {"x": stream[:-1].view(4, 13), "y": stream[1:].view(4, 13)}  # [bs=4, bptt=13]


def batch_for(objective: str) -> dict[str, torch.Tensor]:
    if objective == "lm":
        return lm_batch()
    if objective == "simcse":
        x, lengths = sents([4, 6, 3, 5, 7, 2], 5)
        return {"x": x, "lengths": lengths}
    return pair_batch()


OBJECTIVES = ["lm", "siamese", "triplet", "contrastive", "simcse"]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_overfits_a_tiny_batch(objective: str) -> None:
    kw: dict = {"drop_mult": 0.0} if objective != "simcse" else {"drop_mult": 0.5}  # SimCSE needs its dropout
    if objective == "lm":  # memorising 52 random tokens through a tied 16-d bottleneck is slow: a bit wider
        kw.update(emb_sz=32, n_hid=64, lr=3e-2)
    t = make(**{"lr": 1e-2, "wd": 0.0, **kw})
    b = batch_for(objective)
    opts = {"reset": True, "alpha": 0.0, "beta": 0.0} if objective == "lm" else {}
    losses = [t.train_step(objective, b, opts)[0]["loss"] for _ in range(200 if objective == "lm" else 150)]
    assert losses[-1] < 0.1 * losses[0] or losses[-1] < 0.05, f"{objective}: {losses[0]:.3f} -> {losses[-1]:.3f}"
    metrics, _ = t.eval_step(objective, b, {"reset": True})
    if objective in ("siamese", "contrastive", "lm"):
        assert metrics["correct"] == metrics["count"]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_gradients_reach_the_embedding(objective: str) -> None:
    t = make(lr=1e-3, accum_steps=2)  # accum 2: the grads stay after the first micro-batch
    res, _ = t.train_step(objective, batch_for(objective), {})
    assert res["stepped"] is False and res["finite"] is True
    g = t.model.encoder.emb.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert all(p.grad is not None for p in t.model.encoder.rnns.parameters())


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_same_seed_same_losses(objective: str) -> None:
    def run() -> list[float]:
        t = make(seed=7, lr=1e-2)
        return [t.train_step(objective, batch_for(objective), {})[0]["loss"] for _ in range(4)]

    a, b = run(), run()
    assert a == b
    assert len(set(a)) > 1  # it did train


def test_lm_hidden_state_carries_and_resets() -> None:
    t = make(drop_mult=0.0)
    b = lm_batch()
    first, _ = t.eval_step("lm", b, {"reset": True})
    carried, _ = t.eval_step("lm", b, {})
    again, _ = t.eval_step("lm", b, {"reset": True})
    assert first["loss"] == again["loss"] != carried["loss"]
    # a different batch size starts a fresh state instead of failing
    small = {k: v[:2] for k, v in b.items()}
    assert math.isfinite(t.eval_step("lm", small, {})[0]["loss"])
    # train and eval streams are separate
    t.train_step("lm", b, {})
    assert set(t.lm_state) == {"train", "eval"}


def test_accumulation_equals_one_big_batch() -> None:
    b = pair_batch()
    halves = [{k: v[:4] for k, v in b.items()}, {k: v[4:] for k, v in b.items()}]
    big = make(seed=3, opt="sgd", lr=0.5, mom=0.0, wd=0.0, drop_mult=0.0, head={"head_hidden": 16, "head_p": 0.0})
    acc = make(seed=3, opt="sgd", lr=0.5, mom=0.0, wd=0.0, drop_mult=0.0, head={"head_hidden": 16, "head_p": 0.0}, accum_steps=2)
    assert big.train_step("siamese", b, {})[0]["stepped"]
    assert not acc.train_step("siamese", halves[0], {})[0]["stepped"]
    assert acc.train_step("siamese", halves[1], {})[0]["stepped"]
    assert big.step == acc.step == 1
    for p, q in zip(big.model.parameters(), acc.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_freezing_keeps_groups_fixed() -> None:
    t = make(lr=1e-2)
    assert t.freeze_to(-1) == ["head"]
    emb0 = t.model.encoder.emb.weight.detach().clone()
    rnn0 = t.model.encoder.rnns[0].fwd.weight_ih.detach().clone()
    head0 = t.model.nli_head.layers[-1].weight.detach().clone()
    t.train_step("siamese", pair_batch(), {})
    assert torch.equal(t.model.encoder.emb.weight, emb0)
    assert torch.equal(t.model.encoder.rnns[0].fwd.weight_ih, rnn0)
    assert not torch.equal(t.model.nli_head.layers[-1].weight, head0)
    t.freeze_to(-2)
    assert t.trainable() == ["rnn1", "head"]
    t.set_trainable(t.group_names)
    t.train_step("siamese", pair_batch(), {})
    assert not torch.equal(t.model.encoder.emb.weight, emb0)


def test_an_objective_with_no_trainable_weight_is_refused_by_name() -> None:
    """contrastive uses no head: with the head alone unfrozen its loss has no gradient path; the step says so
    (and changes nothing) instead of failing inside autograd."""
    t = make(lr=1e-2)
    t.freeze_to(-1)
    emb0 = t.model.encoder.emb.weight.detach().clone()
    with pytest.raises(training.BadArgs, match=r"contrastive: no trainable weight reaches its loss \(trainable groups: head\)"):
        t.train_step("contrastive", pair_batch(), {})
    assert torch.equal(t.model.encoder.emb.weight, emb0) and t.micro == 0
    t.freeze_to(-2)  # the top LSTM layer too: it trains
    t.train_step("contrastive", pair_batch(), {})
    assert t.step == 1


def test_discriminative_learning_rates_and_momentum() -> None:
    t = make(opt="adamw")
    hp = t.set_hparams({"lr": 0.01, "lr_div": 2.6, "mom": 0.85, "clip": 0.5})
    names = t.group_names
    assert hp["lrs"][names[-1]] == pytest.approx(0.01)
    assert hp["lrs"][names[0]] == pytest.approx(0.01 / 2.6 ** (len(names) - 1))
    assert all(g["betas"][0] == 0.85 for g in t.opt.param_groups) and t.tc.clip == 0.5
    t.set_hparams({"lr": {"head": 0.5}})
    assert t.opt.param_groups[-1]["lr"] == 0.5 and t.opt.param_groups[-2]["lr"] == pytest.approx(0.01 / 2.6)
    with pytest.raises(ValueError, match="unknown parameter group"):
        t.set_hparams({"lr": {"nope": 1.0}})
    with pytest.raises(ValueError, match="one value per group"):
        t.set_hparams({"lr": [0.1, 0.2]})


@pytest.mark.parametrize("opt", ["adam", "adamw"])
def test_fused_adam_steps_as_the_per_tensor_loop(opt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel must take every hyper-parameter the loop does (per-group lr, betas, eps, weight decay)."""
    fused = make(seed=4, opt=opt, wd=0.5)
    assert fused.opt.defaults["fused"] is True
    monkeypatch.setattr(training, "fused_adam_supported", lambda params: False)
    loop = make(seed=4, opt=opt, wd=0.5)
    assert not loop.opt.defaults["fused"]
    for t in (fused, loop):
        t.set_hparams({"lr": 0.05, "lr_div": 2.6, "mom": 0.8})
        seed_everything(9)  # the same dropout masks on both sides
        for k in range(4):
            t.train_step("siamese", pair_batch(k), {})
    for (name, p), q in zip(fused.model.named_parameters(), loop.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=5e-6, rtol=1e-5, msg=name)
    assert not torch.equal(fused.model.encoder.emb.weight, make(seed=4).model.encoder.emb.weight)


def test_fused_adam_only_where_torch_has_the_kernel() -> None:
    assert fused_adam_supported([torch.zeros(2)])
    assert not fused_adam_supported([torch.zeros(2, dtype=torch.float64)])
    assert not fused_adam_supported([torch.zeros(2, device="meta")])
    assert not fused_adam_supported([])


def test_clipping_bounds_the_update_norm() -> None:
    t = make(opt="sgd", lr=1.0, mom=0.0, wd=0.0, clip=1e-3, drop_mult=0.0)
    before = [p.detach().clone() for p in t.model.parameters()]
    res, _ = t.train_step("siamese", pair_batch(), {})
    assert res["grad_norm"] > 1e-3
    delta = torch.sqrt(sum(((p - q) ** 2).sum() for p, q in zip(t.model.parameters(), before, strict=True)))
    assert delta.item() == pytest.approx(1e-3, rel=1e-3)


def test_pairs_to_triplets_prefers_same_premise_contradictions() -> None:
    b = pair_batch()
    (a, _), (p, _), (n, _), same = pairs_to_triplets(
        (b["premise"], b["premise_lengths"]), (b["hypothesis"], b["hypothesis_lengths"]), b["labels"]
    )
    assert a.size(0) == 4 and same.tolist() == [True, True, True, False]  # premise 3 has a neutral, no contradiction
    assert torch.equal(n[0], b["hypothesis"][1]) and torch.equal(n[1], b["hypothesis"][3])


def test_losses_values() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss, d_pos, d_neg = triplet_loss(a, a, -a, 0.5, "cosine")
    assert loss.item() == 0 and d_pos.tolist() == [0, 0] and d_neg.tolist() == [2, 2]
    loss, _, _ = triplet_loss(a, -a, a, 0.5, "euclidean")
    assert loss.item() == pytest.approx(2 + 0.5)
    nce, sim = info_nce(a, a, 0.05)
    assert sim.shape == (2, 2) and nce.item() < 1e-6


def test_generate_starts_with_bos_and_stops_at_eos() -> None:
    t = make()
    toks, lengths = t.generate(None, n=5, max_len=12, temperature=1.0, top_k=5, seed=1)
    assert toks.shape[0] == 5 and toks.shape[1] <= 13 and (toks[:, 0] == BOS).all()
    for row, n in zip(toks.tolist(), lengths.tolist(), strict=True):
        body = row[1:n]
        assert PAD not in body and 0 not in body and BOS not in body
        assert EOS not in body[:-1]
        assert all(tok == PAD for tok in row[n:])
    again, _ = t.generate(None, n=5, max_len=12, temperature=1.0, top_k=5, seed=1)
    assert torch.equal(toks, again)
    prompt = torch.tensor([BOS, 5, 6])
    toks, lengths = t.generate(prompt, n=2, max_len=4, temperature=0.5, top_k=0, seed=2)
    assert toks[:, :3].tolist() == [[BOS, 5, 6]] * 2 and (lengths <= 7).all()
    # out-of-vocabulary buckets (the last ids) are never sampled, even when the LM favours them
    t = make(oov_buckets=V // 2)
    with torch.no_grad():
        t.model.lm_head.decoder.bias[V // 2 :] = 50.0
    toks, lengths = t.generate(None, n=4, max_len=10, temperature=1.0, top_k=0, seed=3)
    assert all(tok < V // 2 for row, n in zip(toks.tolist(), lengths.tolist(), strict=True) for tok in row[:n])


def test_non_finite_loss_skips_the_step() -> None:
    t = make()
    with torch.no_grad():
        t.model.nli_head.layers[-1].weight.fill_(float("nan"))
    res, _ = t.train_step("siamese", pair_batch(), {})
    assert res["finite"] is False and res["loss"] is None and res["stepped"] is False and t.step == 0


def test_training_raises_no_warnings() -> None:
    """Weight dropout patches nothing into a module: no warnings from any objective (errors here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = make(lr=1e-3)
        for objective in OBJECTIVES:
            t.train_step(objective, batch_for(objective), {})
            t.eval_step(objective, batch_for(objective), {})


@pytest.mark.parametrize("objective", ["triplet", "contrastive"])
def test_a_batch_without_entailment_trains_nothing(objective: str) -> None:
    t = make(lr=1e-2)
    before = [p.detach().clone() for p in t.model.parameters()]
    b = {**pair_batch(), "labels": torch.tensor([1, 2, 1, 2, 2, 2, 1, 1])}  # contradictions and neutrals only
    res, _ = t.train_step(objective, b, {})
    assert res == {"loss": None, "count": 0, "correct": 0, "finite": True, "stepped": False, "step": 0}
    assert t.eval_step(objective, b, {})[0] == {"loss": 0.0, "count": 0, "correct": 0}
    assert all(torch.equal(p, q) for p, q in zip(t.model.parameters(), before, strict=True))
    if objective == "triplet":  # one entailment and no contradiction: no negative either
        b["labels"] = torch.tensor([0, 1, 1, 1, 1, 1, 1, 1])
        assert t.train_step(objective, b, {})[0]["count"] == 0


def test_non_finite_gradients_skip_the_step_as_non_finite() -> None:
    t = make()
    t.model.nli_head.layers[-1].weight.register_hook(lambda g: g * float("inf"))
    res, _ = t.train_step("siamese", pair_batch(), {})
    assert res["loss"] is not None and res["finite"] is False and res["stepped"] is False
    assert res["grad_norm"] is None and t.step == 0
    assert all(p.grad is None for p in t.model.parameters())

"""SHA-RNN (models/sha_rnn.py): causality with and without memory, batch and padding invariance of every pooling,
memory carried and reset as the LSTM states are, checkpoints and resume, init refusing another architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, built_session, call
from test_awd_lstm import VECTOR_OPTIONS, assert_batch_invariant, perturb_mixes, sentences
from test_similarity_objectives import scored_batch
from test_supcon import grouped_batch
from test_training import V, lm_batch, pair_batch, sents

from bridge_backend.checkpoints import CheckpointMismatch, load_checkpoint, save_checkpoint
from bridge_backend.errors import BadArgs, BridgeError
from bridge_backend.models import AWDLSTM, AWDLSTMConfig, BridgeModel, HeadConfig
from bridge_backend.models.archs import sha_rnn_presets
from bridge_backend.models.pooling import POOL_LAYERS, POOLS
from bridge_backend.models.sha_rnn import SHARNN
from bridge_backend.objectives import OBJECTIVES
from bridge_backend.training import TrainConfig, Trainer, seed_everything

SHA = {**TINY, "arch": "sha_rnn"}


def cfg(**kw) -> AWDLSTMConfig:
    return AWDLSTMConfig(vocab_sz=V, arch="sha_rnn", **{**sha_rnn_presets["tiny"], **kw})


def make(seed: int = 0, head: dict | None = None, **kw) -> Trainer:
    seed_everything(seed)
    train_keys = set(TrainConfig.__dataclass_fields__)
    tc = TrainConfig(**{k: v for k, v in kw.items() if k in train_keys}, seed=seed)
    mc = cfg(**{k: v for k, v in kw.items() if k not in train_keys})
    return Trainer(BridgeModel(mc, HeadConfig(**(head or {"head_hidden": 32}))), tc, torch.device("cpu"))


def stream(n: int, seed: int) -> torch.Tensor:
    return torch.randint(4, V, (2, n), generator=torch.Generator().manual_seed(seed))  # [bs=2, n]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_shapes_attention_in_the_second_to_last_block(n_layers: int) -> None:
    enc = SHARNN(cfg(n_layers=n_layers))
    outs, hidden = enc(*sentences([5, 3, 7]))
    assert [o.shape for o in outs] == [(3, 7, 16)] * n_layers
    at = max(n_layers - 2, 0)
    assert [block.attn is not None for block in enc.rnns] == [i == at for i in range(n_layers)]
    assert [len(h) for h in hidden] == [3 if i == at else 2 for i in range(n_layers)]


@pytest.mark.parametrize("with_memory", [False, True])
def test_causality_a_later_token_never_changes_an_earlier_output(with_memory: bool) -> None:
    torch.manual_seed(0)
    enc = SHARNN(cfg(n_layers=3, mem_len=8)).eval()
    state = enc(stream(10, 1))[1] if with_memory else None
    if with_memory:
        assert state[1][2].shape == (2, 8, 16)  # the last mem_len tokens of the earlier segment
    x = stream(9, 2)
    with torch.no_grad():
        base = enc(x, None, state, with_emb=True)[0]
        for t in (0, 4, 8):
            y = x.clone()
            y[:, t] = (y[:, t] + 1 - 4) % (V - 4) + 4  # another word at t
            changed = enc(y, None, state, with_emb=True)[0]
            for a, b in zip(base, changed, strict=True):
                torch.testing.assert_close(a[:, :t], b[:, :t], atol=0, rtol=0)
                assert not torch.allclose(a[:, t], b[:, t])  # ... and position t does see it


def test_memory_is_used_bounded_and_each_row_its_own() -> None:
    torch.manual_seed(0)
    enc = SHARNN(cfg(mem_len=5)).eval()
    first, x = stream(7, 1), stream(4, 2)
    with torch.no_grad():
        _, state = enc(first)
        fresh = enc(x)[0][-1]
        carried = enc(x, None, state)[0][-1]
        assert not torch.allclose(fresh, carried)  # the memory (and LSTM state) reach the next segment
        # only the LSTM state, no memory: differs from with memory
        no_mem = [tuple(s[:2]) + ((s[2][:, :0],) if len(s) == 3 else ()) for s in state]
        assert not torch.allclose(enc(x, None, no_mem)[0][-1], carried)
        _, state2 = enc(x, None, state)
        assert state2[0][2].shape == (2, 5, 16)  # bounded by mem_len
        # row 1's memory and tokens never reach row 0
        other = [tuple(t.clone() for t in s) for s in state]
        other[0][2][1] += 1.0
        torch.testing.assert_close(enc(x, None, other)[0][-1][0], carried[0], atol=0, rtol=0)


@pytest.mark.parametrize("backwards", [False, True])
def test_sentence_attention_full_sees_the_whole_sentence_causal_is_the_lms(backwards: bool) -> None:
    """full: an earlier token's state changes with a later token of its sentence (the reading order's); causal: a
    sentence's states are exactly what the LM computes for its tokens from a fresh state."""
    torch.manual_seed(0)
    full = SHARNN(cfg(n_layers=3, backwards=backwards)).eval()
    causal = SHARNN(cfg(n_layers=3, backwards=backwards, sentence_attention="causal")).eval()
    causal.load_state_dict(full.state_dict())
    x, lengths = sentences([7, 7])
    y = x.clone()
    y[:, 0 if backwards else 6] = (y[:, 0 if backwards else 6] + 1 - 4) % (V - 4) + 4  # the last token read differs
    with torch.no_grad():
        a, b = full(x, lengths)[0][-1], full(y, lengths)[0][-1]  # [2, 7, d], in reading order
        assert not torch.allclose(a[:, :6], b[:, :6])  # the first tokens read see the last one
        a, b = causal(x, lengths)[0][-1], causal(y, lengths)[0][-1]
        torch.testing.assert_close(a[:, :6], b[:, :6], atol=0, rtol=0)
        lm_x = causal.reading_order(x, lengths)
        for got, lm in zip(causal(x, lengths)[0], causal(lm_x)[0], strict=True):
            torch.testing.assert_close(got, lm, atol=1e-6, rtol=1e-6)
        # full: a sentence's states are not the LM's, and no LM memory reaches it
        assert not torch.allclose(full(x, lengths)[0][-1][:, :6], full(lm_x)[0][-1][:, :6])
        memory_only = [(torch.zeros_like(s[0]), torch.zeros_like(s[1]), *s[2:]) for s in full(stream(10, 1))[1]]
        assert memory_only[1][2].size(1) == 10  # the attention block (the second of three)
        torch.testing.assert_close(full(x, lengths, memory_only)[0][-1], full(x, lengths)[0][-1], atol=0, rtol=0)


@pytest.mark.parametrize("sentence_attention", ["full", "causal"])
@pytest.mark.parametrize("pool_kind", POOLS)
@pytest.mark.parametrize("layers", POOL_LAYERS)
def test_batch_invariance(pool_kind: str, layers: str, sentence_attention: str) -> None:
    """A sentence's vector alone equals its vector among longer and shorter batch-mates, padding of any content."""
    torch.manual_seed(0)
    c = cfg(n_layers=3, sentence_attention=sentence_attention)
    assert_batch_invariant(BridgeModel(c, HeadConfig(pool=pool_kind, pool_layers=layers)).eval())


# with the scalar mix, the classifier's own mix too (head_mix: what the NLI head reads of each sentence)
MIX_OPTIONS = {**VECTOR_OPTIONS, "head_mix": {"head_mix": True, "pool_emb": True, "head_pool": "max"}}


@pytest.mark.parametrize("sentence_attention", ["full", "causal"])
@pytest.mark.parametrize("options", list(MIX_OPTIONS))
@pytest.mark.parametrize("direction", ["forward", "backwards", "dual_lm"])
def test_batch_invariance_with_vector_options(options: str, direction: str, sentence_attention: str) -> None:
    torch.manual_seed(0)
    hc = HeadConfig(pool="concat", pool_layers="mix", dual_lm=direction == "dual_lm", **MIX_OPTIONS[options])
    c = cfg(backwards=direction == "backwards", sentence_attention=sentence_attention)
    m = BridgeModel(c, hc, torch.rand(V) * 2.5 + 0.5).eval()
    perturb_mixes(m)
    if hc.sif:
        x, lens = sentences([(i % 9) + 1 for i in range(40)], seed=1)
        Trainer(m, TrainConfig(), torch.device("cpu")).fit_pc(x, lens)
    assert_batch_invariant(m)


def test_lm_memory_carries_and_resets_with_the_hidden_state() -> None:
    t = make(drop_mult=0.0)
    b = lm_batch()
    first, _ = t.eval_step("lm", b, {"reset": True})
    assert t.lm_state["eval"][0][2].shape == (4, 13, 16)  # the attention layer's memory, detached
    assert not t.lm_state["eval"][0][2].requires_grad
    carried, _ = t.eval_step("lm", b, {})
    again, _ = t.eval_step("lm", b, {"reset": True})
    assert first["loss"] == again["loss"] != carried["loss"]
    t.train_step("lm", b, {})
    assert t.lm_state["train"][0][2].shape[1] == 13
    # a sentence's vector never depends on what the LM read before it
    x, lengths = sents([3, 6, 4], 9)
    before = t.encode(x, lengths)
    t.eval_step("lm", lm_batch(seed=3), {})
    torch.testing.assert_close(t.encode(x, lengths), before, atol=0, rtol=0)


def test_reset_state_op_forgets_the_memory() -> None:
    s = built_session(**SHA)
    b = {k: v.int() for k, v in lm_batch().items()}
    fresh = call(s, "eval_step", {"objective": "lm"}, b).result["loss"]
    carried = call(s, "eval_step", {"objective": "lm"}, b).result["loss"]
    call(s, "reset_state", {})
    assert s.trainer.lm_state == {}
    assert call(s, "eval_step", {"objective": "lm"}, b).result["loss"] == fresh != carried


def sha_batch_for(objective: str) -> dict[str, torch.Tensor]:
    """A small batch of each objective's tensors (the similarity and group objectives' from their own tests)."""
    if objective in ("cosent", "cosine_mse"):
        return scored_batch()
    if objective == "supcon":
        return grouped_batch()
    if objective == "simcse":
        x, lengths = sents([4, 6, 3, 5, 7, 2], 5)
        return {"x": x, "lengths": lengths}
    return lm_batch() if objective == "lm" else pair_batch()


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_every_objective_trains_and_gradients_reach_the_attention(softmax: str) -> None:
    for objective in OBJECTIVES:  # each from fresh weights: one objective's optimizer state is not the next's
        # SimCSE's positives are two dropout masks of one sentence: it needs its dropout
        cutoffs = [10, 20] if softmax == "adaptive" else []
        t = make(lr=1e-2, drop_mult=0.5 if objective == "simcse" else 0.0, softmax=softmax, cutoffs=cutoffs)
        b = sha_batch_for(objective)
        losses = [t.train_step(objective, b, {})[0]["loss"] for _ in range(6)]
        assert losses[-1] < losses[0], (objective, losses)
    attn = t.model.encoder.rnns[0].attn
    assert attn is not None and all(p.grad is None for p in attn.parameters())  # zeroed after each step ...
    t.model.train()
    t.model.lm(lm_batch()["x"], None)[0].sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in attn.parameters())  # ... reached before


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_each_objective_sends_gradients_through_the_attention_block(objective: str) -> None:
    t = make(lr=1e-3, accum_steps=2, drop_mult=0.5)  # accum 2: the grads stay after the first micro-batch
    res, _ = t.train_step(objective, sha_batch_for(objective), {})
    assert res["stepped"] is False and res["finite"] is True
    block = t.model.encoder.rnns[SHARNN.attention_layer(t.model.cfg)]
    assert block.attn is not None
    for name, p in block.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), (objective, name)


def test_generate_attends_to_the_prompt_through_the_memory() -> None:
    t = make()
    toks, lengths = t.generate(torch.tensor([2, 5, 6]), n=3, max_len=6, temperature=1.0, top_k=0, seed=1)
    assert toks.shape[0] == 3 and bool((toks[:, :3] == torch.tensor([2, 5, 6])).all()) and int(lengths.max()) <= 9
    # each new token is read as generate reads it: one token, the state the prompt left (LSTM states + memory)
    at = SHARNN.attention_layer(t.model.cfg)
    with torch.no_grad():
        _, _, _, h = t.model.lm(torch.tensor([[2, 5, 6]]), None)
        assert h[at][2].shape[1] == 3  # the prompt's states are the memory
        nxt = torch.tensor([[7]])
        with_memory = t.model.lm(nxt, h)[0][:, -1]
        forgotten = [(*s[:2], s[2][:, :0]) if i == at else s for i, s in enumerate(h)]  # the memory truncated to 0
        without = t.model.lm(nxt, forgotten)[0][:, -1]
    assert not torch.allclose(with_memory, without)


def test_checkpoint_round_trip_and_exact_resume(tmp_path: Path) -> None:
    a = make(seed=1, lr=1e-2)
    for objective, b in (("lm", lm_batch()), ("siamese", pair_batch())):
        a.train_step(objective, b, {})
    path = tmp_path / "step2.pt"
    save_checkpoint(a, path)
    x, lengths = sents([3, 6, 4], 9)
    va = a.encode(x, lengths)
    steps = (("lm", lm_batch(), {"reset": True}), ("siamese", pair_batch(), {}))
    la = [a.train_step(o, bb, opts)[0]["loss"] for o, bb, opts in steps]
    b = make(seed=99, lr=1e-2)
    assert load_checkpoint(b, path, "all")["step"] == 2
    torch.testing.assert_close(b.encode(x, lengths), va, atol=0, rtol=0)
    lb = [b.train_step(o, bb, opts)[0]["loss"] for o, bb, opts in steps]
    assert la == lb
    # a session with no model rebuilds a SHA-RNN from the checkpoint's own config
    s = built_session(**TINY)
    r = call(s, "load", {"path": str(path), "rebuild": True}).result
    assert r["built"] and r["config"]["model"]["arch"] == "sha_rnn" and isinstance(s.trainer.model.encoder, SHARNN)


def test_another_architecture_is_refused_naming_both(tmp_path: Path) -> None:
    awd, sha = built_session(**TINY), built_session(**SHA)
    awd_path, sha_path = str(tmp_path / "awd.pt"), str(tmp_path / "sha.pt")
    call(awd, "save", {"path": awd_path})
    call(sha, "save", {"path": sha_path})
    ident = {"vocab_map": torch.arange(V, dtype=torch.int32)}
    with pytest.raises(
        BridgeError, match=r"awd.pt does not fit this model \(pretrained vs this\): arch awd_lstm vs sha_rnn"
    ) as e:
        call(sha, "init_from", {"path": awd_path}, ident)
    assert e.value.code == "init_mismatch"
    with pytest.raises(BridgeError, match=r"arch sha_rnn vs awd_lstm"):
        call(awd, "init_from", {"path": sha_path}, ident)
    with pytest.raises(CheckpointMismatch, match=r"architecture differs: arch \(checkpoint 'awd_lstm', model 'sha_rnn'\)"):
        load_checkpoint(sha.trainer, awd_path, "weights")
    # nor an encoder-only partial load (allow_partial skips the size checks, never the architecture's)
    for parts in ("encoder", "weights"):
        with pytest.raises(CheckpointMismatch, match=r"architecture differs: arch \(checkpoint 'sha_rnn', model 'awd_lstm'\)"):
            load_checkpoint(awd.trainer, sha_path, parts, allow_partial=True)
    # the same architecture starts: every encoder weight loaded
    fresh = built_session(**{**SHA, "seed": 3})
    r = call(fresh, "init_from", {"path": sha_path}, ident).result
    assert r["skipped"] == [] and r["copied"] == V


def test_build_arguments() -> None:
    s = built_session(**{**SHA, "preset": "cpu_small", "vocab_sz": 100})
    model = call(s, "model_info").result["config"]["model"]
    assert (model["arch"], model["emb_sz"], model["n_hid"], model["n_layers"]) == ("sha_rnn", 200, 800, 2)
    assert call(built_session(**{k: v for k, v in SHA.items() if k != "preset"}, emb_sz=8, n_hid=32, n_layers=1), "model_info")
    for args, msg in (
        ({"preset": "ulmfit"}, "unknown preset 'ulmfit' for arch sha_rnn"),
        ({"preset": "sha_rnn_paper", "arch": "awd_lstm"}, "unknown preset 'sha_rnn_paper' for arch awd_lstm"),
        ({"n_hid": 40}, "Boom width, a multiple of emb_sz"),
        ({"bidir": True}, "sha_rnn is a one-directional LM"),
        ({"arch": "gru"}, "unknown arch 'gru'"),
        ({"sentence_attention": "bidir"}, "sentence_attention must be one of full, causal"),
    ):
        with pytest.raises(BadArgs, match=msg):
            built_session(**{**SHA, **args})


def test_each_encoder_class_refuses_the_other_arch() -> None:
    with pytest.raises(ValueError, match="AWDLSTM builds arch 'awd_lstm', the config names 'sha_rnn'"):
        AWDLSTM(cfg())
    with pytest.raises(ValueError, match="SHARNN builds arch 'sha_rnn', the config names 'awd_lstm'"):
        SHARNN(AWDLSTMConfig(vocab_sz=V, **sha_rnn_presets["tiny"]))

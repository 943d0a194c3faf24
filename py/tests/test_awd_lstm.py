"""The AWD-LSTM encoder, pooling and heads: shapes, dropouts, tying, batch invariance (every vector option too)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from bridge_backend.models import AWDLSTM, AWDLSTMConfig, BridgeModel, HeadConfig, awd_lstm_presets
from bridge_backend.models.awd_lstm import reverse_within
from bridge_backend.models.pooling import POOL_LAYERS, POOLS, pool
from bridge_backend.training import TrainConfig, Trainer

V, PAD = 40, 1


def cfg(**kw) -> AWDLSTMConfig:
    return AWDLSTMConfig(vocab_sz=V, **{**awd_lstm_presets["tiny"], **kw})


def sentences(lengths: list[int], pad: int = PAD, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lengths), max(lengths)), pad, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randint(4, V, (n,), generator=g)
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("bidir", [False, True])
def test_encoder_shapes(bidir: bool) -> None:
    c = cfg(bidir=bidir, n_layers=3)
    enc = AWDLSTM(c)
    x, lengths = sentences([5, 3, 7])
    outs, hidden = enc(x, lengths)
    n_dir = 2 if bidir else 1
    assert [o.shape for o in outs] == [(3, 7, 32 * n_dir), (3, 7, 32 * n_dir), (3, 7, 16)]
    assert [h[0].shape for h in hidden] == [(n_dir, 3, 32), (n_dir, 3, 32), (n_dir, 3, 16 // n_dir)]


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("pool_kind", POOLS)
@pytest.mark.parametrize("layers", POOL_LAYERS)
def test_head_shapes(bidir: bool, pool_kind: str, layers: str) -> None:
    m = BridgeModel(cfg(bidir=bidir), HeadConfig(pool=pool_kind, pool_layers=layers, head_hidden=8))
    x, lengths = sentences([4, 6])
    v = m.encode(x, lengths)
    assert v.shape == (2, m.vec_dim())
    assert m.classify(v, v).shape == (2, 3)
    if not bidir:
        logits, raw, dropped, h = m.lm(x, None)
        assert logits.shape == (2, 6, V) and raw.shape == dropped.shape == (2, 6, 16)


def test_bidir_has_no_lm_head() -> None:
    m = BridgeModel(cfg(bidir=True), HeadConfig())
    with pytest.raises(ValueError, match="bidirectional"):
        m.lm(sentences([3])[0], None)


def test_reverse_within_is_its_own_inverse() -> None:
    lengths = torch.tensor([3, 5, 1])
    idx = reverse_within(lengths, 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    assert torch.equal(idx.gather(1, idx), torch.arange(5).expand(3, 5))


def test_pooling_ignores_padding_and_bidir_last_is_first_token() -> None:
    x = torch.arange(2 * 4 * 2, dtype=torch.float).view(2, 4, 2)  # [bs=2, sl=4, d=2]
    x[1, 2:] = 1e6  # padding of row 1 holds huge values: must not show up
    lengths = torch.tensor([4, 2])
    assert pool(x, lengths, "max")[1].tolist() == x[1, 1].tolist()
    assert pool(x, lengths, "mean")[1].tolist() == x[1, :2].mean(0).tolist()
    assert pool(x, lengths, "last")[1].tolist() == x[1, 1].tolist()
    # bidir: forward half from the last real token, backward half from token 0
    assert pool(x, lengths, "last", bidir=True)[1].tolist() == [x[1, 1, 0].item(), x[1, 0, 1].item()]
    cat = pool(x, lengths, "concat")
    assert cat.shape == (2, 6) and cat[1, :2].tolist() == x[1, 1].tolist()


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("pool_kind", POOLS)
@pytest.mark.parametrize("layers", POOL_LAYERS)
def test_batch_invariance(bidir: bool, pool_kind: str, layers: str) -> None:
    """A sentence's vector alone equals its vector among longer and shorter batch-mates (eval mode, 1e-5)."""
    torch.manual_seed(0)
    assert_batch_invariant(BridgeModel(cfg(bidir=bidir), HeadConfig(pool=pool_kind, pool_layers=layers)).eval())


def perturb_mixes(m: BridgeModel) -> None:
    """Moves the scalar mixes away from their start (every layer alike), so that a layer mixed up would show."""
    with torch.no_grad():
        for mix in (m.layer_mix, m.head_layer_mix):
            if mix is not None:
                mix.weights.normal_()
                mix.gamma.fill_(1.7)


@pytest.mark.parametrize("head_pool", ["none", "max"])
@pytest.mark.parametrize("direction", ["forward", "backwards", "dual_lm"])
def test_batch_invariance_of_the_scalar_mixes(direction: str, head_pool: str) -> None:
    """The shared mix (the vector) and the classifier's own (head_mix), learnt shares included."""
    torch.manual_seed(0)
    mixes = {"pool_layers": "mix", "pool_emb": True, "head_mix": True}
    hc = HeadConfig(pool="mean", **mixes, head_pool=head_pool, dual_lm=direction == "dual_lm")
    m = BridgeModel(cfg(backwards=direction == "backwards"), hc).eval()
    perturb_mixes(m)
    assert_batch_invariant(m)


# The sentence-vector options, each alone and all together (sif: fitted before the check).
VECTOR_OPTIONS = {
    "pool_emb": {"pool_emb": True},
    "idf": {"pool_weighting": "idf"},
    "sif": {"sif": True},
    "proj_dim": {"proj_dim": 12},
    "head_pool": {"head_pool": "max"},
    "all": {"pool_emb": True, "pool_weighting": "idf", "sif": True, "proj_dim": 12, "head_pool": "max"},
}


@pytest.mark.parametrize("options", list(VECTOR_OPTIONS))
@pytest.mark.parametrize("direction", ["forward", "backwards", "bidir"])
@pytest.mark.parametrize("pool_kind", POOLS)
def test_batch_invariance_with_vector_options(options: str, direction: str, pool_kind: str) -> None:
    """pool_emb, idf weighting, a fitted SIF component and a projection keep a sentence's vector independent of
    its batch-mates and padding."""
    torch.manual_seed(0)
    hc = HeadConfig(pool=pool_kind, pool_layers="all", **VECTOR_OPTIONS[options])
    weights = torch.rand(V) * 2.5 + 0.5  # idf-like
    m = BridgeModel(cfg(bidir=direction == "bidir", backwards=direction == "backwards"), hc, weights).eval()
    if hc.sif:
        x, lens = sentences([(i % 9) + 1 for i in range(40)], seed=1)
        Trainer(m, TrainConfig(), torch.device("cpu")).fit_pc(x, lens)
        assert m.sif_pc is not None and m.sif_pc.norm() == pytest.approx(1.0)
    assert_batch_invariant(m)


def assert_batch_invariant(m: BridgeModel, tol: float = 1e-5) -> None:
    """Each sentence's vector alone equals its vector in a batch (any order), whatever the padding holds; on the
    model's device, within `tol` (abs and rel). The same for what the NLI classifier sees (head_inputs)."""
    for fn in (m.encode, m.head_inputs):
        assert_invariant(fn, m, tol)


def assert_invariant(fn: Callable[[Tensor, Tensor], Tensor], m: BridgeModel, tol: float) -> None:
    device = next(m.parameters()).device
    lengths = [6, 2, 9, 1, 6, 4]
    x, lens = sentences(lengths)
    # garbage (non-pad ids) in the padding must not matter either
    pad_mask = torch.arange(x.size(1)) >= lens.unsqueeze(1)
    x_garbage = torch.where(pad_mask, torch.randint(4, V, x.shape), x)
    x, x_garbage, lens = x.to(device), x_garbage.to(device), lens.to(device)
    with torch.no_grad():
        batch = fn(x, lens)
        batch_garbage = fn(x_garbage, lens)
        for i, n in enumerate(lengths):
            alone = fn(x[i : i + 1, :n], lens[i : i + 1])
            torch.testing.assert_close(batch[i : i + 1], alone, atol=tol, rtol=tol)
        torch.testing.assert_close(batch_garbage, batch, atol=tol, rtol=tol)
        # a different order of the batch gives the same vectors, in the new order
        perm = torch.tensor([3, 0, 5, 1, 4, 2], device=device)
        torch.testing.assert_close(fn(x[perm], lens[perm]), batch[perm], atol=tol, rtol=tol)


def test_weight_dropout_active_in_train_off_in_eval() -> None:
    torch.manual_seed(0)
    c = cfg(embed_p=0.0, input_p=0.0, hidden_p=0.0, weight_p=0.5, n_layers=1, emb_sz=16)
    enc = AWDLSTM(c)
    x, lengths = sentences([5, 5])
    enc.train()
    a, b = enc(x, lengths)[0][-1], enc(x, lengths)[0][-1]
    assert not torch.allclose(a, b), "two training forwards should draw different weight masks"
    enc.eval()
    e1, e2 = enc(x, lengths)[0][-1], enc(x, lengths)[0][-1]
    assert torch.equal(e1, e2)
    # eval uses the raw weights: same as a plain nn.LSTM holding them
    ref = nn.LSTM(16, 16, batch_first=True)
    layer = enc.rnns[0].fwd
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.weight_ih)
        ref.weight_hh_l0.copy_(layer.weight_hh_raw)
        ref.bias_ih_l0.copy_(layer.bias_ih)
        ref.bias_hh_l0.copy_(layer.bias_hh)
        torch.testing.assert_close(ref(enc.emb(x))[0], e1)


def test_weight_dropout_masks_whole_weights_in_training() -> None:
    torch.manual_seed(1)
    c = cfg(embed_p=0.0, input_p=0.0, hidden_p=0.0, weight_p=0.5, n_layers=1)
    enc = AWDLSTM(c).train()
    x, lengths = sentences([6, 6])
    enc(x, lengths)[0][-1].sum().backward()
    g = enc.rnns[0].fwd.weight_hh_raw.grad
    zero = (g == 0).float().mean().item()
    assert 0.3 < zero < 0.7, f"about half the hidden-to-hidden weights should get no gradient, got {zero:.2f}"
    assert (enc.rnns[0].fwd.weight_ih.grad == 0).float().mean().item() < 0.1


def test_tied_weights_share_storage() -> None:
    m = BridgeModel(cfg(), HeadConfig())
    assert m.lm_head.decoder.weight is m.encoder.emb.weight
    assert m.lm_head.decoder.weight.data_ptr() == m.encoder.emb.weight.data_ptr()
    assert sum(1 for _ in m.parameters() if _ is m.encoder.emb.weight) == 1
    untied = BridgeModel(cfg(tie_weights=False), HeadConfig())
    assert untied.lm_head.decoder.weight.data_ptr() != untied.encoder.emb.weight.data_ptr()


def test_param_groups_cover_every_parameter_once() -> None:
    m = BridgeModel(cfg(n_layers=3), HeadConfig())
    groups = m.param_groups()
    assert [n for n, _ in groups] == ["emb", "rnn0", "rnn1", "rnn2", "head"]
    ids = [id(p) for _, ps in groups for p in ps]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))


def test_embedding_dropout_drops_whole_words() -> None:
    torch.manual_seed(0)
    enc = AWDLSTM(cfg(embed_p=0.5)).train()
    x = torch.full((3, 8), 7)  # one word everywhere: kept or dropped as a whole
    e = enc.embed(x)
    assert torch.equal(e, torch.zeros_like(e)) or torch.allclose(e, enc.emb(x) * 2)


def test_flat_weight_views_give_the_same_outputs_and_gradients() -> None:
    """The cuDNN path (one flat buffer of views) computes what the separate weights compute."""
    from bridge_backend.models.awd_lstm import flat_views

    torch.manual_seed(0)
    layer = AWDLSTM(cfg(n_layers=1)).rnns[0].fwd.eval()
    ws = [layer.weight_ih, layer.weight_hh_raw, layer.bias_ih, layer.bias_hh]
    views = flat_views(ws)
    assert all(v.untyped_storage().data_ptr() == views[0].untyped_storage().data_ptr() for v in views)
    assert [v.data_ptr() for v in views] == sorted(v.data_ptr() for v in views)
    x = torch.randn(2, 5, layer.n_in)
    h = (torch.zeros(1, 2, layer.n_out), torch.zeros(1, 2, layer.n_out))
    outs, grads = [], []
    for params in (ws, flat_views(ws)):
        out = torch._VF.lstm(x, h, params, True, 1, 0.0, False, False, True)[0]
        outs.append(out)
        grads.append(torch.autograd.grad(out.pow(2).sum(), ws))
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)

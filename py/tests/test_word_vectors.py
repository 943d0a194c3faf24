"""init_word_vectors: pretrained word vectors (GloVe and the like) as a freshly built model's embedding rows."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, call

from bridge_backend.errors import BadArgs
from bridge_backend.session import Session


def built(**extra) -> Session:
    s = Session(lambda *_: None, "cpu")
    call(s, "build", {**TINY, **extra})
    return s


def emb(s: Session, half: str | None = None) -> torch.Tensor:
    enc = s.trainer.model.encoder if half is None else getattr(s.trainer.model.encoder, half)
    return enc.emb.weight.detach().clone()


def vectors_for(vocab_sz: int, k: int, known_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    vectors = torch.randn(vocab_sz, k, generator=g) * 5  # GloVe-like norms, far from the random rows'
    known = torch.zeros(vocab_sz, dtype=torch.uint8)
    known[known_ids] = 1
    return vectors, known


def test_known_rows_keep_the_vectors_geometry_and_the_random_rows_norm() -> None:
    s = built()
    before = emb(s)
    vocab_sz, emb_sz = before.shape
    known_ids = list(range(4, 30))
    vectors, known = vectors_for(vocab_sz, 6, known_ids)
    r = call(s, "init_word_vectors", {"seed": 1}, {"vectors": vectors, "known": known}).result
    after = emb(s)
    assert r["copied"] == len(known_ids) and r["dim"] == 6 and r["emb_sz"] == emb_sz
    # the other rows (xxunk, the pad row, 30..) are untouched
    others = [i for i in range(vocab_sz) if i not in known_ids]
    torch.testing.assert_close(after[others], before[others], rtol=0, atol=0)
    # cosines and norm ratios between known words are the vectors' (an orthonormal map, one scale)
    v, e = vectors[known_ids], after[known_ids]
    torch.testing.assert_close(e @ e.T, (v @ v.T) * r["scale"] ** 2, rtol=1e-4, atol=1e-5)
    # scaled to the random rows' mean norm, not GloVe's
    random_norm = before[[i for i in others if i != 1]].norm(dim=1).mean()
    torch.testing.assert_close(e.norm(dim=1).mean(), random_norm, rtol=1e-4, atol=0)


def test_the_same_seed_places_the_same_rows_and_the_model_still_trains() -> None:
    a, b = built(), built()
    vectors, known = vectors_for(emb(a).shape[0], 6, [5, 6, 7])
    for s in (a, b):
        call(s, "init_word_vectors", {"seed": 7}, {"vectors": vectors, "known": known})
    torch.testing.assert_close(emb(a), emb(b), rtol=0, atol=0)
    c = built()
    call(c, "init_word_vectors", {"seed": 8}, {"vectors": vectors, "known": known})
    assert not torch.allclose(emb(a)[5], emb(c)[5])
    # the placed rows are ordinary parameters: a step moves them
    from test_training import pair_batch

    x = pair_batch(4)
    before = emb(a)
    call(a, "train_step", {"objective": "siamese"}, x)
    assert not torch.equal(before, emb(a))


def test_full_width_vectors_are_copied_as_they_are_up_to_the_scale() -> None:
    s = built()
    vocab_sz, emb_sz = emb(s).shape
    vectors, known = vectors_for(vocab_sz, emb_sz, [4, 9])
    r = call(s, "init_word_vectors", {}, {"vectors": vectors, "known": known}).result
    torch.testing.assert_close(emb(s)[[4, 9]], vectors[[4, 9]] * r["scale"], rtol=1e-5, atol=1e-6)


def test_every_encoder_of_a_dual_lm_model_takes_them() -> None:
    s = built(dual_lm=True)
    vectors, known = vectors_for(emb(s, "fwd").shape[0], 6, [4, 5, 6])
    call(s, "init_word_vectors", {"seed": 2}, {"vectors": vectors, "known": known})
    fwd, bwd = emb(s, "fwd"), emb(s, "bwd")
    cos = [torch.nn.functional.normalize(w[[4, 5, 6]], dim=1) for w in (fwd, bwd)]  # each its own scale
    torch.testing.assert_close(cos[0] @ cos[0].T, cos[1] @ cos[1].T, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("rows", "k", "bad", "message"),
    [
        (39, 6, None, "one row per word of the model's 40"),
        (40, 999, None, "do not fit the model's"),
        (40, 6, "nan", "not finite"),
    ],
)
def test_bad_vectors_are_named(rows: int, k: int, bad: str | None, message: str) -> None:
    s = built()
    vectors, known = vectors_for(rows, k, [4, 5])
    if bad == "nan":
        vectors[4, 0] = float("nan")
    with pytest.raises(BadArgs, match=message):
        call(s, "init_word_vectors", {}, {"vectors": vectors, "known": known})

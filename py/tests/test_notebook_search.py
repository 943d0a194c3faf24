"""bridge_notebook's search verbs without a run: cos_sim and semantic_search against a brute force."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "notebooks"))

from bridge_notebook import cos_sim, semantic_search  # noqa: E402


def brute_force(q: np.ndarray, c: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    out = []
    for qv in q.astype(np.float64):
        scores = []
        for i, cv in enumerate(c.astype(np.float64)):
            n = np.linalg.norm(qv) * np.linalg.norm(cv)
            scores.append((i, 0.0 if n == 0 else float(qv @ cv / n)))
        out.append(sorted(scores, key=lambda t: (-t[1], t[0]))[:k])
    return out


@pytest.mark.parametrize("dim", [3, 17])
@pytest.mark.parametrize("k", [1, 4, 500])
def test_semantic_search_equals_brute_force(dim: int, k: int) -> None:
    rng = np.random.default_rng(dim)
    corpus = rng.standard_normal((300, dim)).astype(np.float32)
    corpus[30] = 0  # a zero vector scores 0
    corpus[10] = corpus[20]  # a tie: the lower id first
    queries = rng.standard_normal((7, dim)).astype(np.float32)
    queries[0] = corpus[20]
    got = semantic_search(queries, corpus, top_k=k)
    want = brute_force(queries, corpus, k)
    assert [len(h) for h in got] == [min(k, 300)] * 7
    for hits, ref in zip(got, want, strict=True):
        assert [h["score"] for h in hits] == pytest.approx([s for _, s in ref], abs=1e-5)
    if k >= 2:  # the query is row 20, which row 10 repeats: both, the lower id first
        assert [h["corpus_id"] for h in got[0][:2]] == [10, 20]


def test_cos_sim_and_bad_input() -> None:
    a = np.array([[1, 0], [0, 2], [0, 0]], dtype=np.float32)
    b = np.array([[3, 0], [1, 1]], dtype=np.float32)
    s = cos_sim(a, b)
    assert s.shape == (3, 2)
    assert s == pytest.approx(np.array([[1, 2**-0.5], [0, 2**-0.5], [0, 0]]), abs=1e-6)
    with pytest.raises(ValueError, match="top_k"):
        semantic_search(a, b, top_k=0)
    with pytest.raises(ValueError, match="one dim"):
        semantic_search(a, np.zeros((2, 3), dtype=np.float32))

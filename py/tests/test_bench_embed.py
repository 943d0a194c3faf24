"""The native side of `bridge bench embed`: its loop returns every row's vector in input order."""

from __future__ import annotations

import numpy as np
import torch

from bridge_backend.bench_embed import encode_all
from bridge_backend.ops import OPS
from bridge_backend.session import Session


def test_encode_all_keeps_input_order() -> None:
    s = Session(lambda *_: None, "cpu")
    OPS["build"](s, {"preset": "tiny", "vocab_sz": 30, "seed": 0}, {})
    rows = [[2, 5, 6, 7], [2, 9], [2, 4, 4, 4, 4, 8], [2, 11, 12]]
    offsets = np.cumsum([0] + [len(r) for r in rows])
    ids = np.concatenate(rows)
    out = encode_all(s.trainer, offsets, ids, bs=2, pad_id=1, device=torch.device("cpu"))
    for i, r in enumerate(rows):
        alone = s.trainer.encode(torch.tensor([r]), torch.tensor([len(r)]))
        assert torch.allclose(out[i], alone[0], atol=1e-6)

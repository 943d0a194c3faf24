"""fastai AWD-LSTM import: exact logits against plain torch, the layouts fastai saves, a safe vocabulary
unpickler, and `init_from` (vocabulary matching, size / direction mismatches)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import result as call
from torch import Tensor, nn

from bridge_backend.errors import BridgeError
from bridge_backend.fastai_import import FastaiImportError, import_fastai, load_itos
from bridge_backend.session import Session

SPECIALS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
V, EMB, HID, LAYERS = 40, 12, 20, 3


def itos(n: int = V) -> list[str]:
    return SPECIALS + [f"w{i}" for i in range(n - len(SPECIALS))]


def fastai_state(seed: int, layout: str = "v2") -> dict[str, Tensor]:
    """A fastai LM state dict with random weights: emb V x EMB, LSTMs EMB -> HID -> HID -> EMB, tied decoder."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape: torch.randn(*shape, generator=g) * 0.3  # noqa: E731
    emb = rnd(V, EMB)
    sd: dict[str, Tensor] = {"0.encoder.weight": emb}
    sd["0.encoder_with_dropout.embed.weight" if layout == "v0.7" else "0.encoder_dp.emb.weight"] = emb.clone()
    dims = [EMB, HID, HID, EMB]
    for i in range(LAYERS):
        n_in, n_out = dims[i], dims[i + 1]
        raw_hh = rnd(4 * n_out, n_out)
        raw_key = f"0.rnns.{i}.module.weight_hh_l0_raw" if layout == "v0.7" else f"0.rnns.{i}.weight_hh_l0_raw"
        sd[raw_key] = raw_hh
        sd[f"0.rnns.{i}.module.weight_ih_l0"] = rnd(4 * n_out, n_in)
        sd[f"0.rnns.{i}.module.weight_hh_l0"] = torch.zeros(4 * n_out, n_out)  # the last dropped copy: not the model
        sd[f"0.rnns.{i}.module.bias_ih_l0"] = rnd(4 * n_out)
        sd[f"0.rnns.{i}.module.bias_hh_l0"] = rnd(4 * n_out)
    sd["1.decoder.weight"] = emb.clone()
    sd["1.decoder.bias"] = rnd(V)
    if layout == "dataparallel":
        sd = {f"module.{k}": v for k, v in sd.items()}
    return sd


def write_fastai(tmp: Path, sd: dict[str, Tensor], wrap: bool = False) -> tuple[Path, Path]:
    w, v = tmp / "lstm_fwd.pth", tmp / "itos_wt103.pkl"
    torch.save({"model": sd, "opt": {}} if wrap else sd, w)
    v.write_bytes(pickle.dumps(itos()))
    return w, v


def reference_logits(sd: dict[str, Tensor], x: Tensor) -> Tensor:
    """The LM's logits computed with plain torch modules from the fastai tensors: x [bs, sl] -> [bs, sl, V]."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    emb = nn.Embedding(V, EMB)
    emb.weight.data.copy_(sd["0.encoder.weight"])
    out = emb(x)
    dims = [EMB, HID, HID, EMB]
    for i in range(LAYERS):
        lstm = nn.LSTM(dims[i], dims[i + 1], batch_first=True)
        raw = sd.get(f"0.rnns.{i}.weight_hh_l0_raw", sd.get(f"0.rnns.{i}.module.weight_hh_l0_raw"))
        lstm.weight_ih_l0.data.copy_(sd[f"0.rnns.{i}.module.weight_ih_l0"])
        lstm.weight_hh_l0.data.copy_(raw)
        lstm.bias_ih_l0.data.copy_(sd[f"0.rnns.{i}.module.bias_ih_l0"])
        lstm.bias_hh_l0.data.copy_(sd[f"0.rnns.{i}.module.bias_hh_l0"])
        out, _ = lstm(out)  # [bs, sl, dims[i + 1]]
    dec = nn.Linear(EMB, V)
    dec.weight = emb.weight  # tied
    dec.bias.data.copy_(sd["1.decoder.bias"])
    return dec(out)


def imported_session(tmp: Path, sd: dict[str, Tensor], backwards: bool = False, wrap: bool = False) -> tuple[Session, dict]:
    w, v = write_fastai(tmp, sd, wrap)
    res = import_fastai(w, v, tmp / "model.pt", backwards)
    s = Session(lambda *_: None, "cpu")
    call(s, "load", {"path": res["path"], "parts": "weights"})  # builds from the checkpoint's own config
    return s, res


@pytest.mark.parametrize("layout,wrap", [("v2", False), ("v0.7", False), ("dataparallel", False), ("v2", True)])
@torch.no_grad()
def test_imported_lm_logits_equal_plain_torch(tmp_path: Path, layout: str, wrap: bool) -> None:
    sd = fastai_state(1, layout)
    s, res = imported_session(tmp_path, sd, wrap=wrap)
    assert res["config"] == {
        "vocab_sz": V,
        "emb_sz": EMB,
        "n_hid": HID,
        "n_layers": LAYERS,
        "tie_weights": True,
        "out_bias": True,
        "backwards": False,
    }
    assert res["itos"] == itos()
    model = s.trainer.model.eval()
    x = torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(2))
    logits, *_ = model.lm(x, None)
    assert (logits - reference_logits(sd, x)).abs().max().item() <= 1e-5


@torch.no_grad()
def test_backward_model_reads_reversed_input(tmp_path: Path) -> None:
    sd = fastai_state(3)
    s, res = imported_session(tmp_path, sd, backwards=True)
    assert res["config"]["backwards"] is True
    model = s.trainer.model.eval()
    # an LM stream comes reversed from the data side: the model scores it as given
    stream = torch.randint(0, V, (2, 11), generator=torch.Generator().manual_seed(4))
    rev = stream.flip(1)
    logits, *_ = model.lm(rev, None)
    assert (logits - reference_logits(sd, rev)).abs().max().item() <= 1e-5
    # sentences: each is read reversed within its length, so its top states are the reference's on the flipped sentence
    lengths = torch.tensor([7, 4])
    x = torch.full((2, 7), 1)
    x[0], x[1, :4] = stream[0, :7], stream[1, :4]
    outs, _ = model.encoder(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        flipped = x[b : b + 1, :n].flip(1)
        ref = reference_logits(sd, flipped)
        ours = model.lm_head(outs[-1][b : b + 1, :n])[0]
        assert (ours - ref).abs().max().item() <= 1e-5


class Payload:
    def __reduce__(self):  # what a malicious .pkl does: call a function on load
        return (os.system, ("touch pwned-by-pickle",))


def test_vocab_unpickler_refuses_code_and_non_strings(tmp_path: Path) -> None:
    bad = tmp_path / "itos.pkl"
    bad.write_bytes(pickle.dumps(["xxunk", Payload()]))
    with pytest.raises(FastaiImportError, match="refusing posix.system|refusing os.system|refusing nt.system"):
        load_itos(bad)
    assert not Path("pwned-by-pickle").exists() and not (tmp_path / "pwned-by-pickle").exists()
    bad.write_bytes(pickle.dumps(["xxunk", 3]))
    with pytest.raises(FastaiImportError, match="item 1 is a int"):
        load_itos(bad)
    bad.write_bytes(pickle.dumps({"xxunk": 0}))
    with pytest.raises(FastaiImportError, match="list of strings"):
        load_itos(bad)


def test_weights_that_need_unpickling_are_refused(tmp_path: Path) -> None:
    w, v = write_fastai(tmp_path, fastai_state(5))
    torch.save({"0.encoder.weight": Payload()}, w)
    with pytest.raises(FastaiImportError, match=r"holds a pickled (posix|os|nt)\.system .* never unpickled here") as e:
        import_fastai(w, v, tmp_path / "model.pt", False)
    assert not Path("pwned-by-pickle").exists()
    assert "weights_only" not in str(e.value)  # torch's advice to load it with code execution on is not passed on


def test_a_weights_file_that_is_no_torch_file_is_named_by_its_first_bytes(tmp_path: Path) -> None:
    w, v = write_fastai(tmp_path, fastai_state(5))
    w.write_text("premise\thypothesis\tlabel\n")
    with pytest.raises(FastaiImportError) as e:
        import_fastai(w, v, tmp_path / "model.pt", False)
    assert str(e.value) == f"{w}: not a torch weights file (25 bytes, starts b'prem'); fastai writes them with learn.save (.pth)"
    whole = tmp_path / "whole.pth"
    torch.save(fastai_state(5), whole)
    w.write_bytes(whole.read_bytes()[:200])  # a torn copy
    with pytest.raises(FastaiImportError, match=r"a torch file that is truncated or corrupt \(200 bytes; "):
        import_fastai(w, v, tmp_path / "model.pt", False)
    # torch's older format (a pickle, as older fastai weights are) cut short is torn; a whole pickle of something
    # else (the vocabulary given as the weights) is not a torch file, whatever its protocol
    torch.save(fastai_state(5), whole, _use_new_zipfile_serialization=False)
    w.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(FastaiImportError, match=r"a torch file that is truncated or corrupt \(300 bytes; "):
        import_fastai(w, v, tmp_path / "model.pt", False)
    for protocol in (2, 4, 5):
        w.write_bytes(pickle.dumps(itos(V), protocol=protocol))
        with pytest.raises(
            FastaiImportError,
            match=r"not a torch weights file \(\d+ bytes, starts b'\\x80.*: a Python pickle, not torch.save's\)",
        ):
            import_fastai(w, v, tmp_path / "model.pt", False)


def test_vocabulary_and_weights_must_agree(tmp_path: Path) -> None:
    w, v = write_fastai(tmp_path, fastai_state(5))
    v.write_bytes(pickle.dumps(itos(V - 1)))
    with pytest.raises(FastaiImportError, match=f"has {V - 1} tokens but the embedding .* has {V} rows"):
        import_fastai(w, v, tmp_path / "model.pt", False)


def built(vocab_sz: int, **over) -> Session:
    s = Session(lambda *_: None, "cpu")
    args = {"preset": "tiny", "vocab_sz": vocab_sz, "emb_sz": EMB, "n_hid": HID, "n_layers": LAYERS, "seed": 0, "head_hidden": 8}
    call(s, "build", {**args, **over})
    return s


def test_init_from_matches_the_vocabulary_as_ulmfit_does(tmp_path: Path) -> None:
    sd = fastai_state(6)
    w, v = write_fastai(tmp_path, sd)
    path = import_fastai(w, v, tmp_path / "model.pt", False)["path"]
    s = built(12)
    # our words: the 9 specials, w3 (old id 12), a new word, w0 (old id 9)
    vocab_map = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, -1, 9], dtype=torch.int32)
    r = call(s, "init_from", {"path": path}, {"vocab_map": vocab_map})
    assert (r["copied"], r["new"]) == (11, 1)
    sizes = {"vocab_sz": V, "emb_sz": EMB, "n_hid": HID, "n_layers": LAYERS}
    assert r["source"] == {"arch": "awd_lstm", **sizes, "direction": "forward"}
    m = s.trainer.model
    emb, bias = sd["0.encoder.weight"], sd["1.decoder.bias"]
    assert torch.equal(m.encoder.emb.weight[9], emb[12]) and torch.equal(m.encoder.emb.weight[11], emb[9])
    assert torch.allclose(m.encoder.emb.weight[10], emb.mean(0)) and torch.allclose(m.lm_head.decoder.bias[10], bias.mean(0))
    assert torch.equal(m.lm_head.decoder.bias[9], bias[12])
    assert torch.equal(m.encoder.rnns[1].fwd.weight_hh_raw, sd["0.rnns.1.weight_hh_l0_raw"])


def test_init_from_names_size_and_direction_mismatches(tmp_path: Path) -> None:
    w, v = write_fastai(tmp_path, fastai_state(7))
    path = import_fastai(w, v, tmp_path / "model.pt", True)["path"]
    s = built(V, emb_sz=EMB + 2, n_hid=HID)
    with pytest.raises(BridgeError, match=r"emb_sz 12 vs 14; direction backward vs forward") as e:
        call(s, "init_from", {"path": path})
    assert e.value.code == "init_mismatch"
    s = built(V, backwards=True, n_layers=2)
    with pytest.raises(BridgeError, match=r"n_layers 3 vs 2$"):
        call(s, "init_from", {"path": path})


def test_init_into_another_softmax_loads_the_encoder_and_says_what_it_skipped(tmp_path: Path) -> None:
    w, v = write_fastai(tmp_path, fastai_state(8))
    path = import_fastai(w, v, tmp_path / "model.pt", False)["path"]
    s = built(V, softmax="adaptive", cutoffs=[10])
    r = call(s, "init_from", {"path": path})
    assert (r["copied"], r["new"]) == (V, 0)
    assert r["skipped"] and all(k.startswith("lm_head.asm.") for k in r["skipped"])
    tied = built(V)
    assert call(tied, "init_from", {"path": path})["skipped"] == []  # the tied decoder weight is the embedding

"""Checkpoints: round trip, resume, stage transfer by name, refusals."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from test_training import lm_batch, make, pair_batch, sents

from bridge_backend.checkpoints import (
    CheckpointError,
    CheckpointMismatch,
    NoSpace,
    atomic_save,
    load_checkpoint,
    save_checkpoint,
)
from bridge_backend.ops import OPS
from bridge_backend.session import Session


def test_round_trip_gives_identical_outputs_and_resumes_exactly(tmp_path: Path) -> None:
    a = make(seed=1, lr=1e-2)
    for _ in range(2):
        a.train_step("siamese", pair_batch(), {})
    path = tmp_path / "ckpt" / "step2.pt"
    info = save_checkpoint(a, path, {"epoch": 1})
    assert info["step"] == 2 and path.is_file() and info["bytes"] == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == ["step2.pt"]  # no temp file left behind

    x, lengths = sents([3, 6, 4], 9)
    va = a.encode(x, lengths)
    la = [a.train_step("siamese", pair_batch(), {})[0]["loss"] for _ in range(2)]  # continue the original

    b = make(seed=99, lr=1e-2)  # different init and RNG
    res = load_checkpoint(b, path, "all")
    assert res["step"] == 2 and b.step == 2 and res["meta"] == {"epoch": 1}
    torch.testing.assert_close(b.encode(x, lengths), va, atol=0, rtol=0)
    # resumed: optimizer state and RNG restored, so the next steps (dropout included) match exactly
    lb = [b.train_step("siamese", pair_batch(), {})[0]["loss"] for _ in range(2)]
    assert la == lb


def test_tied_weights_stay_tied_after_load(tmp_path: Path) -> None:
    a = make()
    save_checkpoint(a, tmp_path / "c.pt")
    b = make(seed=5)
    load_checkpoint(b, tmp_path / "c.pt", "weights")
    assert b.model.lm_head.decoder.weight is b.model.encoder.emb.weight
    torch.testing.assert_close(b.model.encoder.emb.weight, a.model.encoder.emb.weight)


def test_mismatched_checkpoints_are_refused_saying_which(tmp_path: Path) -> None:
    a = make()
    a.vocab_fingerprint = "sha256:aaaa"
    save_checkpoint(a, tmp_path / "c.pt")
    bigger = make(n_hid=48)
    with pytest.raises(CheckpointMismatch, match=r"architecture differs: n_hid \(checkpoint 32, model 48\)"):
        load_checkpoint(bigger, tmp_path / "c.pt")
    other_vocab = make()
    other_vocab.model.cfg.vocab_sz = 41  # as a model built for a 41-word vocabulary would say
    with pytest.raises(CheckpointMismatch, match="vocabulary size differs: checkpoint has 40 words, the model 41"):
        load_checkpoint(other_vocab, tmp_path / "c.pt")
    same_size = make()
    same_size.vocab_fingerprint = "sha256:bbbb"
    with pytest.raises(CheckpointMismatch, match="vocabulary differs"):
        load_checkpoint(same_size, tmp_path / "c.pt")
    other_head = make(head={"pool": "max", "head_hidden": 32})
    with pytest.raises(CheckpointMismatch, match="pool"):
        load_checkpoint(other_head, tmp_path / "c.pt", "weights")
    sgd = make(opt="sgd")
    with pytest.raises(CheckpointMismatch, match="optimizer differs"):
        load_checkpoint(sgd, tmp_path / "c.pt", "all")


def test_encoder_moves_between_stages_by_name(tmp_path: Path) -> None:
    lm = make(seed=1, lr=1e-2)
    lm.train_step("lm", lm_batch(), {})
    save_checkpoint(lm, tmp_path / "lm.pt")
    siamese = make(seed=2, head={"pool": "max", "pool_layers": "all", "features": "uv", "head_hidden": 8})
    head_before = siamese.model.nli_head.layers[-1].weight.detach().clone()
    res = load_checkpoint(siamese, tmp_path / "lm.pt", "encoder")
    assert res["skipped"] == [] and res["loaded"] > 0 and siamese.step == 0
    for (k, p), q in zip(lm.model.encoder.state_dict().items(), siamese.model.encoder.state_dict().values(), strict=True):
        assert torch.equal(p, q), k
    assert torch.equal(siamese.model.nli_head.layers[-1].weight, head_before)  # the new head is untouched
    # a bidirectional encoder takes what fits (embedding, first forward layer) only when asked to
    bidir = make(bidir=True)
    with pytest.raises(CheckpointMismatch, match="architecture differs: bidir"):
        load_checkpoint(bidir, tmp_path / "lm.pt", "encoder")
    res = load_checkpoint(bidir, tmp_path / "lm.pt", "encoder", allow_partial=True)
    assert "encoder.rnns.0.bwd.weight_ih" in res["skipped"] and "encoder.emb.weight" not in res["skipped"]
    assert torch.equal(bidir.model.encoder.rnns[0].fwd.weight_ih, lm.model.encoder.rnns[0].fwd.weight_ih)


def test_pickled_modules_and_foreign_files_are_refused(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(make(), tmp_path / "module.pt")
    message = str(e.value)
    assert f"{tmp_path / 'module.pt'} is not a bridge checkpoint" in message
    assert "pickled torch.nn.modules.linear.Linear" in message and "written by the backend's `save` op" in message
    assert "weights_only" not in message  # never advise loading it with code execution on
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a bridge checkpoint"):
        load_checkpoint(make(), tmp_path / "plain.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"notes.pt is not a bridge checkpoint: not a torch archive \(23 bytes"):
        load_checkpoint(make(), tmp_path / "notes.pt")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(make(), tmp_path / "missing.pt")


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.001])
def test_a_truncated_checkpoint_is_named_with_its_size(tmp_path: Path, keep: float) -> None:
    whole = tmp_path / "whole.pt"
    save_checkpoint(make(seed=1), whole)
    data = whole.read_bytes()
    torn = tmp_path / "torn.pt"
    torn.write_bytes(data[: max(1, int(len(data) * keep))])  # as a killed copy or a full disk leaves it
    size = torn.stat().st_size
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(make(), torn)
    assert str(e.value).startswith(f"{torn} is truncated or corrupt ({size} bytes;"), str(e.value)
    assert e.value.code == "bad_checkpoint"
    with pytest.raises(CheckpointError, match="is truncated or corrupt"):  # the load op, as --resume calls it
        OPS["load"](Session(lambda *_: None, "cpu"), {"path": str(torn)}, {})
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\): truncated"):
        torn.write_bytes(b"")
        load_checkpoint(make(), torn)


def test_encoder_moves_onto_a_new_vocabulary_with_a_vocab_map(tmp_path: Path) -> None:
    lm = make(seed=1)
    with torch.no_grad():
        lm.model.lm_head.decoder.bias.uniform_(-3.0, -1.0)  # a trained LM's biases sit well below the fresh zeros
    lm.vocab_fingerprint = "wikitext"
    save_checkpoint(lm, tmp_path / "lm.pt")
    new = make(seed=2)
    new.model.cfg.vocab_sz = 40  # same size here, but a different vocabulary: ids permuted, two words new
    new.vocab_fingerprint = "snli"
    vocab_map = torch.arange(40).flip(0)
    vocab_map[5] = vocab_map[6] = -1
    with pytest.raises(CheckpointMismatch, match="vocabulary differs"):
        load_checkpoint(new, tmp_path / "lm.pt", "encoder")
    res = load_checkpoint(new, tmp_path / "lm.pt", "encoder", vocab_map=vocab_map)
    assert res["new_words"] == 2
    old_emb, new_emb = lm.model.encoder.emb.weight, new.model.encoder.emb.weight
    assert torch.equal(new_emb[0], old_emb[39]) and torch.equal(new_emb[10], old_emb[29])
    torch.testing.assert_close(new_emb[5], old_emb.mean(0))
    assert new.model.lm_head.decoder.weight is new_emb  # still tied
    own_row = new.model.encoder.emb.weight[7].detach().clone()
    vocab_map[7] = -2  # an out-of-vocabulary bucket: keeps this model's own random row, unlike a new word
    load_checkpoint(new, tmp_path / "lm.pt", "encoder", vocab_map=vocab_map)
    torch.testing.assert_close(new_emb[7], own_row)
    old_bias = lm.model.lm_head.decoder.bias
    torch.testing.assert_close(new.model.lm_head.decoder.bias[7], old_bias.mean())  # not the fresh zero bias
    torch.testing.assert_close(new_emb[5], old_emb.mean(0))
    with pytest.raises(CheckpointMismatch, match=r"within -2\.\.39"):
        load_checkpoint(new, tmp_path / "lm.pt", "encoder", vocab_map=torch.full((40,), -3))
    with pytest.raises(CheckpointMismatch, match="one id per word"):
        load_checkpoint(new, tmp_path / "lm.pt", "encoder", vocab_map=vocab_map[:10])
    with pytest.raises(CheckpointError, match="only goes with parts='encoder'"):
        load_checkpoint(new, tmp_path / "lm.pt", "all", vocab_map=vocab_map)


def test_a_full_disk_is_named_and_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's zip writer reports a short write as 'unexpected pos'; the save says 'no space left on DIR' instead,
    the checkpoint it would replace is untouched and no temp file is left."""
    path = tmp_path / "0-lm.pt"
    atomic_save({"step": 1}, path)
    before = path.read_bytes()

    def short_write(obj: object, f: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2368 vs 2256")

    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(NoSpace, match=f"no space left on {tmp_path} while writing 0-lm.pt"):
        atomic_save({"step": 2}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-lm.pt"]
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(NoSpace):
        atomic_save({"step": 2}, path)
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError(errno.EACCES, "Permission denied")))
    with pytest.raises(PermissionError):  # not every failure is a full disk
        atomic_save({"step": 2}, path)


def test_a_checkpoint_with_the_older_loss_settings_in_its_train_config_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    save_checkpoint(make(seed=2), path)
    ck = torch.load(path, weights_only=True)
    ck["config"]["train"].update(alpha=2.0, beta=1.0, margin=0.5, distance="cosine", temperature=0.05)
    torch.save(ck, path)  # as checkpoints written before these became objectives' step options
    res = OPS["load"](Session(lambda *_: None, "cpu"), {"path": str(path)}, {})
    assert res["built"] is True and "temperature" not in res["config"]["train"]

"""The encoder architectures a config may name (model.arch), their size presets, and how a stored config names one.

One place for what both encoders' modules, the ops (build, describe, init_from) and the checkpoints read: ARCHS,
each arch's presets (plain dicts, fastai style; `build` overlays user keys on one), the preset `build` uses when none
is named, and `arch_of`, the arch of a config as a checkpoint or run stores it (none: an AWD-LSTM, as every
config written before SHA-RNN was added).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ARCHS = ("awd_lstm", "sha_rnn")
SENTENCE_ATTENTIONS = ("full", "causal")  # sha_rnn: how a sentence's tokens attend to each other (models/sha_rnn.py)

awd_lstm_presets: dict[str, dict] = {
    "ulmfit": dict(emb_sz=400, n_hid=1150, n_layers=3),  # the reference size (about 24M params + embedding)
    "cpu_medium": dict(emb_sz=300, n_hid=512, n_layers=2),  # ~1.1k LM tokens/s on 2 CPU cores
    "cpu_small": dict(emb_sz=200, n_hid=256, n_layers=2),  # ~1.3k LM tokens/s; softmax-bound
    "tiny": dict(emb_sz=16, n_hid=32, n_layers=2),  # tests
}

# Every SHA-RNN layer is emb_sz wide; n_hid is the Boom's width (4 x emb_sz as in the paper).
sha_rnn_presets: dict[str, dict] = {
    "sha_rnn_paper": dict(emb_sz=1024, n_hid=4096, n_layers=4),  # the paper's enwik8 model (a GPU's)
    "cpu_medium": dict(emb_sz=300, n_hid=1200, n_layers=2),  # AWD-LSTM cpu_medium's embedding and depth
    "cpu_small": dict(emb_sz=200, n_hid=800, n_layers=2),  # AWD-LSTM cpu_small's embedding and depth
    "tiny": dict(emb_sz=16, n_hid=64, n_layers=2),  # tests
}

ARCH_PRESETS: dict[str, dict[str, dict]] = {"awd_lstm": awd_lstm_presets, "sha_rnn": sha_rnn_presets}
DEFAULT_PRESETS = {"awd_lstm": "ulmfit", "sha_rnn": "sha_rnn_paper"}  # each arch's reference size


def arch_of(model_config: Mapping[str, Any]) -> str:
    """The arch of a stored model config (a checkpoint's config["model"], a run's build args): absent, awd_lstm."""
    return str(model_config.get("arch") or "awd_lstm")

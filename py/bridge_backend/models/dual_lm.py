"""Two language models' encoders side by side: ULMFiT's forward and backward AWD-LSTMs (Howard & Ruder 2018, sec. 3.3).

ULMFiT trains a forward and a backward LM separately and averages their classifiers; here their sentence vectors
are concatenated instead: concat(pool(forward states), pool(backward states)). Both encoders have the same sizes
(one AWDLSTMConfig) and their own embeddings (each LM learnt its own). The backward one reads each sentence
reversed within its length (AWDLSTM's `backwards`), so padding never reaches a real token in either and a
sentence's vector does not depend on its batch-mates.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor, nn

from .awd_lstm import AWDLSTM, AWDLSTMConfig
from .sha_rnn import encoder_for

HALVES = ("fwd", "bwd")  # attribute names, so state-dict keys are encoder.fwd.* and encoder.bwd.*


class DualLMEncoder(nn.Module):
    """A forward and a backward encoder (cfg.arch's) of the same sizes; `forward` gives each one's layer outputs."""

    def __init__(self, cfg: AWDLSTMConfig) -> None:
        super().__init__()
        if cfg.bidir or cfg.backwards:
            raise ValueError(
                "dual_lm holds a forward and a backward one-directional encoder of its own: drop "
                f"{'bidir' if cfg.bidir else 'backwards'} from the model settings"
            )
        self.cfg = cfg
        self.fwd = encoder_for(cfg)
        self.bwd = encoder_for(replace(cfg, backwards=True))

    def halves(self) -> list[AWDLSTM]:
        return [self.fwd, self.bwd]

    def set_dropouts(self, cfg: AWDLSTMConfig) -> None:
        """Applies cfg's (scaled) dropouts to both encoders."""
        for enc in self.halves():
            enc.set_dropouts(cfg)

    def forward(self, x: Tensor, lengths: Tensor) -> list[list[Tensor]]:
        """Per encoder (forward, backward), the outputs of every layer [bs, sl, layer_dims[i]] in its reading order."""
        return [enc(x, lengths)[0] for enc in self.halves()]

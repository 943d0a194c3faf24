"""The model: AWD-LSTM encoder (awd_lstm), masked pooling (pooling), heads (heads)."""

from .archs import awd_lstm_presets
from .awd_lstm import ARCH_KEYS, AWDLSTM, AWDLSTMConfig
from .heads import HEAD_ARCH_KEYS, BridgeModel, HeadConfig
from .pooling import pool, pool_layers, pooled_dim

__all__ = [
    "ARCH_KEYS",
    "AWDLSTM",
    "AWDLSTMConfig",
    "BridgeModel",
    "HEAD_ARCH_KEYS",
    "HeadConfig",
    "awd_lstm_presets",
    "pool",
    "pool_layers",
    "pooled_dim",
]

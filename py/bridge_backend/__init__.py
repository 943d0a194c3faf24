"""The PyTorch side of bridge: a ZeroMQ server that owns the model (see server.py)."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1

"""Tensor frames <-> torch tensors (see protocol.py for the two encodings).

Decoding makes no copy: the tensor is a read-only view over the received frame (torch warns
that the buffer is not writable; ops clone before writing in place). Encoding makes at most one
copy (the Arrow IPC stream); `raw` frames hand the tensor's own memory to ZeroMQ.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .errors import BadTensor
from .protocol import WIRE_DTYPES, TensorMeta

# wire dtype -> (torch dtype, Arrow type it travels as)
DTYPES: dict[str, tuple[torch.dtype, pa.DataType]] = {
    "float32": (torch.float32, pa.float32()),
    "float64": (torch.float64, pa.float64()),
    "float16": (torch.float16, pa.float16()),
    "bfloat16": (torch.bfloat16, pa.uint16()),
    "int8": (torch.int8, pa.int8()),
    "int16": (torch.int16, pa.int16()),
    "int32": (torch.int32, pa.int32()),
    "int64": (torch.int64, pa.int64()),
    "uint8": (torch.uint8, pa.uint8()),
    "bool": (torch.bool, pa.uint8()),
}
if tuple(DTYPES) != WIRE_DTYPES:
    raise ImportError("bridge_backend.tensors: DTYPES must map exactly protocol.WIRE_DTYPES")
WIRE_DTYPE: dict[torch.dtype, str] = {t: name for name, (t, _) in DTYPES.items()}
# Same-width integer views for dtypes numpy lacks (bfloat16) or stores differently (bool).
_BITS_VIEW: dict[torch.dtype, torch.dtype] = {torch.bfloat16: torch.int16, torch.bool: torch.uint8}
# Received tensors are read-only views by design; torch warns about that on every frombuffer.
# (A filter set once: a catch_warnings block per tensor costs more than the decode itself.)
warnings.filterwarnings("ignore", message="The given buffer is not writable", category=UserWarning)
# Tensors at least this large go as raw frames: an Arrow stream would cost a copy of the data.
RAW_THRESHOLD_BYTES = 1 << 20


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _view(buf: Any, meta: TensorMeta) -> torch.Tensor:
    dtype, _ = DTYPES[meta.dtype]
    n = _numel(meta.shape)
    itemsize = dtype.itemsize
    if len(buf) != n * itemsize:
        raise BadTensor(
            f"tensor {meta.name!r}: {meta.dtype} of shape {list(meta.shape)} needs {n * itemsize} bytes, got {len(buf)}"
        )
    if n == 0:
        return torch.empty(meta.shape, dtype=dtype)
    return torch.frombuffer(buf, dtype=dtype, count=n).view(meta.shape)


def _parse_arrow(meta: TensorMeta, frame: memoryview) -> tuple[memoryview, int]:
    """The values' bytes inside an Arrow frame (fully checked by pyarrow) and their offset."""
    try:
        buf = pa.py_buffer(frame)
        batch = pa.ipc.open_stream(buf).read_next_batch()
    except (pa.ArrowInvalid, OSError, StopIteration) as e:
        raise BadTensor(f"tensor {meta.name!r}: not an Arrow IPC stream with a record batch ({e})") from None
    _, arrow_type = DTYPES[meta.dtype]
    if batch.num_columns != 1:
        raise BadTensor(f"tensor {meta.name!r}: the Arrow batch must have 1 column, has {batch.num_columns}")
    col = batch.column(0)
    if col.type != arrow_type:
        raise BadTensor(f"tensor {meta.name!r}: {meta.dtype} travels as Arrow {arrow_type}, got {col.type}")
    if col.null_count:
        raise BadTensor(f"tensor {meta.name!r}: has {col.null_count} nulls; tensors cannot hold nulls")
    n = _numel(meta.shape)
    if len(col) != n:
        raise BadTensor(f"tensor {meta.name!r}: shape {list(meta.shape)} needs {n} values, got {len(col)}")
    data = col.buffers()[1]
    width = arrow_type.bit_width // 8
    if data is None or n == 0:
        return memoryview(b""), 0
    start = data.address - buf.address + col.offset * width
    return frame[start : start + n * width], start


class _FrameLayouts:
    """Where the values sit in Arrow frames already parsed, keyed by (dtype, count, frame size).

    Two frames whose bytes agree everywhere but in the values region have the same metadata,
    so the same layout: a frame that matches a known layout byte for byte outside its values is
    read without parsing. The same holds for writing: the bytes pyarrow wrote around the values
    of one (dtype, count) are the bytes around any values of that dtype and count.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self.layouts: dict[tuple[str, int, int], tuple[int, bytes, bytes]] = {}

    def lookup(self, dtype: str, n: int, frame: memoryview) -> memoryview | None:
        hit = self.layouts.get((dtype, n, len(frame)))
        if hit is None:
            return None
        start, prefix, suffix = hit
        end = len(frame) - len(suffix)
        if frame[:start].tobytes() != prefix or frame[end:].tobytes() != suffix:
            return None
        return frame[start:end]

    def remember(self, dtype: str, n: int, frame: memoryview, start: int, nbytes: int) -> None:
        if len(self.layouts) >= self.capacity:
            self.layouts.clear()
        self.layouts[(dtype, n, len(frame))] = (start, frame[:start].tobytes(), frame[start + nbytes :].tobytes())


_read_layouts = _FrameLayouts()
_write_templates: dict[tuple[str, int], tuple[bytes, bytes]] = {}


def decode(meta: TensorMeta, frame: memoryview) -> torch.Tensor:
    """A tensor viewing `frame`, checked against its metadata."""
    if meta.encoding == "raw":
        return _view(frame, meta)
    n = _numel(meta.shape)
    values = _read_layouts.lookup(meta.dtype, n, frame) if n else None
    if values is None:
        values, start = _parse_arrow(meta, frame)
        if n:
            _read_layouts.remember(meta.dtype, n, frame, start, len(values))
    return _view(values, meta)


def _flat_numpy(t: torch.Tensor) -> np.ndarray:
    # each torch call here costs about a microsecond, which a small message notices: skip the ones a tensor needs not
    if t.requires_grad:
        t = t.detach()
    if not t.is_cpu:
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    bits = _BITS_VIEW.get(t.dtype)
    return (t if bits is None else t.view(bits)).numpy().reshape(-1)


def encode(name: str, t: torch.Tensor, encoding: str | None = None) -> tuple[dict[str, Any], Any]:
    """(meta as JSON, frame) for one tensor; the encoding defaults to raw for large tensors."""
    if t.dtype not in WIRE_DTYPE:
        raise BadTensor(f"tensor {name!r}: dtype {t.dtype} cannot cross the wire")
    dtype = WIRE_DTYPE[t.dtype]
    arr = _flat_numpy(t)
    if encoding is None:
        encoding = "raw" if arr.nbytes >= RAW_THRESHOLD_BYTES else "arrow"
    meta = {"name": name, "dtype": dtype, "shape": list(t.shape), "encoding": encoding}  # TensorMeta.to_json's
    if encoding == "raw":
        return meta, memoryview(arr).cast("B") if arr.size else b""
    prefix, suffix = _arrow_template(dtype, arr.size)
    return meta, b"".join((prefix, memoryview(arr).cast("B") if arr.size else b"", suffix))


def _arrow_template(dtype: str, n: int) -> tuple[bytes, bytes]:
    """The bytes pyarrow writes before and after the values of an n-value stream of `dtype`."""
    key = (dtype, n)
    hit = _write_templates.get(key)
    if hit is not None:
        return hit
    _, arrow_type = DTYPES[dtype]
    width = arrow_type.bit_width // 8
    # Written once with pyarrow; the values region is found by reading the stream back.
    values = pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(bytes(n * width))])
    batch = pa.record_batch([values], names=["values"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    stream = sink.getvalue()
    view = memoryview(stream)
    region, start = _parse_arrow(TensorMeta("template", dtype, (n,), "arrow"), view)
    template = (view[:start].tobytes(), view[start + len(region) :].tobytes())
    if len(_write_templates) >= 256:
        _write_templates.clear()
    _write_templates[key] = template
    return template

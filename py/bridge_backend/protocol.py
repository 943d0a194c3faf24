"""Wire protocol v1 between the TypeScript client and this backend. ts/backend/protocol.ts states
the same rules; change both together and bump PROTOCOL_VERSION.

- Every message is a multipart ZeroMQ message (the ROUTER socket adds the peer's identity frame
  in front; it is not part of the protocol).
- Frame 0 is a UTF-8 JSON header; frames 1..n carry the tensors that header.tensors lists,
  one frame each, in order.
- Request: {"v": 1, "id": int, "op": str, "args": {...}, "tensors": [meta, ...]}
- Reply:   {"v": 1, "id": int, "ok": true, "result": {...}, "tensors": [meta, ...]}
- Error:   {"v": 1, "id": int | null, "ok": false,
            "error": {"code", "type", "message", "traceback", "fatal"}}
- Event:   {"v": 1, "event": str, "data": {...}}: pushed at any time (log lines, warnings), no id.
- meta:    {"name": str, "dtype": DType, "shape": [int, ...], "encoding": "arrow" | "raw"}
  arrow: an Arrow IPC stream holding one record batch with one non-null column, the tensor
  flattened in C order (bool travels as uint8 and bfloat16 as uint16: Arrow's bool is
  bit-packed and it has no bfloat16). raw: the same flat bytes, little-endian, no framing.
- The first request is `hello` with {"protocol": 1}; a version mismatch is a fatal error.
- Non-finite floats (NaN, Infinity: a diverged loss) cross as JSON null, in both directions:
  JSON has no NaN. A header holding the non-JSON tokens NaN / Infinity is refused, and strings
  are never reinterpreted (a log line may say "NaN").
- Every request gets exactly one reply or error; a bad request never stops the backend.
- No pickle ever crosses the wire.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import orjson

from . import PROTOCOL_VERSION
from .errors import BadMessage

MAX_HEADER_BYTES = 1 << 20
ENCODINGS = ("arrow", "raw")
# The dtypes that cross the wire (tensors.py maps each to torch and Arrow).
WIRE_DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")


class TensorMeta(NamedTuple):
    """A tensor's header entry (a tuple: made for every tensor of every message, so it must be cheap)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    encoding: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "encoding": self.encoding}


class Request(NamedTuple):
    id: int
    op: str
    args: dict[str, Any]
    tensors: tuple[TensorMeta, ...]


def _meta(raw: Any, i: int) -> TensorMeta:
    if not isinstance(raw, dict):
        raise BadMessage(f"tensors[{i}] must be an object")
    name, dtype, shape, encoding = raw.get("name"), raw.get("dtype"), raw.get("shape"), raw.get("encoding", "arrow")
    if not isinstance(name, str) or not name:
        raise BadMessage(f"tensors[{i}].name must be a non-empty string")
    if dtype not in WIRE_DTYPES:
        raise BadMessage(f"tensors[{i}] ({name}): unknown dtype {dtype!r}; expected one of {', '.join(WIRE_DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadMessage(f"tensors[{i}] ({name}): shape must be a list of non-negative integers, got {shape!r}")
    if encoding not in ENCODINGS:
        raise BadMessage(f"tensors[{i}] ({name}): encoding must be arrow or raw, got {encoding!r}")
    return TensorMeta(name, dtype, tuple(shape), encoding)


def _refuse_non_json_constant(token: str) -> Any:
    """Python's json accepts NaN / Infinity tokens; the protocol sends null for them (strict JSON)."""
    raise BadMessage(f"header holds {token}, which is not JSON: non-finite numbers travel as null")


# The standard library's reader, for what orjson refuses: it says what is wrong and where (a NaN token by name), and
# reads the rare valid JSON orjson does not (integers beyond 64 bits). One decoder for all (json.loads builds one a call).
_HEADER_DECODER = json.JSONDecoder(parse_constant=_refuse_non_json_constant)


def parse_header(frame: bytes | memoryview) -> dict[str, Any]:
    if len(frame) > MAX_HEADER_BYTES:
        raise BadMessage(f"header is {len(frame)} bytes, over the {MAX_HEADER_BYTES} limit")
    try:
        header = orjson.loads(frame)  # strict JSON, straight from the frame's bytes: a few times faster per message
    except orjson.JSONDecodeError:
        try:
            header = _HEADER_DECODER.decode(str(frame, "utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadMessage(f"header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise BadMessage("header must be a JSON object")
    return header


def request_id(header: dict[str, Any]) -> int | None:
    """The id to answer to, if the header has a usable one."""
    rid = header.get("id")
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def parse_request(header: dict[str, Any], n_frames: int) -> Request:
    """Checks a request header strictly; n_frames is the number of tensor frames that came with it."""
    if header.get("v") != PROTOCOL_VERSION:
        raise BadMessage(f"protocol version {header.get('v')!r} is not supported (this backend speaks {PROTOCOL_VERSION})")
    rid = request_id(header)
    if rid is None:
        raise BadMessage("header.id must be an integer")
    op = header.get("op")
    if not isinstance(op, str) or not op:
        raise BadMessage("header.op must be a non-empty string")
    args = header.get("args", {})
    if not isinstance(args, dict):
        raise BadMessage("header.args must be an object")
    metas = header.get("tensors", [])
    if not isinstance(metas, list):
        raise BadMessage("header.tensors must be a list")
    tensors = tuple(_meta(m, i) for i, m in enumerate(metas))
    if len({m.name for m in tensors}) != len(tensors):
        raise BadMessage("tensor names must be unique")
    if n_frames != len(tensors):
        raise BadMessage(f"header lists {len(tensors)} tensors but {n_frames} frames followed it")
    return Request(rid, op, args, tensors)


def _non_finite_as_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _non_finite_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_non_finite_as_null(v) for v in value]
    return value


_HEADER_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_header(header: dict[str, Any]) -> bytes:
    """Strict JSON for the wire: NaN and infinities (a diverged loss) become null."""
    body = {"v": PROTOCOL_VERSION, **header}
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)  # writes non-finite floats as null itself
    except TypeError:
        # what orjson will not write, e.g. a lone surrogate (an undecodable file name in an error message) or an
        # integer beyond 64 bits: the standard library escapes or writes it (and refuses what neither can write)
        return _HEADER_ENCODER.encode(_non_finite_as_null(body)).encode("utf-8")

"""The backend's side of the wire protocol: header checks, tensor codec, error replies."""

from __future__ import annotations

import json
import math
import random

import pyarrow as pa
import pytest
import torch
import zmq

from bridge_backend import PROTOCOL_VERSION
from bridge_backend import tensors as codec
from bridge_backend.errors import BadMessage, BadTensor
from bridge_backend.protocol import TensorMeta, encode_header, parse_header, parse_request
from bridge_backend.server import Server

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32, torch.int64,
          torch.uint8, torch.bool]  # fmt: skip
SHAPES = [(5,), (2, 3), (0,), (4, 0, 2), (64, 2, 32), ()]


def _sample(dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    return (torch.arange(math.prod(shape)).reshape(shape) % 7).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("encoding", ["arrow", "raw"])
def test_codec_round_trip(dtype: torch.dtype, encoding: str) -> None:
    for shape in SHAPES:
        t = _sample(dtype, shape)
        for _ in range(2):  # first parse, then the cached layout
            meta, frame = codec.encode("x", t, encoding)
            back = codec.decode(TensorMeta("x", meta["dtype"], tuple(meta["shape"]), meta["encoding"]), memoryview(frame))
            assert back.dtype == dtype and back.shape == t.shape and torch.equal(back, t)


def test_arrow_frames_are_valid_arrow_ipc() -> None:
    meta, frame = codec.encode("x", _sample(torch.int64, (3, 2)), "arrow")
    batch = pa.ipc.open_stream(pa.py_buffer(frame)).read_next_batch()
    assert batch.column(0).type == pa.int64() and batch.column(0).to_pylist() == [0, 1, 2, 3, 4, 5]


def test_decode_is_zero_copy() -> None:
    _, frame = codec.encode("x", _sample(torch.float32, (16,)), "raw")
    buf = bytearray(bytes(frame))
    t = codec.decode(TensorMeta("x", "float32", (16,), "raw"), memoryview(buf))
    buf[0:4] = b"\x00\x00\x80\x3f"  # 1.0 written into the frame shows through the tensor
    assert t[0].item() == 1.0


def test_cached_layout_does_not_misread_other_metadata() -> None:
    _, ints = codec.encode("x", _sample(torch.int32, (16,)), "arrow")
    codec.decode(TensorMeta("x", "int32", (16,), "arrow"), memoryview(ints))
    _, floats = codec.encode("x", _sample(torch.float32, (16,)), "arrow")
    with pytest.raises(BadTensor, match="travels as Arrow"):
        codec.decode(TensorMeta("x", "int32", (16,), "arrow"), memoryview(floats))


def test_bad_tensors_are_refused_with_the_name() -> None:
    _, frame = codec.encode("tokens", _sample(torch.int32, (10,)), "arrow")
    with pytest.raises(BadTensor, match="tokens"):
        codec.decode(TensorMeta("tokens", "int32", (10,), "arrow"), memoryview(frame)[:-20])
    with pytest.raises(BadTensor, match="needs 11 values"):
        codec.decode(TensorMeta("tokens", "int32", (11,), "arrow"), memoryview(frame))
    with pytest.raises(BadTensor, match="needs 12 bytes"):
        codec.decode(TensorMeta("tokens", "int32", (3,), "raw"), memoryview(b"\x00" * 10))


def test_request_headers_are_checked_strictly() -> None:
    good = {"v": PROTOCOL_VERSION, "id": 1, "op": "ping", "args": {}, "tensors": []}
    assert parse_request(good, 0).op == "ping"
    for bad, msg in [
        ({**good, "v": 99}, "protocol version"),
        ({**good, "id": "1"}, "id must be an integer"),
        ({**good, "op": ""}, "op must be"),
        ({**good, "args": []}, "args must be an object"),
        ({**good, "tensors": [{"name": "x", "dtype": "complex64", "shape": [1]}]}, "unknown dtype"),
        ({**good, "tensors": [{"name": "x", "dtype": "int32", "shape": [-1]}]}, "non-negative"),
    ]:
        with pytest.raises(BadMessage, match=msg):
            parse_request(bad, len(bad["tensors"]))
    with pytest.raises(BadMessage, match="1 tensors but 0 frames"):
        parse_request({**good, "tensors": [{"name": "x", "dtype": "int32", "shape": [1]}]}, 0)
    with pytest.raises(BadMessage, match="not UTF-8 JSON"):
        parse_header(b"\xff\xfe")


def test_non_finite_floats_travel_as_null_and_strings_as_written() -> None:
    frame = encode_header({"event": "log", "data": {"message": "loss is NaN", "level": "NaN", "loss": float("nan"),
                                                    "x": [float("inf"), -float("inf"), 1.5]}})  # fmt: skip
    assert json.loads(frame, parse_constant=pytest.fail)["data"] == {"message": "loss is NaN", "level": "NaN", "loss": None,
                                                                     "x": [None, None, 1.5]}  # fmt: skip
    with pytest.raises(BadMessage, match="NaN, which is not JSON"):
        parse_header(b'{"v": 1, "id": 1, "op": "ping", "args": {"lr": NaN}}')


def test_headers_orjson_cannot_take_still_travel() -> None:
    # a lone surrogate (how Python holds an undecodable file name) and an integer beyond 64 bits: the stdlib writes them
    frame = encode_header({"id": 1, "ok": False, "error": {"message": "no file /data/caf\udce9.txt", "big": 2**70, 3: "int key"}})
    body = json.loads(frame)
    assert body["error"] == {"message": "no file /data/caf\udce9.txt", "big": 2**70, "3": "int key"}
    assert parse_header(b'{"v": 1, "id": 1, "op": "ping", "args": {"n": 1180591620717411303424}}')["args"]["n"] == 2**70
    assert encode_header({"result": {7: 1.5, "x": float("-inf")}}) == b'{"v":1,"result":{"7":1.5,"x":null}}'
    with pytest.raises(TypeError):  # what neither can write is the caller's bug, as before
        encode_header({"result": {"x": object()}})


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    s = Server(f"ipc://{tmp_path}/s.sock")
    yield s
    s.close()


def _reply(server: Server, frames: list[bytes]) -> dict:
    out = server.handle([zmq.Frame(f) for f in frames])
    return json.loads(bytes(out[0]))


def test_every_failure_becomes_an_error_reply(server: Server) -> None:
    assert _reply(server, [b"garbage"])["error"]["code"] == "bad_message"
    unknown = _reply(server, [json.dumps({"v": 1, "id": 4, "op": "nope"}).encode()])
    assert unknown["id"] == 4 and unknown["error"]["code"] == "unknown_op"
    raised = _reply(server, [json.dumps({"v": 1, "id": 5, "op": "raise", "args": {"type": "KeyError"}}).encode()])
    assert raised["error"]["type"] == "KeyError" and "Traceback" in raised["error"]["traceback"]
    assert _reply(server, [json.dumps({"v": 1, "id": 6, "op": "ping"}).encode()])["result"] == {"pong": True}


def test_fuzzed_messages_never_raise(server: Server) -> None:
    rng = random.Random(0)
    meta = {"name": "x", "dtype": "float32", "shape": [4], "encoding": "arrow"}
    header = json.dumps({"v": 1, "id": 1, "op": "echo", "tensors": [meta]}).encode()
    for i in range(2000):
        kind = i % 3
        if kind == 0:
            frames = [bytes(rng.randrange(256) for _ in range(rng.randrange(100)))]
        elif kind == 1:
            frames = [header[: rng.randrange(len(header))]]
        else:
            frames = [header, bytes(rng.randrange(256) for _ in range(rng.randrange(300)))]
        reply = _reply(server, frames)
        assert reply["ok"] is False, frames
    assert _reply(server, [json.dumps({"v": 1, "id": 2, "op": "ping"}).encode()])["ok"] is True


def test_handshake_refuses_another_protocol(server: Server) -> None:
    reply = _reply(server, [json.dumps({"v": 1, "id": 1, "op": "hello", "args": {"protocol": 2}}).encode()])
    assert reply["error"]["code"] == "protocol_version" and reply["error"]["fatal"] is True

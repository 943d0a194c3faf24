"""The backend's ZeroMQ server: a ROUTER socket, one request at a time, replies in order.

Requests queue in ZeroMQ while an op runs, so a client that keeps two or more in flight never
leaves the backend waiting for the next batch. The loop also watches its parent: when the
TypeScript process goes away (stdin closes), the backend exits, so no Python process outlives
the tool that started it.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

import zmq

from . import tensors as codec
from .errors import BadMessage, BridgeError, UnknownOp
from .ops import OPS, Reply
from .protocol import encode_header, parse_header, parse_request, request_id
from .session import Session

MAX_MESSAGE_BYTES = 4 << 30  # a bound on one frame: larger is refused by ZeroMQ itself
HIGH_WATER_MARK = 1000


class CurveServerKeys:
    """The server's CURVE key pair and the client public keys it accepts (all Z85 strings)."""

    def __init__(self, public: str, secret: str, allowed_clients: Sequence[str]) -> None:
        self.public, self.secret, self.allowed_clients = public, secret, list(allowed_clients)


class Server:
    def __init__(
        self,
        endpoint: str,
        *,
        curve: CurveServerKeys | None = None,
        device: str | None = None,
        watch_stdin: bool = False,
    ) -> None:
        if endpoint.startswith("tcp://") and curve is None:
            raise SystemExit("bridge_backend: a tcp:// endpoint needs CURVE keys (--curve-keys); see `npx bridge keys`")
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        self.sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)  # a vanished peer's reply is dropped, not an error
        self.authenticator = None
        if curve is not None:
            self.authenticator = _start_authenticator(self.ctx, curve.allowed_clients)
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public.encode("ascii"))
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret.encode("ascii"))
        self.sock.bind(endpoint)
        self.endpoint = endpoint
        self.watch_stdin = watch_stdin
        self._peer: bytes | None = None
        self.session = Session(self._emit, device=device)

    # -- events -------------------------------------------------------------------------------

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Pushes an event to the client whose request is being served (or that spoke last)."""
        if self._peer is not None:
            self.sock.send_multipart([self._peer, encode_header({"event": event, "data": data})])

    # -- one message ----------------------------------------------------------------------------

    def handle(self, frames: list[zmq.Frame]) -> list[Any]:
        """Reply frames (header first) for one request's frames; never raises."""
        rid: int | None = None
        try:
            if not frames:
                raise BadMessage("empty message")
            header = parse_header(frames[0].buffer)
            rid = request_id(header)
            req = parse_request(header, len(frames) - 1)
            fn = OPS.get(req.op)
            if fn is None:
                raise UnknownOp(f"unknown op {req.op!r}; this backend knows: {', '.join(sorted(OPS))}")
            inputs = {meta.name: codec.decode(meta, f.buffer) for meta, f in zip(req.tensors, frames[1:], strict=True)}
            out = fn(self.session, req.args, inputs)
            reply = out if isinstance(out, Reply) else Reply(result=out or {})
            metas, payloads = [], []
            for name, t in reply.tensors.items():
                meta, payload = codec.encode(name, t)
                metas.append(meta)
                payloads.append(payload)
            return [encode_header({"id": rid, "ok": True, "result": reply.result, "tensors": metas}), *payloads]
        except Exception as e:  # every failure becomes an error reply; the loop goes on
            return [encode_header({"id": rid, "ok": False, "error": _error_body(e)})]

    # -- the loop -------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        if self.watch_stdin:
            threading.Thread(target=self._exit_with_parent, name="parent-watch", daemon=True).start()
        try:
            while not self.session.shutdown_requested:
                self._serve_one()
        finally:
            self.close()

    def _exit_with_parent(self) -> None:
        """Blocks on stdin; when it closes, the parent has gone (however it died): exit at once,
        even in the middle of an op, rather than train on for nobody."""
        while sys.stdin.buffer.read1(4096):
            pass
        self._remove_ipc_file()
        os._exit(0)

    def _serve_one(self) -> None:
        frames = self.sock.recv_multipart(copy=False)
        peer, body = frames[0].bytes, frames[1:]
        self._peer = peer
        self.sock.send_multipart([peer, *self.handle(body)], copy=False)

    def close(self) -> None:
        self.sock.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self._remove_ipc_file()

    def _remove_ipc_file(self) -> None:
        if self.endpoint.startswith("ipc://"):
            path = self.endpoint.removeprefix("ipc://")
            for remove in (os.unlink, os.rmdir):  # the socket, then its private folder if now empty
                try:
                    remove(path)
                except OSError:
                    pass
                path = os.path.dirname(path)


def _error_body(e: BaseException) -> dict[str, Any]:
    code = e.code if isinstance(e, BridgeError) else "op_failed"
    fatal = bool(getattr(e, "fatal", False))
    tb = "" if isinstance(e, BridgeError) and code != "op_failed" else traceback.format_exc()
    return {"code": code, "type": type(e).__name__, "message": str(e), "traceback": tb, "fatal": fatal}


def _start_authenticator(ctx: zmq.Context, allowed_clients: Sequence[str]) -> Any:
    """ZAP handler that admits only the listed client public keys (CURVE alone admits anyone)."""
    from zmq.auth.thread import ThreadAuthenticator

    allowed = {k.encode("ascii") for k in allowed_clients}

    class AllowList:
        def callback(self, domain: str, z85_key: bytes) -> bool:
            return z85_key in allowed

    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=AllowList())
    return auth

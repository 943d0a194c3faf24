"""The backend's ZeroMQ server: a ROUTER socket, one request at a time, replies in order.

Requests queue in ZeroMQ while an op runs, so a client that keeps two or more in flight never
leaves the backend waiting for the next batch. The loop also watches its parent: when the
TypeScript process goes away (stdin closes), the backend exits, so no Python process outlives
the tool that started it.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import zmq
import zmq.utils.z85

from . import tensors as codec
from .errors import BadMessage, BridgeError, UnknownOp
from .ops import OPS, Reply
from .parent_watch import remove_ipc_file, watch_parent
from .protocol import encode_header, parse_header, parse_request, request_id
from .session import Session

MAX_MESSAGE_BYTES = 4 << 30  # a bound on one frame: larger is refused by ZeroMQ itself
HIGH_WATER_MARK = 1000
MAX_SESSIONS = 8  # clients whose model state a served backend keeps at once


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
        root: str | None = None,
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
        self.refusals: _RefusalWatch | None = None
        if curve is not None:
            log = _RefusalLog(endpoint)
            self.authenticator = _start_authenticator(self.ctx, curve.allowed_clients, log)
            self.refusals = _RefusalWatch(self.sock, log)  # before bind: no handshake goes unseen
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public.encode("ascii"))
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret.encode("ascii"))
        self.sock.bind(endpoint)
        self.endpoint = endpoint
        self.watch_stdin = watch_stdin
        self._peer: bytes | None = None
        self.device = device
        self.root = os.path.realpath(root) if root is not None else None
        # One session (model, optimizer, LM state) per client connection: nothing one client built or loaded is
        # seen by the next. The least recently used are dropped beyond MAX_SESSIONS.
        self.sessions: OrderedDict[bytes, Session] = OrderedDict()
        self.session = self._new_session()

    def _new_session(self) -> Session:
        session = Session(self._emit, device=self.device)
        session.root = self.root
        return session

    def _session_of(self, peer: bytes) -> Session:
        session = self.sessions.pop(peer, None)
        if session is None:
            session = self._new_session()
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions.popitem(last=False)
        self.sessions[peer] = session  # most recently used last
        return session

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
            watch_parent(self.endpoint)
        try:
            while not self.session.shutdown_requested:
                self._serve_one()
        finally:
            self.close()

    def _serve_one(self) -> None:
        frames = self.sock.recv_multipart(copy=False)
        peer, body = frames[0].bytes, frames[1:]
        if peer != self._peer:  # the same client as last time is already the most recent session
            self._peer = peer
            self.session = self._session_of(peer)
        self.sock.send_multipart([peer, *self.handle(body)], copy=False)

    def close(self) -> None:
        if self.refusals is not None:
            self.refusals.stop()
        self.sock.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self._remove_ipc_file()

    def _remove_ipc_file(self) -> None:
        remove_ipc_file(self.endpoint)


def _error_body(e: BaseException) -> dict[str, Any]:
    code = e.code if isinstance(e, BridgeError) else "op_failed"
    fatal = bool(getattr(e, "fatal", False))
    tb = "" if isinstance(e, BridgeError) and code != "op_failed" else traceback.format_exc()
    return {"code": code, "type": type(e).__name__, "message": str(e), "traceback": tb, "fatal": fatal}


class _RefusalLog:
    """One stderr line per refused client (`bridge serve` shows it). A client that keeps retrying
    with a wrong key is reported once per REPEAT_S seconds, with the count of repeats."""

    REPEAT_S = 10.0

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # message -> (when printed, repeats since)

    def refused(self, who: str, reason: str) -> None:
        message = f"bridge_backend: refused a client {who} on {self.endpoint}: {reason}"
        now = time.monotonic()
        with self._lock:
            printed, repeats = self._last.get(message, (-math.inf, 0))
            if now - printed < self.REPEAT_S:
                self._last[message] = (printed, repeats + 1)
                return
            self._last[message] = (now, 0)
        suffix = f" ({repeats} more like it in the last {self.REPEAT_S:.0f} s)" if repeats else ""
        print(message + suffix, file=sys.stderr, flush=True)


# Handshake failures that never reach the ZAP handler: the client does not hold this server's key.
_HANDSHAKE_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
_PROTOCOL_REASONS = {
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "its CURVE handshake does not decrypt: it holds a different server public key",
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "it does not use CURVE (no --keys on its side?)",
}


class _RefusalWatch:
    """Reads the socket's monitor events in a thread and logs failed handshakes. ZeroMQ reports no
    peer address for them (the ZAP handler logs the address of clients refused by key)."""

    def __init__(self, sock: zmq.Socket, log: _RefusalLog) -> None:
        self._sock, self._log = sock, log
        self._monitor = sock.get_monitor_socket(_HANDSHAKE_FAILURES)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curve-refusals", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        try:
            while not self._stopping.is_set():
                if not self._monitor.poll(200):
                    continue
                event = recv_monitor_message(self._monitor)
                if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                    break
                value = int(event["value"])
                failure = zmq.Event(event["event"]).name
                reason = _PROTOCOL_REASONS.get(value, f"the CURVE handshake failed ({failure}, {value:#x})")
                self._log.refused("(address not reported by ZeroMQ)", reason)
        finally:
            self._monitor.close(linger=0)  # closed by the thread that used it

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)


def _start_authenticator(ctx: zmq.Context, allowed_clients: Sequence[str], log: _RefusalLog) -> Any:
    """ZAP handler that admits only the listed client public keys (CURVE alone admits anyone) and
    logs each client it refuses, with its address and key."""
    from zmq.auth.thread import ThreadAuthenticator

    allowed = {k.encode("ascii") for k in allowed_clients}

    class AllowList:
        def callback(self, domain: str, z85_key: bytes) -> bool:
            return z85_key in allowed

    class LoggingAuthenticator(ThreadAuthenticator):
        async def handle_zap_message(self, msg: list[bytes]) -> None:
            # ZAP request frames: version, request id, domain, address, identity, mechanism, credentials
            if len(msg) == 7 and msg[5] == b"CURVE" and len(msg[6]) == 32:
                key = zmq.utils.z85.encode(msg[6])
                if key not in allowed:
                    address = msg[3].decode("utf-8", "replace")
                    log.refused(f"from {address}", f"its CURVE public key {key.decode('ascii')} is not in allowed_clients")
            await super().handle_zap_message(msg)

    auth = LoggingAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=AllowList())
    return auth

"""Shared by the backend's tests: calling an op as the server would, the tiny model's build arguments, and a session
with that model built (the `s` fixture)."""

from __future__ import annotations

import json

import pytest

from bridge_backend.ops import OPS
from bridge_backend.ops.registry import Reply
from bridge_backend.session import Session

TINY = {"preset": "tiny", "vocab_sz": 40, "seed": 0, "head_hidden": 16, "vocab_fingerprint": "fp1"}


def call(s: Session, name: str, args: dict | None = None, tensors: dict | None = None) -> Reply:
    """Op `name` run in session `s`, its reply as the server would send it (strict JSON checked)."""
    out = OPS[name](s, args or {}, tensors or {})
    reply = out if isinstance(out, Reply) else Reply(out or {})
    json.dumps(reply.result, allow_nan=False)  # what crosses the wire is strict JSON
    return reply


def result(s: Session, name: str, args: dict | None = None, tensors: dict | None = None) -> dict:
    """call()'s JSON result alone."""
    return call(s, name, args, tensors).result


def built_session(**build) -> Session:
    """A CPU session with a model built from `build` (the full build arguments)."""
    session = Session(lambda *_: None, "cpu")
    call(session, "build", build)
    return session


@pytest.fixture
def s() -> Session:
    """A session with the tiny model built."""
    return built_session(**TINY)

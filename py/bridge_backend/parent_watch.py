"""Exit with the parent: a backend started by TypeScript watches its stdin, and when it closes the parent
has gone (however it died), so the backend exits at once, even mid-op, rather than train on for nobody.

Light on purpose (no torch, no zmq): `__main__` starts the watch before the heavy imports, so a parent
killed while torch is still importing (seconds on a loaded machine) leaves no orphan either.
"""

from __future__ import annotations

import os
import sys
import threading

# Set by what must finish before the process may go (the profile's dump, BRIDGE_PROFILE): the exit waits for it,
# at most PENDING_WAIT_S, as the parent gives a closing backend a little time before it kills it.
PENDING: threading.Event | None = None
PENDING_WAIT_S = 1.5


def remove_ipc_file(endpoint: str) -> None:
    """Removes an ipc:// endpoint's socket file, then its private folder if now empty."""
    if not endpoint.startswith("ipc://"):
        return
    path = endpoint.removeprefix("ipc://")
    for remove in (os.unlink, os.rmdir):
        try:
            remove(path)
        except OSError:
            pass
        path = os.path.dirname(path)


def _wait_then_exit(endpoint: str) -> None:
    while sys.stdin.buffer.read1(4096):
        pass
    remove_ipc_file(endpoint)
    if PENDING is not None:
        PENDING.wait(PENDING_WAIT_S)
    os._exit(0)


def watch_parent(endpoint: str) -> None:
    """Starts the daemon thread that exits the process when stdin closes."""
    threading.Thread(target=_wait_then_exit, args=(endpoint,), name="parent-watch", daemon=True).start()

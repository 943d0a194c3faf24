"""`python -m bridge_backend --endpoint ipc:///path/sock` runs the backend's server."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback

from . import parent_watch
from .parent_watch import watch_parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bridge_backend", description=__doc__)
    p.add_argument("--endpoint", required=True, help="ipc:///private/dir/sock, or tcp://HOST:PORT with --curve-keys")
    p.add_argument("--curve-keys", help="JSON file with the server's key pair and allowed client keys (bridge keys)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (the parent has gone)")
    p.add_argument("--root", help="confine the file paths of requests to this folder (bridge serve; default: none)")
    a = p.parse_args(argv)
    if a.watch_stdin:  # before torch's import: a parent killed meanwhile must not leave an orphan
        watch_parent(a.endpoint)
    import zmq

    from .server import CurveServerKeys, Server  # heavy: torch, zmq
    from .session import DeviceError

    curve = None
    if a.root is not None and not os.path.isdir(a.root):
        print(f"bridge_backend: --root {a.root}: no such folder", file=sys.stderr)
        return 2
    if a.curve_keys:
        try:
            with open(a.curve_keys, encoding="utf-8") as f:
                keys = json.load(f)
        except (OSError, ValueError) as e:
            print(f"bridge_backend: {a.curve_keys}: cannot read the keys ({e})", file=sys.stderr)
            return 2
        try:
            curve = CurveServerKeys(keys["server"]["public"], keys["server"]["secret"], keys["allowed_clients"])
        except (KeyError, TypeError) as e:
            print(
                f"bridge_backend: {a.curve_keys}: missing {e} (expected server.public, server.secret, allowed_clients)",
                file=sys.stderr,
            )
            return 2
    # Ctrl-C in a terminal reaches the whole process group; the TypeScript parent decides
    # when the backend stops, so the backend ignores SIGINT instead of dying mid-reply.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = Server(a.endpoint, curve=curve, device=a.device, root=a.root)  # the parent watch runs already
    except DeviceError as e:
        print(f"bridge_backend: {e}", file=sys.stderr)
        return 2
    except zmq.ZMQError as e:  # the address is taken, or not one ZeroMQ can bind
        print(f"bridge_backend: cannot serve on {a.endpoint}: {e}", file=sys.stderr)
        return 2
    print(f"bridge_backend: serving on {a.endpoint}", file=sys.stderr, flush=True)
    profile = os.environ.get("BRIDGE_PROFILE")  # a file: cProfile stats of the serving loop (bench train --profile)
    if not profile:
        server.serve_forever()
        return 0
    import cProfile
    import threading

    parent_watch.PENDING = threading.Event()  # the parent closes stdin right after shutdown: wait for the dump
    profiler = cProfile.Profile()
    try:
        profiler.runcall(server.serve_forever)
    finally:  # written here: the process leaves by os._exit, which skips cProfile's own exit hook
        profiler.dump_stats(profile)
        parent_watch.PENDING.set()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    # os._exit, not sys.exit: the parent-watch thread is blocked reading stdin, and interpreter shutdown
    # would abort on its lock (SIGABRT) instead of exiting with this code.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

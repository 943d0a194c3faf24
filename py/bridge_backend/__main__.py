"""`python -m bridge_backend --endpoint ipc:///path/sock` runs the backend's server."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from .server import CurveServerKeys, Server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bridge_backend", description=__doc__)
    p.add_argument("--endpoint", required=True, help="ipc:///private/dir/sock, or tcp://HOST:PORT with --curve-keys")
    p.add_argument("--curve-keys", help="JSON file with the server's key pair and allowed client keys (bridge keys)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (the parent has gone)")
    a = p.parse_args(argv)

    curve = None
    if a.curve_keys:
        with open(a.curve_keys, encoding="utf-8") as f:
            keys = json.load(f)
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
    server = Server(a.endpoint, curve=curve, device=a.device, watch_stdin=a.watch_stdin)
    print(f"bridge_backend: serving on {a.endpoint}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

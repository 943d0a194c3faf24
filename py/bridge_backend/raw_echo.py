"""The benchmark's reference: a bare ROUTER that sends every message back untouched, no
protocol, no decoding. `npx bridge bench transport` compares the backend against it."""

from __future__ import annotations

import argparse
import os
import sys

import zmq


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bridge_backend.raw_echo")
    p.add_argument("--endpoint", required=True)
    a = p.parse_args(argv)
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(a.endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    while True:
        for s, _ in poller.poll():
            if s is sock:
                sock.send_multipart(sock.recv_multipart(copy=False), copy=False)
            elif not os.read(sys.stdin.fileno(), 4096):
                return 0  # parent gone


if __name__ == "__main__":
    sys.exit(main())

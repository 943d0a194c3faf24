"""Executes the inspection notebooks against a run, as CI does, so that they never rot.

    .venv/bin/python notebooks/execute.py RUN_DIR [--out DIR] [--data-dir DIR]

Each notebook runs top to bottom in a fresh kernel of this interpreter (the project's venv) with
BRIDGE_RUN_DIR=RUN_DIR (and BRIDGE_DATA_DIR=DIR with --data-dir: semantic-search reads SNLI dev);
a cell that raises fails the run. The committed notebooks stay without
outputs: executed copies go to --out only when it is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = (
    "language-model.ipynb",
    "sentence-vectors.ipynb",
    "nli-errors.ipynb",
    "semantic-search.ipynb",
)


def execute(run_dir: Path, out: Path | None, timeout: int = 120) -> None:
    os.environ["BRIDGE_RUN_DIR"] = str(run_dir)
    for name in NOTEBOOKS:
        t0 = time.perf_counter()
        nb = nbformat.read(HERE / name, as_version=4)
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(HERE)}},
        ).execute()
        print(f"{name}: ok in {time.perf_counter() - t0:.1f} s", flush=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out / name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "--out", type=Path, default=None, help="write the executed notebooks here"
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="BRIDGE_DATA_DIR for the notebooks"
    )
    a = p.parse_args()
    if a.data_dir is not None:
        os.environ["BRIDGE_DATA_DIR"] = str(a.data_dir.resolve())
    if not (a.run_dir / "eval" / "metrics.json").exists():
        sys.exit(
            f"{a.run_dir}: no eval/metrics.json; run `npx bridge eval` on it first"
        )
    execute(a.run_dir.resolve(), a.out)


if __name__ == "__main__":
    main()

"""What every inspection notebook starts with: find the run, read its manifest and metrics, and
read the Arrow files that `npx bridge eval` / `embed` write.

    from bridge_notebook import open_run, read_arrow, vectors
    run = open_run()

The run is BRIDGE_RUN_DIR (a folder), else runs/<BRIDGE_RUN>, else the latest run: runs/latest
(the link `bridge train` keeps to the newest run), else the run whose run.json changed last.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"


def find_run(runs_dir: Path = RUNS_DIR) -> Path:
    """The folder of the run to inspect (see the module's docstring for the order)."""
    if os.environ.get("BRIDGE_RUN_DIR"):
        return Path(os.environ["BRIDGE_RUN_DIR"]).resolve()
    if os.environ.get("BRIDGE_RUN"):
        return (runs_dir / os.environ["BRIDGE_RUN"]).resolve()
    latest = runs_dir / "latest"
    if (latest / "run.json").exists():
        return latest.resolve()
    manifests = sorted(runs_dir.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise FileNotFoundError(
            f"no run in {runs_dir}: train one (`npx bridge train`), or set BRIDGE_RUN=NAME or BRIDGE_RUN_DIR=FOLDER"
        )
    return manifests[-1].parent.resolve()


@dataclass(frozen=True)
class Run:
    dir: Path
    manifest: dict[str, Any]
    #: eval/metrics.json, or {} before `npx bridge eval`
    metrics: dict[str, Any]

    @property
    def eval_dir(self) -> Path:
        return self.dir / "eval"


def open_run(run_dir: Path | None = None) -> Run:
    """Reads the run's manifest and metrics and prints what it found (and what is missing)."""
    folder = find_run() if run_dir is None else run_dir.resolve()
    if not (folder / "run.json").exists():
        raise FileNotFoundError(f"{folder}: no run.json; is it a run folder (runs/NAME)?")
    manifest = json.loads((folder / "run.json").read_text())
    metrics_file = folder / "eval" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    stages = [s["name"] for s in manifest["stages"]]
    print(f"run {manifest['name']} ({folder}): stages {stages}, final checkpoint {manifest['finalCheckpoint']}")
    if not metrics:
        print(f"no {metrics_file} yet: run `npx bridge eval --run {folder.name}` first")
    return Run(folder, manifest, metrics)


def read_arrow(path: Path) -> pa.Table:
    """An Arrow IPC file written by bridge eval / embed, as a pyarrow Table."""
    with pa.OSFile(str(path), "rb") as f:
        return pa.ipc.open_file(f).read_all()


def vectors(table: pa.Table, column: str) -> np.ndarray:
    """A FixedSizeList<float32> column as a [rows, dim] numpy array (no copy where possible)."""
    col = table.column(column).combine_chunks()
    return col.values.to_numpy().reshape(len(col), col.type.list_size)  # [rows * dim] -> [rows, dim]

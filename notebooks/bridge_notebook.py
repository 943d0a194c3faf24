"""What every inspection notebook starts with: find the run, read its manifest and metrics, and
read the Arrow files that `npx bridge eval` / `embed` write.

    from bridge_notebook import open_run, read_arrow, vectors
    run = open_run()

The run is BRIDGE_RUN_DIR (a folder), else runs/<BRIDGE_RUN>, else the latest run: runs/latest
(the link `bridge train` keeps to the newest run), else the run whose run.json changed last. The runs
folder is BRIDGE_RUNS_DIR, as for the command line, else the project's runs/ (`runs_folder()`).

A run as an encoder, as the TypeScript API has it (`openEncoder`):

    from bridge_notebook import open_encoder
    with open_encoder() as enc:                       # the same run open_run() finds
        v = enc.embed(["A man plays a guitar."])      # numpy float32 [rows, dim]
        hits = enc.search(["music"], corpus, top_k=5)  # [[{"corpus_id": i, "score": s}, ...]]

The tokenizer is bridge's own (TypeScript), so the encoder runs one `node` process (ts/api/pipe.ts)
holding one backend for all its calls: the vectors are `bridge embed`'s, bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self, TypedDict

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
PIPE = ROOT / "dist" / "ts" / "api" / "pipe.js"


def runs_folder() -> Path:
    """Where runs are: BRIDGE_RUNS_DIR (read at each call, as the command line reads it), else the project's runs/."""
    return Path(os.environ.get("BRIDGE_RUNS_DIR") or ROOT / "runs").resolve()


def find_run(runs_dir: Path | None = None) -> Path:
    """The folder of the run to inspect (see the module's docstring for the order)."""
    runs_dir = runs_folder() if runs_dir is None else runs_dir
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
        raise FileNotFoundError(
            f"{folder}: no run.json; is it a run folder (runs/NAME)?"
        )
    manifest = json.loads((folder / "run.json").read_text())
    metrics_file = folder / "eval" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    stages = [s["name"] for s in manifest["stages"]]
    print(
        f"run {manifest['name']} ({folder}): stages {stages}, final checkpoint {manifest['finalCheckpoint']}"
    )
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
    return col.values.to_numpy().reshape(
        len(col), col.type.list_size
    )  # [rows * dim] -> [rows, dim]


def data_dir() -> Path:
    """The datasets folder, as the command line finds it: BRIDGE_DATA_DIR, else ~/.cache/bridge/data."""
    return Path(
        os.environ.get("BRIDGE_DATA_DIR") or Path.home() / ".cache" / "bridge" / "data"
    )


class Hit(TypedDict):
    """One search result: the corpus row and its cosine similarity to the query."""

    corpus_id: int
    score: float


def cos_sim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of a with every row of b: [len(a), len(b)] (zero rows give 0)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a {a.shape} and b {b.shape}: need [n, dim] arrays of one dim"
        )
    return _unit(a) @ _unit(b).T


def semantic_search(
    queries: np.ndarray, corpus: np.ndarray, top_k: int = 5
) -> list[list[Hit]]:
    """Exact cosine top-k of each query row over the corpus rows, best first (ties: lower id first)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ValueError(f"top_k must be a whole number >= 1, got {top_k!r}")
    if queries.ndim != 2 or corpus.ndim != 2 or queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"queries {queries.shape} and corpus {corpus.shape}: need [n, dim] arrays of one dim"
        )
    scores = cos_sim(queries, corpus)  # [queries, corpus]
    k = min(top_k, corpus.shape[0])
    out: list[list[Hit]] = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:k]
        out.append([{"corpus_id": int(i), "score": float(row[i])} for i in best])
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32)


class EncoderError(RuntimeError):
    """The encoder process refused a call, or stopped."""


class Encoder:
    """A run's encoder: one `node` process (ts/api/pipe.ts) and its backend, kept for every call.

    Closed by close(), the end of a `with` block, or when the object is collected (a notebook cell run again);
    a call interrupted half way (Ctrl-C, "interrupt kernel") closes it too, since its reply would still be on the
    way: later calls raise EncoderError rather than read that reply as theirs.
    """

    def __init__(
        self, run_dir: Path, *, device: str | None = None, max_len: int | None = None
    ) -> None:
        node = os.environ.get("BRIDGE_NODE") or shutil.which("node")
        if node is None:
            raise EncoderError("no `node` on PATH (set BRIDGE_NODE to its path)")
        if not PIPE.exists():
            raise EncoderError(
                f"{PIPE}: not built; run `npm install` (or `npm run build`)"
            )
        cmd = [node, str(PIPE), str(run_dir)]
        cmd += ["--device", device] if device else []
        cmd += ["--max-len", str(max_len)] if max_len is not None else []
        self.run = run_dir.name
        self._closed_why: str | None = None
        # the backend's stderr, kept for error messages: it lives as long as the encoder
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        # stops the process when the encoder is collected unclosed, or at interpreter exit; close() runs it too
        self._finalizer = weakref.finalize(
            self, _stop_process, self._proc, self._stderr
        )
        try:
            hello = self._header()
        except BaseException:
            self._finalizer()
            raise
        if "error" in hello:
            self.close()
            raise EncoderError(hello["error"])
        self.run = hello["run"]
        self.dir = Path(hello["dir"])
        self.dim: int = hello["dim"]
        self.checkpoint: str = hello["checkpoint"]
        # set when the run is still training: the checkpoint is an earlier stage's
        self.unfinished: str | None = hello.get("unfinished")
        if self.unfinished is not None:
            warnings.warn(self.unfinished, stacklevel=2)

    def embed(
        self,
        sentences: Sequence[str],
        *,
        batch_size: int = 128,
        normalize: bool = False,
    ) -> np.ndarray:
        """One float32 vector per sentence, in input order: [len(sentences), dim]."""
        if isinstance(sentences, str):
            raise TypeError("embed takes a list of sentences, not one string")
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be True or False, got {normalize!r}")
        if self._closed_why is not None or self._proc.poll() is not None:
            raise EncoderError(
                f"the encoder of run {self.run} is closed{self._closed_why or ''}"
            )
        req = {
            "sentences": list(sentences),
            "batchSize": batch_size,
            "normalize": normalize,
        }
        try:
            return self._call(req)
        except BaseException as e:
            if not isinstance(e, EncoderError) or self._proc.poll() is not None:
                # the request or its reply is half way through the pipe: nothing later could be read in step
                self._abandon(
                    f" (a call was interrupted by {type(e).__name__}: open it again)"
                )
            raise

    def _call(self, req: dict[str, Any]) -> np.ndarray:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(req).encode() + b"\n")
        self._proc.stdin.flush()
        head = self._header()
        if "error" in head:
            raise EncoderError(head["error"])
        rows, dim = head["rows"], head["dim"]
        buf = bytearray(rows * dim * 4)
        view, got = memoryview(buf), 0
        while got < len(buf):
            n = self._proc.stdout.readinto(view[got:])
            if not n:
                raise EncoderError(
                    f"the encoder stopped mid-reply{self._stderr_tail()}"
                )
            got += n
        return np.frombuffer(buf, dtype="<f4").reshape(rows, dim)  # [rows, dim]

    def similarity(
        self, a: Sequence[str] | np.ndarray, b: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """Cosine similarity of every a with every b: [len(a), len(b)]."""
        return cos_sim(self._vectors(a), self._vectors(b))

    def search(
        self,
        queries: Sequence[str] | np.ndarray,
        corpus: Sequence[str] | np.ndarray,
        top_k: int = 5,
    ) -> list[list[Hit]]:
        """The top_k corpus entries nearest each query (exact cosine); embed a corpus once and pass its array to reuse it."""
        return semantic_search(self._vectors(queries), self._vectors(corpus), top_k)

    def close(self) -> None:
        """Ends the process (its backend stops with it); later calls raise EncoderError."""
        self._closed_why = self._closed_why or ""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _abandon(self, why: str) -> None:
        """Closes at once, without waiting for the process: its reply, if any, is not wanted."""
        self._closed_why = why
        self._proc.kill()
        self._finalizer()

    def _vectors(self, x: Sequence[str] | np.ndarray) -> np.ndarray:
        return x if isinstance(x, np.ndarray) else self.embed(x)

    def _header(self) -> dict[str, Any]:
        line = self._proc.stdout.readline() if self._proc.stdout else b""
        if not line:
            self._proc.wait()
            raise EncoderError(
                f"the encoder process exited (code {self._proc.returncode}){self._stderr_tail()}"
            )
        return json.loads(line)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            tail = (
                self._stderr.read().decode(errors="replace").strip().splitlines()[-15:]
            )
        except ValueError:  # already closed
            return ""
        return ("\n" + "\n".join(tail)) if tail else ""


def _stop_process(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    """Ends an encoder's process: stdin closed (pipe.js closes its encoder and exits), killed if it does not."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:  # the process is gone and the pipe broken
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    stderr.close()


def open_encoder(
    run: str | Path | None = None,
    *,
    device: str | None = None,
    max_len: int | None = None,
) -> Encoder:
    """Opens a run as an encoder: a run folder, a name in the runs folder, or None for the run open_run() finds.

    As in the TypeScript API, a Path, or a string that is absolute, holds a separator or starts with ".", is a
    folder; any other string is a run name (so a folder of that name where the notebook runs does not shadow it).
    """
    if run is None:
        folder = find_run()
    elif (
        isinstance(run, Path)
        or os.path.isabs(run)
        or os.sep in run
        or "/" in run
        or run.startswith(".")
    ):
        folder = Path(run).resolve()
    else:
        folder = (runs_folder() / run).resolve()
    if not (folder / "run.json").exists():
        raise FileNotFoundError(f"{run!r}: no run at {folder} (no run.json)")
    return Encoder(folder, device=device, max_len=max_len)

"""Encode jobs: the vectors of one client-side encode call, put in input order here as its batches arrive.

Batches go longest first, so each batch's rows are scattered over the output. Gathering them here, as a native loop
would, means the client receives one array already in its final order (a raw frame it uses without a copy) instead of
copying every row of every reply into a fresh result of its own (docs/design.md, "the wire protocol").
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from .errors import BadArgs

MAX_OPEN_JOBS = 256  # a guard, not a limit in use: a client closes each of its jobs, failed ones too


class EncodeJob:
    def __init__(self, total: int) -> None:
        self.total = total
        self.vectors: torch.Tensor | None = None  # [total, d] float32 on the CPU, made at the first batch (d unknown before)
        self.filled = torch.zeros(total, dtype=torch.bool)

    def check(self, rows: list[torch.Tensor], sizes: list[int]) -> None:
        """Refuses a request's rows (one int64 [bs] per batch) before any batch is encoded: each batch names one row
        per sentence, within 0..total-1, none written before or twice."""
        for i, (r, bs) in enumerate(zip(rows, sizes, strict=True)):
            if r.numel() != bs:
                raise BadArgs(f"batch {i}: tensor 'rows' names {r.numel()} rows for {bs} sentences")
        every = torch.cat(rows)
        lo, hi = torch.aminmax(every)
        if int(lo) < 0 or int(hi) >= self.total:
            raise BadArgs(f"tensor 'rows' must be within 0..{self.total - 1} (min {int(lo)}, max {int(hi)})")
        if bool(self.filled[every].any()) or every.unique().numel() != every.numel():
            raise BadArgs("tensor 'rows': a row of the job is encoded twice")

    def put(self, rows: torch.Tensor, vecs: torch.Tensor) -> None:
        """Writes vecs [bs, d] to rows [bs] (checked first)."""
        if self.vectors is None:
            self.vectors = torch.empty(self.total, vecs.size(1), dtype=torch.float32)
        elif vecs.size(1) != self.vectors.size(1):
            raise BadArgs(f"{vecs.size(1)}-d vectors for a job of {self.vectors.size(1)}-d ones (pooling changed mid-job)")
        self.vectors[rows] = vecs.detach().to("cpu", torch.float32)
        self.filled[rows] = True


class EncodeJobs:
    """A session's open jobs by the client's id (the least recently used dropped beyond MAX_OPEN_JOBS)."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[int, EncodeJob] = OrderedDict()

    def get(self, job: int, total: int) -> EncodeJob:
        """Job `job`, opened with `total` rows by its first batch."""
        if total < 1:
            raise BadArgs(f"argument 'total' must be >= 1 (rows of the job), got {total}")
        found = self._jobs.get(job)
        if found is None:
            if len(self._jobs) >= MAX_OPEN_JOBS:
                self._jobs.popitem(last=False)
            found = self._jobs[job] = EncodeJob(total)
        elif found.total != total:
            raise BadArgs(f"encode job {job} has {found.total} rows; this request says {total}")
        self._jobs.move_to_end(job)  # most recently used last
        return found

    def take(self, job: int, *, discard: bool = False) -> torch.Tensor | None:
        """The job's vectors [total, d], every row written; the job is closed. With discard, closed and nothing read."""
        found = self._jobs.pop(job, None)
        if discard:
            return None
        if found is None:
            raise BadArgs(f"no open encode job {job} (never opened, taken already, or dropped: over {MAX_OPEN_JOBS} open)")
        missing = (~found.filled).nonzero().flatten()
        if missing.numel():
            first = int(missing[0])
            raise BadArgs(f"encode job {job}: {missing.numel()} of {found.total} rows never encoded (the first: row {first})")
        assert found.vectors is not None  # every row written: some batch made it
        return found.vectors

    def __len__(self) -> int:
        return len(self._jobs)

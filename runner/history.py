"""runs.jsonl: one JSON line per run, appended by every job; read back for chains, budgets
and status.

Appends are one write() of one line to a file opened with O_APPEND, so concurrent runners never
interleave; a write a full disk cut short is truncated away. When the file would grow past its
limit it is renamed to runs.jsonl.1 (one old file kept) under an flock, so two runners never
rotate twice. A writer that opened the file just before a rotation lands its line in
runs.jsonl.1, which readers read too.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import datetime

from runner.clock import end_of, iso, parse_iso, utc_now
from runner.contract import RUNS
from runner.exitcodes import MISSED
from runner.fsatomic import append_whole, ensure_dir, locked


class RunRecord:
    """What one run did; filled in as the run goes and appended once at the end."""

    def __init__(self, *, job: str, kind: str, config: str, started: datetime) -> None:
        self.job = job
        self.kind = kind
        self.config = config
        self.started = started
        self.real_start = utc_now()
        self.invocation_id = os.environ.get("INVOCATION_ID") or None
        self.command_exit: int | None = None
        self.findings = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_usd = 0.0
        self.model: str | None = None
        self.notes: list[str] = []

    def moment(self) -> datetime:
        """Now, on the run's clock: its start plus the real time elapsed (runner.clock)."""
        return end_of(self.started, self.real_start)

    def as_json(self, *, result: str, exit_code: int | None, reason: str, ended: datetime) -> str:
        record = {
            "job": self.job,
            "kind": self.kind,
            "config": self.config,
            "invocation_id": self.invocation_id,
            "start": iso(self.started, "milliseconds"),
            "end": iso(ended, "milliseconds"),
            "duration_s": round((ended - self.started).total_seconds(), 3),
            "exit_status": exit_code,
            "result": result,
            "reason": reason or None,
            "command_exit": self.command_exit,
            "finding_written": self.findings > 0,
            "findings": self.findings,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost_usd, 6),
            "model": self.model,
            "notes": self.notes or None,
        }
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def append_line(state_dir: str, line: str, max_bytes: int) -> None:
    """Append one line; rotate first when it would take the file past `max_bytes`."""
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    path = os.path.join(ensure_dir(state_dir), RUNS)
    _rotate_if_full(path, len(data), max_bytes)
    append_whole(path, data, sync=False)  # a line a full disk cut short is taken back


def _rotate_if_full(path: str, incoming: int, max_bytes: int) -> None:
    if _size(path) + incoming <= max_bytes:
        return
    with locked(path + ".lock"):
        # Another runner may have rotated while we waited for the lock.
        if _size(path) > 0 and _size(path) + incoming > max_bytes:
            os.replace(path, path + ".1")


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _lines(state_dir: str) -> Iterator[bytes]:
    """Every line, oldest first (the rotated file, then the current one), read as it goes: a
    reader holds one line at a time, not the file."""
    for name in (RUNS + ".1", RUNS):
        path = os.path.join(state_dir, name)
        try:
            with open(path, "rb") as handle:
                for line in handle:
                    yield line.rstrip(b"\r\n")
        except FileNotFoundError:
            continue


def _record(line: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None  # a torn or hand-edited line never breaks a reader
    return data if isinstance(data, dict) else None


def runs(state_dir: str) -> Iterator[dict[str, object]]:
    """Every recorded run, oldest first."""
    for line in _lines(state_dir):
        record = _record(line)
        if record is not None:
            yield record


# The coordinator records itself as job "coordinator" (a name no job may take).
RUN_KINDS = ("job", "coordinator")
JOB_NEEDLE = b'"kind":"job"'
"""How a job's line reads (as_json writes no spaces): other lines are not even parsed."""


def runs_of(state_dir: str, job: str) -> Iterator[dict[str, object]]:
    """The records of `job` (or of the coordinator), newest first (by position: lines are
    appended as runs end), missed firings included."""
    needle = json.dumps(job, ensure_ascii=False).encode("utf-8")
    for line in reversed(list(_lines(state_dir))):
        if needle not in line:
            continue
        record = _record(line)
        if record is not None and record.get("job") == job and record.get("kind") in RUN_KINDS:
            yield record


def last_run(state_dir: str, job: str) -> dict[str, object] | None:
    """The most recent run of `job` or of the coordinator. A firing recorded as missed is no
    run (and is appended later than the run that caught it up)."""
    return next((r for r in runs_of(state_dir, job) if r.get("result") != MISSED), None)


def job_records(state_dir: str) -> Iterator[dict[str, object]]:
    """Every record of a job's run or missed firing, oldest first (no coordinator runs)."""
    for line in _lines(state_dir):
        if JOB_NEEDLE in line:
            record = _record(line)
            if record is not None and record.get("kind") == "job":
                yield record


class Usage:
    """Tokens, US dollars and calls spent on the model."""

    def __init__(self, tokens: int = 0, usd: float = 0.0, calls: int = 0) -> None:
        self.tokens = tokens
        self.usd = usd
        self.calls = calls

    @classmethod
    def of(cls, figures: object) -> Usage:
        """From a ledger entry ({"tokens", "usd", "calls"}); anything unreadable counts 0."""
        data = figures if isinstance(figures, dict) else {}
        return cls(_int(data.get("tokens")), _float(data.get("usd")), _int(data.get("calls")))

    @classmethod
    def of_run(cls, record: dict[str, object]) -> Usage:
        """A run record's spend (its calls: 1 if it used any tokens)."""
        tokens = _int(record.get("tokens_in")) + _int(record.get("tokens_out"))
        return cls(tokens, _float(record.get("cost_usd")), 1 if tokens else 0)

    def add(self, record: dict[str, object]) -> None:
        """Add a run record's spend."""
        self.merge(Usage.of_run(record))

    def merge(self, other: Usage) -> None:
        self.tokens += other.tokens
        self.usd += other.usd
        self.calls += other.calls

    def as_json(self) -> dict[str, object]:
        return {"tokens": self.tokens, "usd": round(self.usd, 6), "calls": self.calls}


def usage_since(
    state_dir: str, config: str, since: datetime, until: datetime | None = None
) -> tuple[dict[str, Usage], Usage]:
    """Usage of runs that started in [since, until): per job, and for the whole config."""
    per_job: dict[str, Usage] = {}
    overall = Usage()
    for record in runs(state_dir):
        if record.get("config", config) != config:
            continue
        if not (record.get("tokens_in") or record.get("tokens_out") or record.get("cost_usd")):
            continue
        started = parse_iso(record.get("start"))
        if started is None or started < since or (until is not None and started >= until):
            continue
        job = record.get("job")
        per_job.setdefault(job if isinstance(job, str) else "?", Usage()).add(record)
        overall.add(record)
    return per_job, overall


def _int(value: object) -> int:
    """A count: anything but a whole number of zero or more counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _float(value: object) -> float:
    """An amount spent: anything but a finite number of zero or more (NaN, Infinity and 1e999
    are valid to Python's json) counts 0, so every reader adds up the same sums."""
    if isinstance(value, float):
        return value if math.isfinite(value) and value > 0 else 0.0
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1e300:
        return float(value)  # a whole number too large for a float counts 0 as well
    return 0.0

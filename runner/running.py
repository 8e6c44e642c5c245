"""Which jobs are running now: `<state>/running/<job>.json` exists from a run's start to its
end (runs.jsonl has a line only once a run ended). A marker whose process is gone is stale: the
run was killed before it could remove it.

`<state>/running/<job>.lock` keeps two runs of a job apart where systemd cannot: a try of the
job (its own transient unit) and a run of its timer. The kernel drops the lock with the process.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

from runner.clock import iso
from runner.fsatomic import ensure_dir, safe_name, write_atomic

RUNNING = "running"


def process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's (or namespace's) process: it exists
    return True


def _path(state_dir: str, job: str) -> str:
    return os.path.join(state_dir, RUNNING, safe_name(job) + ".json")


def mark_started(state_dir: str, job: str, started: datetime) -> None:
    """Best effort: a state directory that takes no writes fails the run elsewhere, with its
    own reason; without the marker a chain step only does not wait for this run."""
    data = {"job": job, "pid": os.getpid(), "start": iso(started, "milliseconds")}
    with suppress(OSError):
        ensure_dir(os.path.join(state_dir, RUNNING))
        write_atomic(state_dir, _path(state_dir, job), json.dumps(data).encode("utf-8"))


def mark_ended(state_dir: str, job: str) -> None:
    with suppress(OSError):
        os.unlink(_path(state_dir, job))


def running(state_dir: str, job: str) -> dict[str, object] | None:
    """The marker of `job`'s run in progress, or None."""
    try:
        with open(_path(state_dir, job), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not process_alive(data.get("pid")):
        return None
    return data


@contextmanager
def one_run_at_a_time(state_dir: str, job: str, waiting: Callable[[str], None]) -> Iterator[None]:
    """Hold `job`'s run lock, waiting (after calling `waiting` with what holds it) while
    another run holds it. A state directory that takes no lock file runs without one: the
    run then fails on storage with its own reason."""
    path = os.path.join(state_dir, RUNNING, safe_name(job) + ".lock")
    try:
        ensure_dir(os.path.dirname(path))
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = running(state_dir, job)
            waiting(f"started {holder['start']}" if holder else "a try")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)

"""Files that appear whole or not at all: findings into the inbox, small state files.

A file is written under `<state>/tmp/`, fsynced, renamed into place, and the directory fsynced,
so a reader of the inbox never sees a partial finding and a crash never leaves one there.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

from runner.clock import file_stamp

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_dir(path: str) -> str:
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    return path


def fsync_dir(path: str) -> None:
    """Make a rename into `path` durable."""
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomic(state_dir: str, target: str, data: bytes) -> None:
    """Write `data` to `target` through a temp file in `<state>/tmp/` (same filesystem)."""
    tmp_dir = ensure_dir(os.path.join(state_dir, "tmp"))
    target_dir = ensure_dir(os.path.dirname(target))
    tmp = os.path.join(tmp_dir, f"{os.path.basename(target)}-{os.urandom(6).hex()}.part")
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
        os.fsync(handle)
        os.close(handle)
        handle = -1
        os.rename(tmp, target)
    except BaseException:
        if handle >= 0:
            os.close(handle)
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target_dir)


def safe_name(text: str) -> str:
    """A file-name fragment: letters, digits, `-` and `_` only, never starting with a dot."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)
    return cleaned or "finding"


def inbox_name(source: str, moment: datetime) -> str:
    """`<source>-<utc timestamp>-<random>.json`: unique, time-ordered, never a dot-name."""
    return f"{safe_name(source)}-{file_stamp(moment)}-{os.urandom(4).hex()}.json"


def write_finding(state_dir: str, finding: dict[str, object], moment: datetime) -> str:
    """Rename one finding into `<state>/inbox/`; returns its path."""
    source = finding.get("source")
    name = inbox_name(source if isinstance(source, str) else "finding", moment)
    path = os.path.join(state_dir, "inbox", name)
    data = json.dumps(finding, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    write_atomic(state_dir, path, data)
    return path


def state_path(state_dir: str, name: str) -> str:
    return os.path.join(state_dir, "state", name)


def read_state(state_dir: str, name: str) -> dict[str, object]:
    """A small JSON state file; missing or unreadable counts as empty."""
    try:
        with open(state_path(state_dir, name), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(state_dir: str, name: str, data: dict[str, object]) -> None:
    payload = json.dumps(data, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    write_atomic(state_dir, state_path(state_dir, name), payload)


@contextmanager
def locked(path: str) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing) for a read-modify-write."""
    ensure_dir(os.path.dirname(path))
    handle = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)

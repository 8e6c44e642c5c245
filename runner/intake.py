"""Claiming the inbox: every file is moved out of inbox/ on every run, so the path unit never
loops. A usable finding goes to processing/ until its effects are durable; anything else goes to
rejected/ with the reason, and the reason becomes an alert.

Symlinks are moved, never followed; files of another owner, directories, oversized files, bad
JSON and objects that are not findings are rejected.
"""

from __future__ import annotations

import json
import os
import stat
import time
from contextlib import suppress

from runner.findings import finding_problem
from runner.fsatomic import ensure_dir, fsync_dir

STALE_TEMP_SECONDS = 60


class Claimed:
    __slots__ = ("finding", "path")

    def __init__(self, path: str, finding: dict[str, object]) -> None:
        self.path = path  # in processing/
        self.finding = finding


class Intake:
    __slots__ = ("findings", "rejected")

    def __init__(self) -> None:
        self.findings: list[Claimed] = []
        self.rejected: list[tuple[str, str]] = []  # (file name, reason)


def claim(state_dir: str, max_bytes: int) -> Intake:
    """Move everything out of the inbox; earlier claims left by a crash are taken up first."""
    inbox = ensure_dir(os.path.join(state_dir, "inbox"))
    processing = ensure_dir(os.path.join(state_dir, "processing"))
    now = time.time()
    for name in sorted(os.listdir(inbox)):
        path = os.path.join(inbox, name)
        # A dot-name is a writer's temp file, never read; one left behind would keep the path
        # unit firing, so after a minute it is moved aside like any unusable file.
        if name.startswith(".") and now - os.lstat(path).st_mtime < STALE_TEMP_SECONDS:
            continue
        os.rename(path, os.path.join(processing, name.lstrip(".") or "unnamed"))
    fsync_dir(processing)
    intake = Intake()
    for name in sorted(os.listdir(processing)):
        path = os.path.join(processing, name)
        reason = _problem(path, max_bytes)
        finding: dict[str, object] | None = None
        if reason is None:
            finding, reason = _read(path)
        if reason is not None or finding is None:
            _reject(state_dir, path, reason or "unreadable")
            intake.rejected.append((name, reason or "unreadable"))
        else:
            intake.findings.append(Claimed(path, finding))
    return intake


def _problem(path: str, max_bytes: int) -> str | None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link (never followed)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_size > max_bytes:
        return f"is {info.st_size} bytes, more than the limit of {max_bytes}"
    return None


def _read(path: str) -> tuple[dict[str, object] | None, str | None]:
    try:
        # O_NOFOLLOW: a file swapped for a link after the check is still not followed.
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(handle, "rb") as stream:
            data = json.loads(stream.read().decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except ValueError as error:
        return None, f"is not valid JSON ({error})"
    except OSError as error:
        return None, f"cannot be read ({error.strerror})"
    problem = finding_problem(data)
    if problem is None and not isinstance(data.get("source"), str):
        problem = "has no `source`"
    if problem is None and not isinstance(data.get("timestamp"), str):
        problem = "has no `timestamp`"
    return (data, None) if problem is None else (None, f"is not a finding: {problem}")


def _reject(state_dir: str, path: str, reason: str) -> None:
    rejected = ensure_dir(os.path.join(state_dir, "rejected"))
    target = os.path.join(rejected, os.path.basename(path))
    if os.path.lexists(target):
        target += f".{os.urandom(3).hex()}"
    os.rename(path, target)
    with open(target + ".reason", "w", encoding="utf-8") as note:
        note.write(reason + "\n")
    fsync_dir(rejected)


def done(claimed: list[Claimed]) -> None:
    """Forget findings whose effects (state, outbox) are on disk."""
    for item in claimed:
        with suppress(FileNotFoundError):
            os.unlink(item.path)
    if claimed:
        fsync_dir(os.path.dirname(claimed[0].path))

"""File watches: a file must appear within a duration after the watch is armed.

This is the reference setup's pending research tasks: a finding from the arming source (one
instance per item) names the expected file; when the file appears the task is satisfied and a
summary of it is queued; past the deadline it is flagged as expired ("stuck"). Instances live in
`<state>/state/watch-<name>.json` with their timestamps and evidence.

The path is literal (a `[` in a name is a `[`) and must resolve, symlinks followed, inside the
watch's roots, without `..`: a finding from outside cannot make vigil read any file it can. Only
a regular file counts, opened with O_NOFOLLOW|O_NONBLOCK (a FIFO never blocks a run) and read
to at most SUMMARY_BYTES.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta

from runner.alerts import Alert
from runner.clock import iso, parse_iso
from runner.rules.watchstate import WatchState
from runner.template import dig, fill

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import WatchJSON

SUMMARY_LINES = 3
SUMMARY_BYTES = 4096


class FileWatchSpec:
    """One `watches:` entry with a `file:` condition."""

    __slots__ = (
        "items",
        "key",
        "name",
        "path",
        "roots",
        "source",
        "spec",
        "within",
    )

    def __init__(self, name: str, watch: WatchJSON) -> None:
        condition = watch["file"]
        assert condition is not None  # only file watches get here
        armed = condition.get("armed_by")
        self.name = name
        self.spec = watch  # its alerts read it (rules/watches.py)
        self.path = str(condition["path"])
        self.roots = roots_of(self.path, condition.get("roots"))
        self.within = int(condition["within"])
        self.source = armed.get("source") if armed else None
        self.items = armed.get("items") if armed else None
        self.key = armed.get("key") if armed else None


def arm_key(
    watch: FileWatchSpec,
    state: dict[str, Any],
    key: str,
    now: datetime,
    within: int | None = None,
    by: str = "vigil watch arm",
) -> None:
    """Arm one instance by key: by hand (`vigil watch arm NAME --key K [--within D]`) or by the
    watch's schedule."""
    instances: dict[str, Any] = state.setdefault("instances", {})
    if instances.get(key, {}).get("state") == WatchState.ARMED:
        return
    seconds = within or watch.within
    instances[key] = {  # a fresh instance, in place of a finished one
        "state": WatchState.ARMED,
        "armedAt": iso(now),
        "deadline": iso(now + timedelta(seconds=seconds)),
        "within": seconds,
        "path": os.path.expanduser(fill(watch.path, {"key": key})),
        "evidence": {"text": f"armed by {by}"},
    }
    state["version"] = 1


def arm(
    watch: FileWatchSpec, finding: dict[str, Any], state: dict[str, Any], now: datetime
) -> None:
    """One armed instance per item of the arming finding (or one for the finding itself)."""
    found = dig(finding, watch.items)  # no `items`: the finding itself
    instances: dict[str, Any] = state.setdefault("instances", {})
    for item in found if isinstance(found, list) else [found]:
        if not isinstance(item, dict):
            continue
        key = str(dig(item, watch.key) if watch.key else finding.get("id") or iso(now))
        if key in instances:
            continue  # the same task reported again does not restart its clock
        fields = {k: v for k, v in item.items() if isinstance(v, str | int | float | bool)}
        path = os.path.expanduser(fill(watch.path, {**fields, "key": key}))
        deadline = now + timedelta(seconds=watch.within)
        instances[key] = {
            "state": WatchState.ARMED,
            "armedAt": iso(now),
            "deadline": iso(deadline),
            "path": path,
            "evidence": {"finding": finding.get("id") or finding.get("timestamp")},
        }
    state["version"] = 1


def check(watch: FileWatchSpec, state: dict[str, Any], now: datetime) -> list[Alert]:
    """Armed instances whose file appeared (satisfied) or whose deadline passed (expired)."""
    from runner.rules.watches import alert, transition

    alerts = []
    for key, instance in sorted(state.get("instances", {}).items()):
        if instance.get("state") != WatchState.ARMED:
            continue
        path = str(instance.get("path"))
        deadline = parse_iso(instance.get("deadline")) or now
        refused = outside(path, watch.roots)
        if refused:  # never opened
            text = f"refused {path}: it {refused}"
            transition(watch.name, key, instance, WatchState.EXPIRED, now, {"text": text})
        elif (head := read_head(path)) is not None:
            summary = _summary(head)
            text = f"{path}: {summary}" if summary else path
            found = {"text": text, "file": path}
            transition(watch.name, key, instance, WatchState.SATISFIED, now, found)
        elif now >= deadline:
            seconds = int(instance.get("within") or watch.within)
            span = f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds}s"
            text = f"no {instance['path']} after {span}; the task may be stuck"
            transition(watch.name, key, instance, WatchState.EXPIRED, now, {"text": text})
        else:
            continue
        alerts.append(alert(watch.name, watch.spec, key, instance, now))
    return alerts


def pending(state: dict[str, Any]) -> bool:
    return any(i.get("state") == WatchState.ARMED for i in state.get("instances", {}).values())


def roots_of(path: str, declared: object) -> list[str]:
    """The watch's roots, resolved: the declared ones, or the directory `path` starts with
    before its first placeholder (none when a finding gives the directory too)."""
    if isinstance(declared, list) and declared:
        return [os.path.realpath(os.path.expanduser(str(root))) for root in declared]
    literal = os.path.dirname(os.path.expanduser(path.split("{", 1)[0]))
    return [os.path.realpath(literal)] if literal not in ("", "/", "~") else []


def outside(path: str, roots: list[str]) -> str | None:
    """Why `path` may not be read for this watch, or None when it is inside a root."""
    if not os.path.isabs(path):
        return "is not an absolute path"
    if ".." in path.split("/"):
        return "contains `..`"
    if not roots:
        return "has no root to be confined to (declare the watch's `roots:`)"
    real = os.path.realpath(path)
    if any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots):
        return None
    return f"is outside the watch's roots ({', '.join(roots)})"


def read_head(path: str) -> str | None:
    """The first SUMMARY_BYTES of the regular file at `path` (resolved: outside() checked the
    resolved path), or None while there is none: missing, a FIFO, a directory, a device."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        handle = os.open(os.path.realpath(path), flags)
    except OSError:  # missing, unreadable, or a symlink swapped in since: not there yet
        return None
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        return stream.read(SUMMARY_BYTES).decode("utf-8", "replace")


def _summary(head: str) -> str:
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    return " / ".join(lines[:SUMMARY_LINES])


def prune(state: dict[str, Any], now: datetime, keep: int = 30 * 86400) -> None:
    """Forget finished instances (satisfied or acknowledged) after `keep` seconds."""
    instances = state.get("instances", {})
    finished_states = (WatchState.SATISFIED, WatchState.ACKNOWLEDGED)
    for key in [k for k, i in instances.items() if i.get("state") in finished_states]:
        finished = parse_iso(instances[key].get("at"))
        if finished is None or (now - finished).total_seconds() > keep:
            del instances[key]

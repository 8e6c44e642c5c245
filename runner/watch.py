"""`python -m runner watch SPEC`: a watch's timer fired. For a deadline watch: was the
condition met? For a file watch armed by a schedule: the clock of one instance starts.

The answer goes into the inbox as a control finding (source `vigil`, kind `watch-deadline` with
its evidence, or `arm`), and the coordinator, the only writer of watch state, records it and
alerts. Nothing polls between deadlines: the timer wakes this once per deadline.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from datetime import datetime, timedelta

from runner.clock import iso, parse_iso
from runner.clock import now as clock_now
from runner.contract import SOURCES, SPEC_VERSION
from runner.exitcodes import OK, STORAGE, USAGE
from runner.fsatomic import describe, read_state, write_finding
from runner.history import runs

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import WatchSpecJSON


def main(spec_path: str) -> int:
    try:
        with open(spec_path, encoding="utf-8") as handle:
            spec: WatchSpecJSON = json.load(handle)
        if spec.get("spec") != SPEC_VERSION or spec.get("kind") != "watch":
            raise ValueError(f"not a version {SPEC_VERSION} watch spec")
    except (OSError, ValueError) as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE
    state_dir = os.path.expanduser(spec["state_dir"])
    now = clock_now()
    if spec["watch"]["deadline"] is None:
        return _write(state_dir, _arming(spec, now), now)
    satisfied, evidence = check_deadline(spec, state_dir, now)
    finding = {
        "source": "vigil",
        "timestamp": iso(now),
        "kind": "watch-deadline",
        "watch": spec["watch_name"],
        "key": iso(now.replace(second=0, microsecond=0)),
        "deadline": iso(now),
        "satisfied": satisfied,
        "evidence": evidence,
    }
    verdict = "met" if satisfied else "MISSED"
    print(f"watch {spec['watch_name']}: deadline {verdict}: {evidence['text']}", file=sys.stderr)
    return _write(state_dir, finding, now)


def _arming(spec: WatchSpecJSON, now: datetime) -> dict[str, Any]:
    """A file watch armed by a schedule: one instance per firing, keyed by its minute."""
    key = iso(now.replace(second=0, microsecond=0))
    print(f"watch {spec['watch_name']}: armed {key} by its schedule", file=sys.stderr)
    return {
        "source": "vigil",
        "timestamp": iso(now),
        "kind": "arm",
        "watch": spec["watch_name"],
        "key": key,
        "by": "its schedule",
    }


def _write(state_dir: str, finding: dict[str, Any], now: datetime) -> int:
    try:
        write_finding(state_dir, finding, now)
    except OSError as error:
        print(f"vigil: cannot write the result to the inbox: {describe(error)}", file=sys.stderr)
        return STORAGE
    return OK


def previous_deadline(spec: WatchSpecJSON, now: datetime) -> datetime:
    """The deadline before the one that fell due at (or last before) `now`: systemd's previous
    firing of the deadline's calendar in the watch's zone, so a clock change or a short month
    never moves it. A calendar the runner cannot read falls back to the compiled window."""
    from runner.calendar import CalendarError, previous_firing

    timer = spec.get("calendar")
    if timer:
        try:
            lines, zone = timer["on_calendar"], timer["timezone"]
            due = previous_firing(lines, zone, now + timedelta(seconds=1))
            previous = previous_firing(lines, zone, due) if due else None
        except (CalendarError, LookupError, ValueError) as error:
            print(
                f"vigil: deadline calendar not readable ({error}): using the window",
                file=sys.stderr,
            )
        else:
            if previous is not None:
                return previous
    return now - timedelta(seconds=int(spec.get("window") or 86400))


def check_deadline(
    spec: WatchSpecJSON, state_dir: str, now: datetime
) -> tuple[bool, dict[str, Any]]:
    deadline = spec["watch"]["deadline"]
    assert deadline is not None  # a file watch's timer arms it (main)
    since = previous_deadline(spec, now)
    if job := deadline.get("job"):
        return _job(job, state_dir, since)
    if source := deadline.get("source"):
        return _source(source, state_dir, since)
    file = deadline["file"]
    assert file is not None  # a deadline names a job, a source or a file
    return _file(os.path.expanduser(file), since)


def _job(job: str, state_dir: str, since: datetime) -> tuple[bool, dict[str, Any]]:
    last: dict[str, Any] | None = None
    for record in runs(state_dir):
        if record.get("job") == job:
            last = record
            started = parse_iso(record.get("start"))
            if record.get("result") == "ok" and started is not None and started >= since:
                text = f"{job} succeeded at {record.get('end')}"
                return True, {"text": text, "run": record.get("invocation_id")}
    if last is None:
        return False, {"text": f"{job} has never run"}
    started = parse_iso(last.get("start"))
    if started is None or started < since:
        return False, {
            "text": f"{job} did not run since {iso(since)}",
            "lastRun": last.get("start"),
        }
    reason = f": {last.get('reason')}" if last.get("reason") else ""
    text = (
        f"{job} {last.get('result')} at {last.get('end')} (exit {last.get('exit_status')}){reason}"
    )
    return False, {"text": text, "run": last.get("invocation_id")}


def _source(source: str, state_dir: str, since: datetime) -> tuple[bool, dict[str, Any]]:
    seen = read_state(state_dir, SOURCES).get(source)
    last = parse_iso(seen.get("lastSeen")) if isinstance(seen, dict) else None
    if last is not None and last >= since:
        return True, {"text": f"a finding from {source} arrived at {iso(last)}"}
    text = f"no finding from {source} since {iso(since)}"
    return False, {"text": text, "lastSeen": iso(last) if last else None}


def _file(pattern: str, since: datetime) -> tuple[bool, dict[str, Any]]:
    newest = max(((os.stat(p).st_mtime, p) for p in glob.glob(pattern)), default=None)
    if newest is not None and newest[0] >= since.timestamp():
        return True, {"text": f"{newest[1]} changed", "file": newest[1]}
    return False, {"text": f"{pattern} has not changed since {iso(since)}"}

"""Reading a state file: of a version and shape this runner knows, or set aside loudly.

Every file under `<state>/state/` that rules and delivery keep is read here, with the check of
its shape from runner.stateshapes. A file that does not parse, has another `version`, or holds
entries of another shape is moved to `state/rejected/<name>-<time>` (the parts still usable are
kept and written back by the run) and a finding from the source `vigil` says which file and
why, so the rest of the pipeline goes on delivering. A file that exists but cannot be read (a
root-owned 0600 file after an accidental `sudo` run) is never taken for empty, which would
reset nag counts: it raises StateUnreadable, which stops only the rule that needs it.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import suppress

from runner.clock import file_stamp, iso
from runner.contract import REJECTED, STATE
from runner.fsatomic import ensure_dir, fsync_dir, state_path, write_atomic, write_finding

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

    from runner.stateshapes import Shape

"""`<state>/state/rejected/`: state files set aside, each with a `.reason` beside it."""
ALERT_KIND = "state-rejected"
set_aside_count = 0
"""State files this process has set aside: the coordinator runs once more to deliver their
alerts in the same run."""


class StateUnreadable(Exception):
    """A state file exists but cannot be read: the rule that needs it stops, loudly."""

    def __init__(self, name: str, error: OSError) -> None:
        self.name = name
        self.reason = error.strerror or str(error)
        super().__init__(f"state/{name} cannot be read ({self.reason})")


def load_state(state_dir: str, name: str, shape: Shape, now: datetime) -> dict[str, object]:
    """The state file `name` checked against `shape`; {} when it does not exist or was set
    aside whole. Raises StateUnreadable when it exists but cannot be read."""
    try:
        usable, problem = peek_state(state_dir, name, shape)
    except StateUnreadable as error:
        if not shape.reset_when_unreadable:
            raise
        # Losing it costs a duplicate at most: keep delivering.
        set_aside(state_dir, name, f"cannot be read ({error.reason})", shape.reset, now)
        return {}
    if problem is not None:
        set_aside(state_dir, name, problem, shape.reset if usable is None else shape.kept, now)
    return usable if usable is not None else {}


def peek_state(
    state_dir: str, name: str, shape: Shape
) -> tuple[dict[str, object] | None, str | None]:
    """(what is usable, what is wrong) with the state file `name`, changing nothing (for
    reports): ({}, None) when it does not exist; usable None when nothing of it can be used.
    Raises StateUnreadable when it exists but cannot be read."""
    try:
        with open(state_path(state_dir, name), "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return {}, None
    except OSError as error:
        raise StateUnreadable(name, error) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, "is not valid JSON"
    problem, usable = shape.check(data)
    return usable, problem


def set_aside(state_dir: str, name: str, problem: str, consequence: str, now: datetime) -> None:
    """Move state/`name` to state/rejected/ with its reason, and alert through the inbox.

    The alert first, then the reason, then the move: a run killed after the alert says it
    again (under another name) in the next run, never not at all; one killed after the reason
    left its alert in the inbox, and the next run only finishes the move it began."""
    global set_aside_count
    rejected = ensure_dir(os.path.join(state_dir, STATE, REJECTED))
    aside = _begun(rejected, name)
    if aside is None:
        aside = f"{name}-{file_stamp(now)}"
        reason = f"state/{name} {problem}; {consequence}; kept as state/{REJECTED}/{aside}"
        own_alert(state_dir, f"set-aside:{aside}", f"vigil set aside {reason}", now)
        write_atomic(state_dir, os.path.join(rejected, aside + ".reason"), (reason + "\n").encode())
    os.rename(state_path(state_dir, name), os.path.join(rejected, aside))
    fsync_dir(rejected)
    fsync_dir(os.path.dirname(state_path(state_dir, name)))
    print(f"vigil: state/{name} {problem}; kept as state/{REJECTED}/{aside}", file=sys.stderr)
    set_aside_count += 1


def _begun(rejected: str, name: str) -> str | None:
    """The name a killed run chose for setting `name` aside: a reason without its file."""
    for entry in sorted(os.listdir(rejected)):
        aside = entry.removesuffix(".reason")
        if (
            aside != entry
            and aside.startswith(f"{name}-")
            and not os.path.lexists(os.path.join(rejected, aside))
        ):
            return aside
    return None


def unreadable(state_dir: str, error: StateUnreadable, consequence: str, now: datetime) -> None:
    """Say that a state file cannot be read: in the journal every run, as an alert once per
    file and day (a marker in state/rejected/), so neither a heartbeat nor the alert's own
    finding starts a run that alerts again."""
    text = f"state/{error.name} cannot be read ({error.reason}): {consequence}"
    print(f"vigil: {text}; fix its owner and mode", file=sys.stderr)
    alert_once_a_day(state_dir, error.name, f"vigil: {text}", now)


def alert_once_a_day(state_dir: str, name: str, text: str, now: datetime) -> None:
    """One alert about `name` a day: a marker in state/rejected/ remembers it was said."""
    day = file_stamp(now)[:8]
    marker = os.path.join(state_dir, STATE, REJECTED, f".unreadable-{name}-{day}")
    if os.path.lexists(marker):
        return
    # The alert before the marker: a kill in between says it twice that day, never not at all.
    own_alert(state_dir, f"unreadable:{name}:{day}", text, now)
    ensure_dir(os.path.dirname(marker))
    with suppress(FileExistsError):  # another run said it just now
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def own_alert(
    state_dir: str,
    alert_id: str,
    text: str,
    now: datetime,
    kind: str = ALERT_KIND,
    job: str | None = None,
) -> None:
    """One of vigil's own alerts, as a finding in the inbox: durable before whatever it
    reports is done, and delivered by the run that claims it (never cut by caps). `job`: the
    job it is about (silences and inhibit rules match it; its code is the job's)."""
    from runner.findings import ALERT_PRIORITY

    finding: dict[str, object] = {
        "source": "vigil",
        "timestamp": iso(now),
        "kind": kind,
        "id": alert_id,
        "priority": ALERT_PRIORITY,
        "message": text,
    }
    if job is not None:
        finding["job"] = job
    write_finding(state_dir, finding, now)

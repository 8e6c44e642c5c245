"""Chains (`after:`): a step runs only when its predecessor succeeded in the predecessor's own
current cycle, which began at its latest scheduled firing (systemd's, in its zone). A
predecessor still running is waited for, up to the step's timeout, and then reported as
running, never as failed. A predecessor started together with the step (a catch-up) never gets
here: the step's unit is ordered After= it, so systemd starts the step once it ended; the wait
is for one started otherwise."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

from runner.clock import iso, parse_iso
from runner.history import last_run
from runner.running import running
from runner.spec import After

POLL_SECONDS = 1.0


class ChainVerdict:
    """Why a step must not run (`reason`), and whether that is because the predecessor is
    still running; no reason means it may run."""

    def __init__(self, reason: str | None = None, *, still_running: bool = False) -> None:
        self.reason = reason
        self.still_running = still_running


def check_predecessor(state_dir: str, after: After, now: datetime, wait: float) -> ChainVerdict:
    """Wait up to `wait` seconds while the predecessor runs, then judge its latest run."""
    deadline = time.monotonic() + wait
    announced = False
    while (marker := running(state_dir, after.job)) is not None:
        if time.monotonic() >= deadline:
            started = marker.get("start")
            return ChainVerdict(
                f"predecessor {after.job} is still running (started {started})",
                still_running=True,
            )
        if not announced:
            print(f"vigil: waiting for {after.job}, still running", file=sys.stderr)
            announced = True
        time.sleep(POLL_SECONDS)
    return ChainVerdict(unmet_predecessor(state_dir, after, now))


def cycle_start(after: After, now: datetime) -> datetime | None:
    """The predecessor's latest scheduled firing at or before `now`, or None when its
    schedule is unknown or unreadable here (then the compiled window applies)."""
    if after.calendar is None:
        return None
    from runner.calendar import CalendarError, previous_firing

    lines, zone = after.calendar
    try:
        return previous_firing(lines, zone, now + timedelta(seconds=1))
    except (CalendarError, LookupError, ValueError):
        return None


def unmet_predecessor(state_dir: str, after: After, now: datetime) -> str | None:
    """Why this step must not run, or None when the predecessor's latest run is a success of
    its current cycle (or, without its calendar, within the spec's window)."""
    name = after.job
    last = last_run(state_dir, name)
    if last is None:
        return f"predecessor {name} has no recorded run"
    start = last.get("start")
    if last.get("result") != "ok":
        return (
            f"predecessor {name} did not succeed: "
            f"its last run (started {start}) was {last.get('result')}"
        )
    started = parse_iso(start)
    if started is None:
        return f"predecessor {name}: its last run has no readable start time"
    cycle = cycle_start(after, now)
    if cycle is not None:
        if started < cycle:
            return (
                f"predecessor {name} has not succeeded since its scheduled run at {iso(cycle)} "
                f"(its last success started {start})"
            )
        return None
    if after.window is not None:
        age = (now - started).total_seconds()
        if age > after.window:
            return (
                f"predecessor {name} last succeeded {_span(age)} ago (started {start}), "
                f"longer than this cycle's window of {_span(after.window)}"
            )
    return None


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"

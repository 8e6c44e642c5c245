"""Chains (`after:`): a step runs only when its predecessor succeeded in this cycle."""

from __future__ import annotations

from datetime import datetime

from runner.clock import parse_iso
from runner.history import last_run
from runner.spec import After


def unmet_predecessor(state_dir: str, after: After, now: datetime) -> str | None:
    """Why this step must not run, or None when the predecessor's latest run is a recent
    success. "Recent" is the spec's window (the step's shortest gap between firings), so
    yesterday's success never stands in for today's."""
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
    if after.window is not None:
        if started is None:
            return f"predecessor {name}: its last run has no readable start time"
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

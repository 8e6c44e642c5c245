"""What systemd says about the jobs' timers, for the heartbeat's "did it run?": whether each one
runs now (a disabled, paused or never installed job's does not) and since when.

One `systemctl show` call per heartbeat (never on the finding path); `timers.target` comes with
it: a timer that entered `active` with it was started by the manager (boot, login, a manager
that was down), so the firings before are still expected; one started later (apply, `vigil
enable`, a resumed pause) was not running before, and its earlier firings are not.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from runner.systemctl import systemctl

TIMERS_TARGET = "timers.target"
PROPERTIES = ("Id", "LoadState", "ActiveState", "ActiveEnterTimestamp")
ASK_TIMEOUT = 15.0
WITH_MANAGER = 60.0
"""Seconds between timers.target and a timer entering `active` that still count as one start."""


class TimerState:
    """One unit as `systemctl show` printed it."""

    __slots__ = ("active", "since")

    def __init__(self, active: bool, since: datetime | None) -> None:
        self.active = active
        self.since = since
        """When it last entered `active` (None: never, or systemd did not say)."""


class Timers:
    """The timers asked about, and when the manager started its timers."""

    def __init__(self, units: dict[str, TimerState]) -> None:
        self.units = units
        target = units.get(TIMERS_TARGET)
        self.manager_started = target.since if target is not None else None

    def state(self, unit: str) -> TimerState:
        return self.units.get(unit) or TimerState(False, None)

    def started_with_manager(self, unit: str) -> bool:
        since, started = self.state(unit).since, self.manager_started
        return (
            since is not None
            and started is not None
            and abs((since - started).total_seconds()) <= WITH_MANAGER
        )


def ask(scope: str, units: list[str]) -> Timers | None:
    """The units' states (timers.target's too), or None with a line on stderr when systemd
    cannot be asked (no systemctl, no manager on the bus, a systemd older than 251)."""
    properties = ",".join(PROPERTIES)
    shown, why = systemctl(
        scope, "show", "--timestamp=unix", "-p", properties, TIMERS_TARGET, *units,
        timeout=ASK_TIMEOUT,
    )  # fmt: skip
    if why is not None:
        print(f"vigil: cannot ask systemd about the timers: {why}", file=sys.stderr)
        return None
    return Timers(parse(shown))


def parse(text: str) -> dict[str, TimerState]:
    found: dict[str, TimerState] = {}
    for unit, values in shown_units(text).items():
        active = values.get("LoadState") == "loaded" and values.get("ActiveState") == "active"
        found[unit] = TimerState(active, timestamp(values.get("ActiveEnterTimestamp")))
    return found


def shown_units(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show` output, by unit (`Id`): one block of KEY=VALUE lines per unit, blank
    lines between."""
    found: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if values.get("Id"):
            found[values["Id"]] = values
    return found


def timestamp(value: str | None) -> datetime | None:
    """`@1767225600` (--timestamp=unix); empty or anything else: None."""
    if not value or not value.startswith("@"):
        return None
    try:
        return datetime.fromtimestamp(int(value[1:]), UTC)
    except (ValueError, OverflowError, OSError):
        return None

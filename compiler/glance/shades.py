"""The stretches a picture shades: quiet hours and maintenance windows, on the wall clock of
their zone, as instants (UTC) within a window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from compiler.glance.model import Shade, ShadeKind
from compiler.operate.setup import ConfigView
from runner.clock import zone

QUIET_LABEL = "quiet hours"


def shades(setup: ConfigView, since: datetime, until: datetime) -> Iterator[Shade]:
    quiet = setup.quiet_hours
    if quiet:
        where = quiet.get("timezone") or setup.timezone
        for start, end in _daily(quiet["start"], quiet["end"], None, where, since, until):
            yield Shade(ShadeKind.QUIET, start, end, QUIET_LABEL)
    for name, window in setup.maintenance.items():
        where = window.get("timezone") or setup.timezone
        days = window.get("days")
        action = "dropped" if window.get("drop") else "held"
        for start, end in _daily(window["start"], window["end"], days, where, since, until):
            yield Shade(ShadeKind.MAINTENANCE, start, end, f"maintenance {name} (alerts {action})")


def _daily(
    start: str,
    end: str,
    weekdays: list[int] | None,
    timezone: str,
    since: datetime,
    until: datetime,
) -> Iterator[tuple[datetime, datetime]]:
    """The stretches from `start` to `end` (HH:MM wall clock in `timezone`, past midnight when
    `end` is earlier) that begin on the given weekdays (Monday 0; None: every day), clipped to
    [since, until]. Wall clock, so a clock change makes one of them an hour shorter or longer."""
    where = zone(timezone)
    begin, finish = _wall(start), _wall(end)
    day = since.astimezone(where).date() - timedelta(days=1)
    first, last = since.timestamp(), until.timestamp()
    while (opens := datetime.combine(day, begin, where)).timestamp() < last:
        closes = datetime.combine(day + timedelta(days=finish <= begin), finish, where)
        if (weekdays is None or day.weekday() in weekdays) and closes.timestamp() > first:
            # Compared and clipped as instants: Python compares two times of one zone by
            # their wall clocks; in UTC, as a difference of them must be real
            shown = opens if opens.timestamp() > first else since
            ends = closes if closes.timestamp() < last else until
            yield shown.astimezone(UTC), ends.astimezone(UTC)
        day += timedelta(days=1)


def _wall(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))

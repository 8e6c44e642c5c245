"""`vigil explain`: one schedule in plain words, its OnCalendar lines and its next runs."""

from __future__ import annotations

from compiler.errors import UsageError, VigilError
from compiler.language.schedule import (
    CalendarCheckUnavailable,
    ScheduleError,
    check_calendars,
    check_timezone,
    describe,
    next_elapses,
    parse_schedule,
)


def explain_schedule(expression: str, zone: str, count: int) -> str:
    try:
        check_timezone(zone)
        timing = parse_schedule(expression)
    except ScheduleError as exc:
        raise UsageError(f"{expression!r}: {exc}") from None
    try:
        if timing.kind == "calendar":
            verdict = check_calendars([expression])[expression]
            if verdict:
                raise UsageError(f"{expression!r}: {verdict}")
        times = next_elapses(timing.on_calendar, zone, count) if timing.on_calendar else []
    except CalendarCheckUnavailable as exc:
        raise VigilError(f"cannot compute next runs: {exc}") from None
    lines = [f"{expression}: {describe(timing)} ({zone})"]
    lines += [f"  OnCalendar={line} {zone}" for line in timing.on_calendar]
    if timing.kind == "reboot":
        lines.append("  OnStartupSec=0 (when the user manager starts)")
    lines += [f"  next: {moment:%a %Y-%m-%d %H:%M:%S %Z}" for moment in times]
    return "\n".join(lines) + "\n"

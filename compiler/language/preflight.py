"""When a job's preflight runs: each of its firings moved `lead` earlier, as OnCalendar= lines
of their own, so systemd's calendar arithmetic (time zone, DST) schedules the preflight exactly
as it schedules the job.

A firing time of day minus the lead stays on the same day or moves to the day before; the
lines keep the firing's weekdays (shifted back a day where the time does) and dates. A date
other than every day (`*-*-01`) cannot move back a day in calendar syntax (the day before the
1st is the 28th to the 31st), so such a schedule needs a lead that stays on the same day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from compiler.language.schedule import parse_schedule
from runner.calendar import WEEKDAYS, CalendarError, Expression

DAY = 86400
MAX_LEAD = DAY - 1


class PreflightError(ValueError):
    """The lead cannot be applied to this schedule (the message says why)."""


def preflight_calendar(schedules: list[str], lead: int) -> list[str]:
    """OnCalendar= values (without the time zone) firing `lead` seconds before each firing of
    `schedules`."""
    if not 0 < lead <= MAX_LEAD:
        raise PreflightError("must be shorter than a day")
    lines: list[str] = []
    for schedule in schedules:
        timing = parse_schedule(schedule)
        if timing.kind == "reboot":
            raise PreflightError(f"{schedule!r} runs at boot: there is no time to run it before")
        for line in timing.on_calendar:
            lines.extend(_shifted(line, lead))
    return list(dict.fromkeys(lines))


def _shifted(line: str, lead: int) -> list[str]:
    try:
        expression = Expression(line)
    except CalendarError:
        raise PreflightError(f"cannot tell the times of {line!r}") from None
    if expression.hours is None or expression.minutes is None or expression.seconds is None:
        raise PreflightError(f"{line!r} fires every hour or minute: no time before it is free")
    times = sorted(
        h * 3600 + m * 60 + s
        for h in expression.hours
        for m in expression.minutes
        for s in expression.seconds
    )
    by_day: dict[int, dict[tuple[int, int], list[int]]] = {
        0: defaultdict(list),
        -1: defaultdict(list),
    }
    for moment in times:
        shifted = moment - lead
        day = 0 if shifted >= 0 else -1
        shifted %= DAY
        by_day[day][(shifted // 60 % 60, shifted % 60)].append(shifted // 3600)
    lines = []
    for day, groups in by_day.items():
        if day == -1 and groups and (expression.years or expression.months or expression.days):
            raise PreflightError(
                f"{line!r}: the preflight would fall on the day before a date, which calendar "
                "syntax cannot say; use a shorter preflight"
            )
        date = _date(expression, day)
        for (minute, second), hours in sorted(groups.items()):
            lines.append(f"{date} {_list(hours)}:{minute:02d}:{second:02d}")
    return lines


def _date(expression: Expression, shift: int) -> str:
    """The expression's weekdays (moved by `shift` days) and date, in calendar syntax."""
    date = "-".join(
        _list(sorted(values)) if values else "*"
        for values in (expression.years, expression.months, expression.days)
    )
    if expression.from_end:  # counted from the month's end: `*-*~01`
        year, month, day = date.split("-")
        date = f"{year}-{month}~{day}"
    if expression.weekdays is None:
        return date
    days = sorted((day + shift) % 7 for day in expression.weekdays)
    return ",".join(WEEKDAYS[day].capitalize() for day in days) + " " + date


def _list(values: list[int]) -> str:
    return ",".join(f"{value:02d}" for value in sorted(set(values)))


def skipped(lines: list[str], zone: str, start: date, days: int = 400) -> tuple[str, date] | None:
    """A preflight time of `lines` that the clock skips in `zone` (spring forward), and the
    first day it does within `days` of `start`: that day systemd does not run the preflight."""
    where = ZoneInfo(zone)
    for line in lines:
        expression = Expression(line)
        for wall in sorted(expression.times_descending()):
            for offset in range(days):
                day = start + timedelta(days=offset)
                if not expression.matches_day(day):
                    continue
                local = datetime.combine(day, wall, where)
                if local.astimezone(UTC).astimezone(where).replace(tzinfo=None) != local.replace(
                    tzinfo=None
                ):
                    return wall.strftime("%H:%M"), day
    return None

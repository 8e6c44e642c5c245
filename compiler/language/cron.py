"""Five-field cron expressions: parse them, translate them exactly to OnCalendar=, describe them.

Pure and stdlib-only; `compiler.language.schedule` is the public face and re-exports
`ScheduleError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

FIELD_COUNT_MESSAGE = "expected 5 fields (minute hour day month weekday), got {count}"


class ScheduleError(ValueError):
    """A schedule the user must fix. The message names no file or line: the caller adds them."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    hint: str = ""

    @property
    def size(self) -> int:
        return self.high - self.low + 1


_MONTH_ABBR = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY_ABBR = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23)
DAY = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, _MONTH_ABBR, "use jan..dec or 1-12")
# 0-7 as in cronie, so `*/n` and `a/n` run up to 7 (Sunday again); 7 is folded into 0.
WEEKDAY = _Field("day-of-week", 0, 7, _WEEKDAY_ABBR, "use sun..sat or 0-7")
_FIELDS = (MINUTE, HOUR, DAY, MONTH, WEEKDAY)

CRON_NAMES = frozenset(_MONTH_ABBR + _WEEKDAY_ABBR)

KEYWORDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_ELEMENT = r"(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?"
_ELEMENT_RE = re.compile(_ELEMENT, re.ASCII | re.IGNORECASE)
# One whole field (comma list of elements); used to tell a short cron line from calendar syntax.
FIELD_RE = re.compile(rf"{_ELEMENT}(?:,{_ELEMENT})*", re.ASCII | re.IGNORECASE)

# Quartz/croniter extensions: last day (L), nearest weekday (W), nth weekday (#), "no value" (?).
_UNSUPPORTED_RE = re.compile(r"[0-9]*[lw]|l-?[0-9]*|[0-9a-z]*#[0-9]*|\?", re.ASCII | re.IGNORECASE)

_ALL_DAYS = frozenset(range(1, 32))
_ALL_WEEKDAYS = frozenset(range(7))
# The longest each month can be; February has a 29th in leap years, which is enough to fire.
_MONTH_LENGTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# "any": every day; "dom"/"dow": only that field restricts; "or": either one matches.
DayRule = Literal["any", "dom", "dow", "or"]


@dataclass(frozen=True)
class CronSpec:
    """The expanded fields (sorted; weekdays 0-6 with 0 = Sunday) and how days combine."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    rule: DayRule


def parse_cron(text: str) -> CronSpec:
    """Parse five cron fields or an @keyword (not @reboot, which has no calendar form)."""
    if text.startswith("@"):
        if text.lower() not in KEYWORDS:
            names = ", ".join([*KEYWORDS, "@reboot"])
            raise ScheduleError(f"unknown schedule keyword {text!r}; use one of {names}")
        text = KEYWORDS[text.lower()]
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(FIELD_COUNT_MESSAGE.format(count=len(parts)))
    minutes, hours, days, months, weekdays = (
        _parse_field(field, part) for field, part in zip(_FIELDS, parts, strict=True)
    )
    rule = _day_rule(parts[2], parts[4], days, weekdays)
    if rule in ("dom", "or") and not _day_fits(days, months):
        if rule == "dom":
            raise ScheduleError(_never_fires(days, months))
        rule = "dow"  # the day-of-month half never matches; the weekday half still fires
    return CronSpec(
        _sorted(minutes), _sorted(hours), _sorted(days), _sorted(months), _sorted(weekdays), rule
    )


def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"{field.name}: empty item in {text!r}")
        if _UNSUPPORTED_RE.fullmatch(item):
            raise ScheduleError(
                f"{field.name}: {item!r} is not supported (no L, W, # or ?);"
                " write a systemd calendar expression instead"
            )
        match = _ELEMENT_RE.fullmatch(item)
        if match is None:
            raise ScheduleError(f"{field.name}: cannot read {item!r}")
        star, first, last, step_text = match.groups()
        step = _step(field, step_text)
        if star:
            low, high = field.low, field.high
        else:
            low = _value(field, first)
            if last is not None:
                high = _value(field, last)
                if field is WEEKDAY and high == 0 < low:
                    high = 7  # fri-sun: Sunday closes the week
                if high < low:
                    raise ScheduleError(
                        f"{field.name} range {item.split('/')[0]} is reversed"
                        " (ranges do not wrap around)"
                    )
            else:
                # `a/n` means `a-max/n`, as in cronie.
                high = field.high if step_text else low
        values.update(range(low, high + 1, step))
    if field is WEEKDAY and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _step(field: _Field, text: str | None) -> int:
    if text is None:
        return 1
    step = _number(text)
    if step == 0:
        raise ScheduleError(f"{field.name} step 0 is not allowed; the step must be at least 1")
    if step > field.size:
        raise ScheduleError(
            f"{field.name} step {text} is larger than the field ({field.low}-{field.high})"
        )
    return step


def _value(field: _Field, token: str) -> int:
    if token.isdigit():
        value = _number(token)
        if not field.low <= value <= field.high:
            raise ScheduleError(f"{field.name} {token} is out of range {field.low}-{field.high}")
        return value
    name = token.lower()
    if name in field.names:
        return field.names.index(name) + (1 if field is MONTH else 0)
    if field.names:
        raise ScheduleError(f"{field.name}: unknown name {token!r} ({field.hint})")
    raise ScheduleError(f"{field.name}: {token!r} is not a number")


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    # Huge literals are simply out of range; never hand them to int().
    return int(digits) if len(digits) <= 6 else 10**6


def _day_rule(
    day_text: str, weekday_text: str, days: frozenset[int], weekdays: frozenset[int]
) -> DayRule:
    # Cron ORs day-of-month and day-of-week when both are restricted. Which fields count as
    # restricted follows croniter (and POSIX): only a literal `*` is unrestricted, so
    # `0 0 */2 * 1` runs on odd days OR Mondays. cronie and Vixie cron treat any field that
    # *starts* with `*` as unrestricted and would AND that example. Like croniter, a field
    # spelling out its whole range (1-31, 0-7) next to a field containing `*` is unrestricted.
    day_any = day_text == "*" or (days == _ALL_DAYS and "*" in weekday_text)
    weekday_any = weekday_text == "*" or (weekdays == _ALL_WEEKDAYS and "*" in day_text)
    if day_any or weekday_any:
        # AND, where the unrestricted side matches every day anyway.
        if days != _ALL_DAYS:
            return "dom"
        return "dow" if weekdays != _ALL_WEEKDAYS else "any"
    if days == _ALL_DAYS or weekdays == _ALL_WEEKDAYS:
        return "any"
    return "or"


def _day_fits(days: Iterable[int], months: Iterable[int]) -> bool:
    longest = max(_MONTH_LENGTH[month] for month in months)
    return min(days) <= longest


def _never_fires(days: frozenset[int], months: frozenset[int]) -> str:
    month_text = _values(sorted(months), lambda m: MONTH_NAMES[m - 1])
    verb = "has" if len(months) == 1 else "have"
    day_text = _join(_runs(sorted(days), str, " to "), " or ")
    return f"never fires: {month_text} {verb} no day {day_text}"


# --- OnCalendar= -------------------------------------------------------------------------


def on_calendar(spec: CronSpec) -> tuple[str, ...]:
    """OnCalendar= values (no timezone) that fire exactly when the cron expression does.

    The output equals systemd's own normalized form, so `systemd-analyze calendar` echoes it.
    """
    time = f"{_compact(spec.hours, HOUR)}:{_compact(spec.minutes, MINUTE)}:00"
    month = _compact(spec.months, MONTH)
    by_day = f"*-{month}-{_compact(spec.days, DAY)} {time}"
    by_weekday = f"{_weekdays(spec.weekdays)} *-{month}-* {time}"
    if spec.rule == "dom":
        return (by_day,)
    if spec.rule == "dow":
        return (by_weekday,)
    if spec.rule == "or":
        # OnCalendar ANDs weekday and date, so cron's OR needs one line per side.
        return (by_day, by_weekday)
    return (f"*-{month}-* {time}",)


def _compact(values: tuple[int, ...], field: _Field) -> str:
    if len(values) == field.size:
        return "*"
    if len(values) >= 3:
        step = values[1] - values[0]
        if step > 1 and all(b - a == step for a, b in pairwise(values)):
            start = f"{values[0]:02d}"
            # systemd 252 mis-steps an open `a/n` whose last step overshoots the end of the
            # field (`*-*-* 00/5:00:00` skips midnight), so `a/n` is only used when the steps
            # tile the cycle exactly; otherwise the range is bounded, which it handles right.
            tiles = field.size % step == 0 and values[0] - field.low < step
            open_ended = values[-1] + step > field.high
            if tiles and open_ended and field is not DAY:  # months differ in length
                return f"{start}/{step}"
            return f"{start}..{values[-1]:02d}/{step}"
    return ",".join(_runs(values, lambda v: f"{v:02d}", ".."))


_SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _weekdays(weekdays: tuple[int, ...]) -> str:
    # systemd counts from Monday; cron's 0 (Sunday) comes last.
    monday_first = sorted((day - 1) % 7 for day in weekdays)
    return ",".join(_runs(monday_first, lambda d: _SYSTEMD_WEEKDAYS[d], ".."))


def _runs(values: Iterable[int], show: Callable[[int], str], to: str) -> list[str]:
    """Render sorted values, writing runs of three or more as `first<to>last`."""
    groups: list[list[int]] = []
    for value in values:
        if groups and value == groups[-1][-1] + 1:
            groups[-1].append(value)
        else:
            groups.append([value])
    out: list[str] = []
    for group in groups:
        if len(group) >= 3:
            out.append(f"{show(group[0])}{to}{show(group[-1])}")
        else:
            out.extend(show(value) for value in group)
    return out


# --- English -----------------------------------------------------------------------------

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def describe_cron(spec: CronSpec) -> str:
    """Plain English, e.g. "at 07:00 on Monday to Friday"; verbose but exact when irregular."""
    when = _time_phrase(spec.minutes, spec.hours)
    months = "" if len(spec.months) == 12 else _values(spec.months, lambda m: MONTH_NAMES[m - 1])
    days = _values(spec.days)
    day_word = "day" if len(spec.days) == 1 else "days"
    weekdays = _values(sorted((d - 1) % 7 for d in spec.weekdays), _WEEKDAY_NAMES.__getitem__)
    in_months = f" in {months}" if months else ""
    of_months = f"of {months}" if months else "of the month"
    if spec.rule == "dom":
        return f"{when} on {day_word} {days} {of_months}"
    if spec.rule == "dow":
        return f"{when} on {weekdays}{in_months}"
    if spec.rule == "or":
        return f"{when} on {day_word} {days} {of_months} and on every {weekdays}{in_months}"
    every_day = " every day" if when.startswith("at ") else ""
    return f"{when}{every_day}{in_months}"


def _time_phrase(minutes: tuple[int, ...], hours: tuple[int, ...]) -> str:
    every = _every_n(minutes, 60)
    if len(hours) == 24:
        if every == 1:
            return "every minute"
        if minutes == (0,):
            return "every hour"
        if every:
            return f"every {every} minutes"
        return f"every hour at {_plural('minute', minutes)} {_values(minutes)}"
    if every:
        lead = "every minute" if every == 1 else f"every {every} minutes"
        return f"{lead} {_hour_window(hours, minutes[-1])}"
    hourly = _every_n(hours, 24)
    if len(minutes) == 1 and hourly:
        lead = f"every {hourly} hours"
        return lead if minutes == (0,) else f"{lead} at minute {minutes[0]}"
    if len(minutes) * len(hours) <= 8:
        return "at " + _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes])
    if minutes == (0,) and _contiguous(hours):
        return f"every hour {_hour_window(hours, 0)}"
    return (
        f"at {_plural('minute', minutes)} {_values(minutes)}"
        f" past {_plural('hour', hours)} {_values(hours)}"
    )


def _every_n(values: tuple[int, ...], cycle: int) -> int | None:
    """n when the values are exactly 0, n, 2n, ... and n divides the cycle evenly."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    if cycle % step == 0 and values == tuple(range(0, cycle, step)):
        return step
    return None


def _hour_window(hours: tuple[int, ...], last_minute: int) -> str:
    if _contiguous(hours):
        return f"from {hours[0]:02d}:00 to {hours[-1]:02d}:{last_minute:02d}"
    return f"during hours {_values(hours)}"


def _contiguous(values: tuple[int, ...]) -> bool:
    return values[-1] - values[0] == len(values) - 1


def _plural(word: str, values: tuple[int, ...]) -> str:
    return word if len(values) == 1 else f"{word}s"


def _values(values: Iterable[int], show: Callable[[int], str] = str) -> str:
    """English for sorted integers, writing runs as "a to b": "1, 5 and 10 to 12"."""
    return _join(_runs(values, show, " to "))


def _join(parts: list[str], last_joiner: str = " and ") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + last_joiner + parts[-1]

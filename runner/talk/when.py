"""When a snooze or a silence ends, as a person writes it: "2h", "1d", "tomorrow 9:00", "9:00",
"mon 8:00", "2026-12-08 09:00".

Hours and minutes are elapsed time; days and weeks are calendar days in the config's time zone
(a snooze of 1d from 21:00 ends at 21:00 the next day, whatever the clock changes between); a
wall time is the next time the clock in that zone shows it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from runner.clock import zone

DURATION = re.compile(r"(?:(\d+)\s*(w|d|h|m|s|min|mins|hours?|days?|weeks?)\s*)+")
PART = re.compile(r"(\d+)\s*(w|d|h|m|s|min|mins|hours?|days?|weeks?)")
CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ELAPSED = {"h": 3600, "hour": 3600, "hours": 3600, "m": 60, "min": 60, "mins": 60, "s": 1}
CALENDAR = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7}
LONGEST = timedelta(days=366)
"""The furthest a snooze or silence may reach: a year (a typo of 99999999d is no date)."""
MORNING = time(9, 0)
"""A day named without a time: its morning ("tomorrow" is tomorrow 9:00)."""


def until(text: str, now: datetime, timezone: str | None) -> datetime:
    """The moment (UTC) `text` names, after `now`; ValueError saying why otherwise."""
    words = " ".join(text.lower().split())
    if not words:
        raise ValueError("no time given (say 2h, tomorrow 9:00, mon 8:00 or 2026-12-08 09:00)")
    where = zone(timezone)
    local = now.astimezone(where)
    if DURATION.fullmatch(words):
        try:
            moment = _after(words, now, where)
        except OverflowError:
            raise ValueError(f"{text.strip()!r} is further than a year") from None
    else:
        day, clock = _day_and_clock(words, local.date())
        if day is None:  # only a time: the next time the clock shows it
            day = local.date()
            if datetime.combine(day, clock, where) <= now:
                day += timedelta(days=1)
        moment = datetime.combine(day, clock, where)
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise ValueError(f"{text.strip()!r} is not in the future")
    if moment - now > LONGEST:
        raise ValueError(f"{text.strip()!r} is further than a year")
    return moment


def _after(words: str, now: datetime, where: tzinfo) -> datetime:
    days = seconds = 0
    for count, unit in PART.findall(words):
        if unit in CALENDAR:
            days += int(count) * CALENDAR[unit]
        else:
            seconds += int(count) * ELAPSED[unit]
    moment = now
    if days:  # the same wall time that many calendar days later
        local = now.astimezone(where)
        moment = datetime.combine(local.date() + timedelta(days=days), local.time(), where)
    return moment + timedelta(seconds=seconds)


def _day_and_clock(words: str, today: date) -> tuple[date | None, time]:
    head, _, rest = words.partition(" ")
    if head in ("today", "tonight"):
        return today, _clock(rest) if rest else time(20, 0) if head == "tonight" else MORNING
    if head == "tomorrow":
        return today + timedelta(days=1), _clock(rest) if rest else MORNING
    weekday = _weekday(head)
    if weekday is not None:  # the next one, never today
        ahead = (weekday - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead), _clock(rest) if rest else MORNING
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(t\d.*)?", head):
        day_text, _, clock_text = head.partition("t")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ValueError(f"{head!r} is not a date") from None
        clock_text = clock_text or rest
        return day, _clock(clock_text) if clock_text else MORNING
    return None, _clock(words)


def _weekday(word: str) -> int | None:
    names = {day: n for n, day in enumerate(WEEKDAYS)}
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if word in names:
        return names[word]
    return full.index(word) if word in full else None


def _clock(text: str) -> time:
    found = CLOCK.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text.strip()!r} is not a time (say 2h, tomorrow 9:00 or mon 8:00)")
    hours, minutes = int(found.group(1)), int(found.group(2) or 0)
    meridiem = found.group(3)
    if meridiem and not 1 <= hours <= 12:
        raise ValueError(f"{text.strip()!r} is not a time")
    if meridiem:
        hours = hours % 12 + (12 if meridiem == "pm" else 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text.strip()!r} is not a time")
    return time(hours, minutes)

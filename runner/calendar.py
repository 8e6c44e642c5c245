"""systemd calendar expressions (OnCalendar= values) evaluated backwards: when did a timer last
fire, and when did it fire in a stretch of time? "Since the previous deadline" and a chain's
"this cycle" are that moment, not a count of seconds, so they stay right across clock changes and
months of different lengths; the heartbeat's "did it run?" compares each firing with the runs.

Firings follow systemd's rules in the timer's zone: a wall time that does not exist that day
(spring forward) is skipped, and a repeated wall time (fall back) fires once, on its first pass.
The syntax read is what vigil compiles: systemd's normal form (`Mon..Fri *-*-* 07:00:00`, what
cron schedules become), the shorthands (`daily`, `weekly`, ...) and the short forms a user may
write (`Mon 09:00`, `*-*-01`, `*:0/15`). Anything else is a CalendarError; the caller falls back.
"""

from __future__ import annotations

import calendar as _days_in
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from runner.clock import zone

SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOK_BACK_DAYS = 366 * 8
"""How far back a firing is looked for: covers 29 February on a given weekday... nearly; an
expression firing less often than this is treated as not having fired."""


class CalendarError(ValueError):
    """An expression this reader does not understand."""


class Expression:
    """One OnCalendar= value as sets of allowed values per field (None: any)."""

    def __init__(self, text: str) -> None:
        words = SHORTHANDS.get(text.strip().lower(), text).split()
        weekdays = date_part = time_part = None
        for word in words:
            if ":" in word and time_part is None:
                time_part = word
            elif "-" in word and any(c.isdigit() or c == "*" for c in word) and not _named(word):
                date_part = word
            elif weekdays is None and date_part is None and time_part is None:
                weekdays = word
            else:
                raise CalendarError(f"cannot read {text!r}")
        self.weekdays = _weekday_set(weekdays) if weekdays else None
        self.years, self.months, self.days, self.from_end = _date_sets(date_part or "*-*-*")
        self.hours, self.minutes, self.seconds = _time_sets(time_part or "00:00:00")

    def matches_day(self, day: date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.days is not None:
            number = day.day
            if self.from_end:
                number = _days_in.monthrange(day.year, day.month)[1] - day.day + 1
            if number not in self.days:
                return False
        return self.weekdays is None or day.weekday() in self.weekdays

    def per_day(self) -> int:
        """How many wall times a matching day has (before a clock change adds or drops any)."""
        return (
            len(self.hours or range(24))
            * len(self.minutes or range(60))
            * len(self.seconds or range(60))
        )

    def times_descending(self) -> list[time]:
        hours = sorted(self.hours or range(24), reverse=True)
        minutes = sorted(self.minutes or range(60), reverse=True)
        seconds = sorted(self.seconds or range(60), reverse=True)
        return [time(h, m, s) for h in hours for m in minutes for s in seconds]


def _named(word: str) -> bool:
    return word[:3].lower() in WEEKDAYS


def _items(text: str, low: int, high: int, value: object) -> set[int] | None:
    """A comma list of values, a..b ranges and /steps, within low..high; None for `*`."""
    if text == "*":
        return None
    found: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif ".." in base:
            first_text, last_text = base.split("..")
            first, last = value(first_text), value(last_text)  # type: ignore[operator]
        else:
            first = value(base)  # type: ignore[operator]
            last = high if step_text else first
        if step < 1 or not low <= first <= last <= high:
            raise CalendarError(f"cannot read {item!r}")
        found.update(range(first, last + 1, step))
    return found


def _number(text: str) -> int:
    if not text.isdigit():
        raise CalendarError(f"not a number: {text!r}")
    return int(text)


def _weekday(text: str) -> int:
    name = text[:3].lower()
    if name not in WEEKDAYS:
        raise CalendarError(f"not a weekday: {text!r}")
    return WEEKDAYS.index(name)


def _weekday_set(text: str) -> set[int]:
    found: set[int] = set()
    for item in text.split(","):
        first, sep, last = item.replace("-", "..").partition("..")
        if sep:
            found.update(range(_weekday(first), _weekday(last) + 1))
        else:
            found.add(_weekday(first))
    return found


def _date_sets(text: str) -> tuple[set[int] | None, set[int] | None, set[int] | None, bool]:
    from_end = "~" in text
    parts = text.replace("~", "-").split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        raise CalendarError(f"cannot read the date {text!r}")
    years = _items(parts[0], 1970, 2199, _number)
    return years, _items(parts[1], 1, 12, _number), _items(parts[2], 1, 31, _number), from_end


def _time_sets(text: str) -> tuple[set[int] | None, set[int] | None, set[int] | None]:
    parts = text.split(":")
    if len(parts) == 2:
        parts.append("00")
    if len(parts) != 3:
        raise CalendarError(f"cannot read the time {text!r}")
    hours = _items(parts[0], 0, 23, _number)
    return hours, _items(parts[1], 0, 59, _number), _items(parts[2], 0, 59, _number)


def previous_firing(lines: list[str], timezone: str, before: datetime) -> datetime | None:
    """The latest firing of any of `lines` strictly before `before`, as systemd computes it in
    `timezone` (None if there is none within LOOK_BACK_DAYS)."""
    expressions = [Expression(line) for line in lines]
    where = zone(timezone)
    local_day = before.astimezone(where).date()
    for back in range(LOOK_BACK_DAYS):
        day = local_day - timedelta(days=back)
        found = [
            moment
            for expression in expressions
            if expression.matches_day(day)
            for moment in [_latest_on(expression, day, where, before)]
            if moment is not None
        ]
        if found:
            return max(found)
    return None


def _latest_on(
    expression: Expression, day: date, where: tzinfo, before: datetime
) -> datetime | None:
    for wall in expression.times_descending():
        utc = _firing(day, wall, where)
        if utc is not None and utc < before:
            return utc
    return None


def _firing(day: date, wall: time, where: tzinfo) -> datetime | None:
    """The moment `wall` on `day` fires in zone `where` (UTC), None if it does not exist."""
    moment = datetime.combine(day, wall, where)  # fold=0: the first pass of a repeated time
    utc = moment.astimezone(UTC)
    if utc.astimezone(where).replace(tzinfo=None) != moment.replace(tzinfo=None):
        return None  # a wall time the clock skipped that day: systemd skips it too
    return utc


def firings_between(
    lines: list[str], timezone: str, after: datetime, until: datetime
) -> list[datetime]:
    """Every firing of any of `lines` in (`after`, `until`], oldest first, in UTC: the same
    moments previous_firing steps back through (one per moment when lines coincide)."""
    expressions = [(e, e.times_descending()) for e in map(Expression, lines)]
    where = zone(timezone)
    # A day either side: a local day's firings may fall on the neighbouring UTC days.
    day = after.astimezone(where).date() - timedelta(days=1)
    last = until.astimezone(where).date() + timedelta(days=1)
    found: set[datetime] = set()
    while day <= last:
        for expression, walls in expressions:
            if expression.matches_day(day):
                for wall in walls:
                    utc = _firing(day, wall, where)
                    if utc is not None and after < utc <= until:
                        found.add(utc)
        day += timedelta(days=1)
    return sorted(found)


def expected_firings(line: str, timezone: str, after: datetime, until: datetime) -> int:
    """About how many times `line` fires in (`after`, `until`]: its wall times on each local day
    it matches, first and last day whole (so never fewer, but for a clock change's skipped
    hour). Counted, not computed: cheap for a minutely job too. CalendarError when unread."""
    expression = Expression(line)
    where = zone(timezone)
    day, last = after.astimezone(where).date(), until.astimezone(where).date()
    days = 0
    while day <= last:
        days += expression.matches_day(day)
        day += timedelta(days=1)
    return days * expression.per_day()

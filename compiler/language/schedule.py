"""Schedules: cron lines, @keywords and systemd calendar expressions, as OnCalendar= values.

Daylight saving time. Timers follow the wall clock of the job's `timezone:`, so a 09:00 job
stays at 09:00 across clock changes. Only times inside a change behave specially, and there
systemd, which runs the timers, differs from cron:

- Spring forward: a wall time that does not exist that day (02:30 in New York on the second
  Sunday of March) is skipped; the job next runs at 02:30 the following day. Cron (cronie,
  croniter) runs it at 03:00 instead.
- Fall back: the repeated hour runs only once, on its first pass. A job at 01:30 in New York
  on the first Sunday of November runs at 01:30 EDT but not again at 01:30 EST, and an
  every-15-minutes job pauses for that hour. croniter fires in both passes.

Parsing is pure and fast; checking calendar syntax and computing firings ask
`systemd-analyze calendar`, in one subprocess per call.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shutil
import subprocess
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Literal

from compiler.errors import VigilError
from compiler.language import cron
from compiler.language.cron import ScheduleError

__all__ = [
    "CalendarCheckUnavailable",
    "ScheduleError",
    "Timing",
    "check_calendars",
    "check_timezone",
    "describe",
    "next_elapses",
    "parse_schedule",
]

TIMEZONE_IN_SCHEDULE = "put the timezone in `timezone:`, not in the schedule"
INVALID_CALENDAR = "invalid calendar expression"
NEVER_FIRES = "never fires"


class CalendarCheckUnavailable(VigilError, RuntimeError):
    """systemd-analyze is missing or unusable, so calendar expressions cannot be checked."""


@dataclass(frozen=True)
class Timing:
    """A parsed schedule. For kind "reboot" the timer uses OnStartupSec= instead."""

    expression: str
    kind: Literal["cron", "calendar", "reboot"]
    on_calendar: tuple[str, ...]


def parse_schedule(expression: str) -> Timing:
    """Classify and translate a schedule; calendar syntax is checked later by check_calendars."""
    return _parse_cached(expression)


@lru_cache(maxsize=4096)
def _parse_cached(expression: str) -> Timing:
    _check_characters(expression)
    tokens = expression.split()
    if len(tokens) > 1 and _looks_like_timezone(tokens[-1]):
        raise ScheduleError(TIMEZONE_IN_SCHEDULE)
    if tokens[0].startswith("@"):
        if len(tokens) > 1:
            raise ScheduleError(f"{tokens[0]} takes nothing after it")
        if tokens[0].lower() == "@reboot":
            return Timing(expression, "reboot", ())
        return Timing(expression, "cron", cron.on_calendar(cron.parse_cron(tokens[0])))
    if _is_cron(tokens):
        spec = cron.parse_cron(" ".join(tokens))
        return Timing(expression, "cron", cron.on_calendar(spec))
    return Timing(expression, "calendar", (" ".join(tokens),))


# Real schedules are a few dozen characters. The bound keeps each one a single argument that
# `systemd-analyze calendar` can be given (Linux refuses one over 128 KiB, and an unrunnable
# check only warns) and one short OnCalendar= line.
MAX_SCHEDULE = 1000


def _check_characters(expression: str) -> None:
    if not expression.strip():
        raise ScheduleError("schedule is empty")
    if len(expression) > MAX_SCHEDULE:
        raise ScheduleError(f"schedule is longer than {MAX_SCHEDULE} characters")
    if expression.isprintable():
        return
    for char in expression:
        category = unicodedata.category(char)
        if char in "\n\r" or category in ("Zl", "Zp"):
            raise ScheduleError("schedule must be a single line")
        if category.startswith("C") and char != "\t":
            raise ScheduleError(f"schedule contains a control character (U+{ord(char):04X})")


def _is_cron(tokens: list[str]) -> bool:
    # systemd calendar syntax has at most three parts once the timezone is gone, and its
    # dates and times ("*-*-*", "10:00", "Mon..Fri") never read as cron fields.
    if len(tokens) >= 5:
        return True
    return len(tokens) >= 2 and all(cron.FIELD_RE.fullmatch(token) for token in tokens)


_ZONE_PATH = re.compile(r"[A-Za-z_]+(?:/[A-Za-z_][A-Za-z0-9_+-]*)+")
_ABBREVIATION = re.compile(r"[A-Z]{3,5}")


def _looks_like_timezone(token: str) -> bool:
    # systemd reads a trailing "UTC", zone name or local abbreviation (CET, EDT) as the zone.
    if token.upper() == "UTC" or _ZONE_PATH.fullmatch(token):
        return True
    if not token[0].isalpha() or token.lower() in cron.CRON_NAMES:
        return False
    return bool(_ABBREVIATION.fullmatch(token)) or token in _zones()


def describe(timing: Timing) -> str:
    """Plain English for a schedule, e.g. "at 07:00 on Monday to Friday"."""
    if timing.kind == "reboot":
        return "once when the user manager starts"
    if timing.kind == "calendar":
        return f"systemd calendar: {timing.on_calendar[0]}"
    return cron.describe_cron(cron.parse_cron(" ".join(timing.expression.split())))


# --- Time zones --------------------------------------------------------------------------

# In the zone database's directory but not zones a schedule should name.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


def check_timezone(name: str) -> None:
    """Accept IANA zone names (and "UTC"); suggest the closest names otherwise."""
    if name not in _NOT_ZONES and _loads(name):
        return  # the common case, without listing the whole zone database (~15 ms)
    zones = _zones()
    if name in zones:
        return
    guesses = _guess_zones(name, zones)
    if guesses:
        hint = "did you mean " + " or ".join(repr(guess) for guess in guesses) + "?"
    else:
        hint = "use an IANA name such as 'Europe/Berlin' or 'UTC'"
    raise ScheduleError(f"unknown timezone {name!r}; {hint}")


@cache
def _loads(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _guess_zones(name: str, zones: frozenset[str]) -> list[str]:
    wanted = name.strip().replace(" ", "_").lower()
    # Case slips and bare city names ("berlin") first, then spelling slips.
    exact = sorted(z for z in zones if wanted in (z.lower(), z.rsplit("/", 1)[-1].lower()))
    return exact[:3] or difflib.get_close_matches(name, sorted(zones), n=3)


# --- systemd-analyze ---------------------------------------------------------------------


def check_calendars(expressions: Iterable[str]) -> dict[str, str | None]:
    """Map each expression to None (valid, fires again) or an error message.

    All expressions go to one `systemd-analyze calendar` run; only if its output cannot be
    matched to the expressions is each one checked on its own.
    """
    wanted = list(dict.fromkeys(expressions))
    compiled = {e: _as_compiled(e) for e in wanted}
    todo = list(dict.fromkeys(c for c in compiled.values() if c))
    verdicts: dict[str, str | None] = {}
    if todo:
        blocks = _match_blocks(_analyze(todo).stdout, todo)
        if blocks is None:
            blocks = [_one_block(expression) for expression in todo]
        verdicts = {c: _verdict(block) for c, block in zip(todo, blocks, strict=True)}
    return {e: verdicts.get(compiled[e], INVALID_CALENDAR) for e in wanted}


def next_elapses(
    on_calendar: Sequence[str], timezone: str, count: int, base: datetime | None = None
) -> list[datetime]:
    """The next `count` firings of all lines together, as computed by systemd, in `timezone`.

    Fewer come back if the lines stop firing (systemd computes no dates past the year 2199).
    """
    if count < 1 or not on_calendar:
        return []
    check_timezone(timezone)
    lines = [f"{line} {timezone}" for line in on_calendar]
    args = [f"--iterations={count}"]
    if base is not None:
        if base.tzinfo is None:
            raise ValueError("base must be a timezone-aware datetime")
        args.append(_base_time(base))
    blocks = _read_blocks(lines, args)
    for line, block in zip(on_calendar, blocks, strict=True):
        if not block:
            raise ScheduleError(f"{INVALID_CALENDAR}: {line}")
    found = {moment for block in blocks for moment in _elapses(block)}
    zone = zoneinfo.ZoneInfo(timezone)
    return [moment.astimezone(zone) for moment in sorted(found)[:count]]


def _as_compiled(expression: str) -> str:
    """The OnCalendar= value parse_schedule makes of a calendar expression; "" if unusable."""
    try:
        _check_characters(expression)
    except ScheduleError:
        return ""
    return " ".join(expression.split())


def _analyze(
    expressions: Sequence[str], options: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    program = shutil.which("systemd-analyze")
    if program is None:
        raise CalendarCheckUnavailable(
            "systemd-analyze was not found; it is needed to check calendar schedules"
        )
    # TZ=UTC makes every printed time UTC; LC_ALL=C keeps the format fixed.
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C", "SYSTEMD_COLORS": "0"}
    try:
        result = subprocess.run(
            [program, "calendar", *options, "--", *expressions],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise CalendarCheckUnavailable(f"could not run systemd-analyze: {error}") from error
    # A bad expression exits 1 too, so only an unknown option (an old systemd) is told apart.
    if result.returncode not in (0, 1) or "unrecognized option" in result.stderr:
        reason = result.stderr.strip().splitlines()[:1] or [f"exit status {result.returncode}"]
        raise CalendarCheckUnavailable(f"systemd-analyze calendar failed: {reason[0]}")
    return result


def _match_blocks(stdout: str, expressions: Sequence[str]) -> list[list[str]] | None:
    """Split output into one block per expression (empty when it failed to parse).

    systemd-analyze prints a blank line between expressions and nothing for a bad one. With
    several expressions each block must name its own, or the layout is not what we expect.
    """
    blocks: list[list[str]] = [[]]
    for line in stdout.splitlines():
        if line.strip():
            blocks[-1].append(line.strip())
        else:
            blocks.append([])
    if len(blocks) != len(expressions):
        return None
    for expression, block in zip(expressions, blocks, strict=True):
        if not block:
            continue
        if _field(block, "Normalized form:") is None:
            return None
        shown = _field(block, "Original form:", "Normalized form:")
        if len(expressions) > 1 and shown != expression.strip():
            return None
    return blocks


def _one_block(expression: str) -> list[str]:
    return _read_blocks([expression])[0]


def _read_blocks(expressions: Sequence[str], options: Sequence[str] = ()) -> list[list[str]]:
    """One systemd-analyze run's block per expression; CalendarCheckUnavailable when its
    output cannot be matched to them."""
    blocks = _match_blocks(_analyze(expressions, options).stdout, expressions)
    if blocks is None:
        raise CalendarCheckUnavailable("could not read the output of systemd-analyze calendar")
    return blocks


def _base_time(moment: datetime) -> str:
    """systemd-analyze's option counting from `moment`: firings fall on whole seconds and
    systemd returns those strictly after the base."""
    return f"--base-time=@{math.floor(moment.timestamp())}"


def _field(block: list[str], *labels: str) -> str | None:
    """The value of the first label present in the block."""
    for label in labels:
        for line in block:
            if line.startswith(label):
                return line[len(label) :].strip()
    return None


def _verdict(block: list[str]) -> str | None:
    if not block:
        return INVALID_CALENDAR
    if _field(block, "Next elapse:") == "never":
        return NEVER_FIRES
    return None


_ELAPSE = re.compile(
    r"(?:Next elapse|Iter\. #\d+):\s+\w+ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC", re.ASCII
)


def _elapses(block: list[str]) -> list[datetime]:
    moments = []
    for line in block:
        match = _ELAPSE.fullmatch(line)
        if match:
            moments.append(datetime.fromisoformat(match[1]).replace(tzinfo=UTC))
    return moments


def first_elapses(
    timers: Sequence[tuple[Sequence[str], str]], base: datetime | None = None
) -> list[datetime | None]:
    """The next firing of each (OnCalendar lines, timezone) pair, in one systemd-analyze run.

    None for a timer with no lines or that never fires again.
    """
    lines = [f"{line} {zone}" for on_calendar, zone in timers for line in on_calendar]
    if not lines:
        return [None] * len(timers)
    args = []
    if base is not None:
        args.append(_base_time(base))
    blocks = _read_blocks(lines, args)
    found: list[datetime | None] = []
    position = 0
    for on_calendar, zone in timers:
        mine = blocks[position : position + len(on_calendar)]
        position += len(on_calendar)
        moments = [moment for block in mine for moment in _elapses(block)]
        found.append(min(moments).astimezone(zoneinfo.ZoneInfo(zone)) if moments else None)
    return found


FIRINGS_CAP = 20_000
"""The most firings `firings_within` computes for one timer: a minutely job's two weeks."""


FIRST_ITERATIONS = 64
"""Firings asked first of a line the in-process reader (runner/calendar.py) cannot count."""
MARGIN = 2
"""Firings asked beyond the count: one past `until` shows the window is complete."""

FiringsCache = dict[tuple[str, str, float, float], list[datetime]]
"""(line, zone, the window's first day, its end) -> the line's firings from that day's start."""


def firings_within(
    timers: Mapping[str, tuple[Sequence[str], str]],
    after: datetime,
    until: datetime,
    *,
    cache: FiringsCache | None = None,
) -> dict[str, tuple[list[datetime], bool]]:
    """Each timer's firings in (`after`, `until`], as computed by systemd, in the timer's zone,
    and whether they were cut at FIRINGS_CAP. A timer is (OnCalendar lines, timezone).

    One systemd-analyze run asks the lines for as many iterations as each is counted to fire in
    the window (runner/calendar.py counts most expressions cheaply; FIRST_ITERATIONS for one
    it cannot read); the lines still short of `until` are asked again for four times as many,
    until each is past it or at the cap. With a `cache` (a server's life), a line's firings are
    computed once per window day: from the start of `after`'s UTC day, then kept.
    """
    start = after
    if cache is not None:
        start = datetime.fromtimestamp(after.timestamp() // 86400 * 86400, UTC)
    wanted = [(line, zone) for lines, zone in timers.values() for line in lines]
    known = cache if cache is not None else {}
    for stale in [key for key in known if key[2] != start.timestamp()]:
        del known[stale]  # another day's window: the server's cache holds one day
    computed = {(line, zone): known.get(_key(line, zone, start, until)) for line, zone in wanted}
    missing = sorted({pair for pair, found in computed.items() if found is None})
    fresh, cut = _analyze_firings(missing, start, until)
    computed.update(fresh)
    known.update({_key(line, zone, start, until): fresh[line, zone] for line, zone in fresh})
    cut |= {pair for pair in computed if len(computed[pair] or ()) >= FIRINGS_CAP}
    result = {}
    for name, (lines, zone) in timers.items():
        moments = {m for line in lines for m in computed[line, zone] or () if m > after}
        result[name] = (
            sorted(moment.astimezone(zoneinfo.ZoneInfo(zone)) for moment in moments),
            any((line, zone) in cut for line in lines),
        )
    return result


def _key(line: str, zone: str, start: datetime, until: datetime) -> tuple[str, str, float, float]:
    return (line, zone, start.timestamp(), until.timestamp())


def _analyze_firings(
    pairs: Sequence[tuple[str, str]], after: datetime, until: datetime
) -> tuple[dict[tuple[str, str], list[datetime]], set[tuple[str, str]]]:
    """Each (line, zone)'s firings in (`after`, `until`] (UTC), and those cut at the cap."""
    found: dict[tuple[str, str], set[datetime]] = {pair: set() for pair in pairs}
    cut: set[tuple[str, str]] = set()
    wanted = [(pair, _iterations(*pair, after, until)) for pair in pairs]
    while wanted:
        short = []
        for count in sorted({count for _, count in wanted}):
            group = [pair for pair, asked in wanted if asked == count]
            lines = [f"{line} {zone}" for line, zone in group]
            blocks = _read_blocks(lines, [f"--iterations={count}", _base_time(after)])
            for pair, block in zip(group, blocks, strict=True):
                moments = _elapses(block)
                found[pair].update(moment for moment in moments if moment <= until)
                if len(moments) == count and moments[-1] < until:
                    if count >= FIRINGS_CAP:
                        cut.add(pair)
                    else:
                        short.append((pair, min(count * 4, FIRINGS_CAP)))
        wanted = short
    return {pair: sorted(moments) for pair, moments in found.items()}, cut


def _iterations(line: str, zone: str, after: datetime, until: datetime) -> int:
    """How many firings to ask systemd for first: the count of them, and a margin."""
    from runner.calendar import CalendarError, expected_firings

    try:
        expected = expected_firings(line, zone, after, until)
    except (CalendarError, ValueError, KeyError):
        return FIRST_ITERATIONS
    return min(expected + MARGIN, FIRINGS_CAP)

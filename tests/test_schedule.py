"""Schedules: cron translation checked against croniter and systemd, messages, time zones, DST."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from compiler.language import schedule
from compiler.language.cron import parse_cron
from compiler.language.schedule import (
    CalendarCheckUnavailable,
    ScheduleError,
    Timing,
    check_calendars,
    check_timezone,
    describe,
    next_elapses,
    parse_schedule,
)

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"
)

CORPUS = Path(__file__).parent / "cases" / "cron_corpus.txt"
# Between the autumn and spring clock changes of both New York (1 Nov - 14 Mar) and
# Lord Howe (4 Oct - 4 Apr), so frequent schedules see no DST change; rarer ones only cross
# changes at unaffected hours, which _assert_no_dst_edge checks. Seconds are off the minute.
BASE = datetime(2026, 11, 15, 3, 17, 29, tzinfo=UTC)
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
FIRINGS = 50


def _corpus() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in CORPUS.read_text().splitlines())
    return [line for line in lines if line]


def test_corpus_is_big_enough() -> None:
    assert len(_corpus()) >= 40
    assert len(set(_corpus())) == len(_corpus())


# --- cron against croniter, as computed by systemd ---------------------------------------


def _croniter_firings(expression: str, start: datetime) -> list[datetime]:
    runs = croniter(expression, start)
    return [runs.get_next(datetime) for _ in range(FIRINGS)]


def _wall_time_is_irregular(wall: datetime, zone: ZoneInfo) -> bool:
    """True for a wall time skipped or repeated by a DST change in the zone."""
    offsets = {wall.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1)}
    return len(offsets) > 1


def _assert_no_dst_edge(expression: str, zone: ZoneInfo) -> None:
    # Naive croniter gives the wall-clock times; systemd and cron only differ on those.
    walls = _croniter_firings(expression, BASE.astimezone(zone).replace(tzinfo=None))
    edges = [wall for wall in walls if _wall_time_is_irregular(wall, zone)]
    assert not edges, f"pick another BASE: {expression!r} hits DST changes at {edges}"


@needs_systemd_analyze
@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("expression", _corpus())
def test_systemd_fires_when_croniter_does(expression: str, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    _assert_no_dst_edge(expression, zone)
    timing = parse_schedule(expression)
    assert timing.kind == "cron"
    expected = _croniter_firings(expression, BASE.astimezone(zone))
    # systemd computes no dates past 2199 (only February 29th gets that far here).
    expected = [moment for moment in expected if moment.year < 2200]
    got = next_elapses(timing.on_calendar, zone_name, FIRINGS, base=BASE)
    assert [m.isoformat() for m in got] == [m.isoformat() for m in expected]


@needs_systemd_analyze
def test_translations_are_already_in_systemd_normal_form() -> None:
    lines = sorted({line for e in _corpus() for line in parse_schedule(e).on_calendar})
    result = subprocess.run(
        [shutil.which("systemd-analyze") or "systemd-analyze", "calendar", "--", *lines],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "LC_ALL": "C"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Original form" not in result.stdout
    assert result.stdout.count("Normalized form:") == len(lines)


# --- translation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "on_calendar"),
    [
        ("0 9,14,18 * * *", ("*-*-* 09,14,18:00:00",)),
        ("0 7 * * mon-fri", ("Mon..Fri *-*-* 07:00:00",)),
        ("*/15 * * * *", ("*-*-* *:00/15:00",)),
        ("*/7 * * * *", ("*-*-* *:00..56/7:00",)),
        ("10-40/10 * * * *", ("*-*-* *:10..40/10:00",)),
        ("5/20 * * * *", ("*-*-* *:05/20:00",)),
        ("0,30 9-17 * * *", ("*-*-* 09..17:00,30:00",)),
        ("0 0 1 jan,apr,jul,oct *", ("*-01/3-01 00:00:00",)),
        ("0 0 * * 0", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * 7", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * sat,sun", ("Sat,Sun *-*-* 00:00:00",)),
        ("0 0 * * fri-sun", ("Fri..Sun *-*-* 00:00:00",)),
        # both day fields restricted: cron ORs them, so one line for each
        ("0 0 13 * 5", ("*-*-13 00:00:00", "Fri *-*-* 00:00:00")),
        ("0 0 */2 * 1", ("*-*-01..31/2 00:00:00", "Mon *-*-* 00:00:00")),
        ("0 12 1,15 3 mon", ("*-03-01,15 12:00:00", "Mon *-03-* 12:00:00")),
        # the day-of-month half can never match: only the weekday half is left
        ("0 0 31 2 1", ("Mon *-02-* 00:00:00",)),
        ("0 0 1-31 * 1", ("*-*-* 00:00:00",)),
        ("0 5-5 * * *", ("*-*-* 05:00:00",)),
        ("@daily", ("*-*-* 00:00:00",)),
        ("@hourly", ("*-*-* *:00:00",)),
        ("@weekly", ("Sun *-*-* 00:00:00",)),
        ("@monthly", ("*-*-01 00:00:00",)),
        ("@YEARLY", ("*-01-01 00:00:00",)),
        # a step as large as the field: only the field's first value
        ("*/60 * * * *", ("*-*-* *:00:00",)),
        ("0 */24 * * *", ("*-*-* 00:00:00",)),
        ("0 0 */31 * *", ("*-*-01 00:00:00",)),
        ("0 0 * * */8", ("Sun *-*-* 00:00:00",)),
        # a range from Sunday to Sunday is Sunday, not the whole week
        ("0 0 * * sun-sun", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * 0-0", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * sat-sun", ("Sat,Sun *-*-* 00:00:00",)),
        # a weekday field spelled out whole next to a `*` day field is unrestricted (croniter)
        ("0 0 */2 * 0-6", ("*-*-01..31/2 00:00:00",)),
        ("0 0 */2 * 0-7", ("*-*-01..31/2 00:00:00",)),
        # both fields restricted, but one spelled out whole: every day, one line
        ("0 0 1-31 * 1-5", ("*-*-* 00:00:00",)),
        # three values are enough for a step; two are a list
        ("*/20 * * * *", ("*-*-* *:00/20:00",)),
        ("*/30 * * * *", ("*-*-* *:00,30:00",)),
        # `a/n` only when the steps tile the field: 24 hours are not whole steps of 5, and
        # 9..49/10 would run at 59 too if left open
        ("0 */5 * * *", ("*-*-* 00..20/5:00:00",)),
        ("9-49/10 * * * *", ("*-*-* *:09..49/10:00",)),
        ("10-59/10 * * * *", ("*-*-* *:10..50/10:00",)),
        # months count from 1: February's step of two tiles the year
        ("0 0 1 2-12/2 *", ("*-02/2-01 00:00:00",)),
    ],
)
def test_cron_translation(expression: str, on_calendar: tuple[str, ...]) -> None:
    assert parse_schedule(expression) == Timing(expression, "cron", on_calendar)


def test_weekday_a_slash_n_runs_to_7_as_in_cronie() -> None:
    # 1/3 is 1-7/3: Monday, Thursday and Sunday (7). croniter stops at 6 and skips Sunday.
    assert parse_schedule("0 0 * * 1/3").on_calendar == ("Mon,Thu,Sun *-*-* 00:00:00",)
    assert croniter.expand("0 0 * * 1/3")[0][4] == [1, 4]


@pytest.mark.parametrize(
    ("expression", "kind", "on_calendar"),
    [
        ("@reboot", "reboot", ()),
        ("Mon..Fri 07:00", "calendar", ("Mon..Fri 07:00",)),
        ("  Mon   10:00 ", "calendar", ("Mon 10:00",)),
        ("daily", "calendar", ("daily",)),
        ("*-*-* 02:00", "calendar", ("*-*-* 02:00",)),
        ("Mon *-*-*", "calendar", ("Mon *-*-*",)),
        ("0\t9 * * 1-5", "cron", ("Mon..Fri *-*-* 09:00:00",)),
    ],
)
def test_kinds(expression: str, kind: str, on_calendar: tuple[str, ...]) -> None:
    timing = parse_schedule(expression)
    assert (timing.expression, timing.kind, timing.on_calendar) == (expression, kind, on_calendar)


# --- bad expressions ---------------------------------------------------------------------

TIMEZONE_MESSAGE = "put the timezone in `timezone:`, not in the schedule"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "schedule is empty"),
        ("   ", "schedule is empty"),
        ("0 9 * * *\n0 10 * * *", "schedule must be a single line"),
        ("Mon 10:00\r", "schedule must be a single line"),
        ("0 9 * * \x00", "schedule contains a control character (U+0000)"),
        ("Mon\u200b10:00", "schedule contains a control character (U+200B)"),
        ("0 0 * * * *", "expected 5 fields (minute hour day month weekday), got 6"),
        ("0 0 * *", "expected 5 fields (minute hour day month weekday), got 4"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("0 17-9 * * *", "hour range 17-9 is reversed (ranges do not wrap around)"),
        ("5-1/2 * * * *", "minute range 5-1 is reversed (ranges do not wrap around)"),
        ("0 0 * * fri-mon", "day-of-week range fri-mon is reversed (ranges do not wrap around)"),
        ("*/0 * * * *", "minute step 0 is not allowed; the step must be at least 1"),
        ("0 0 1-10/0 * *", "day-of-month step 0 is not allowed; the step must be at least 1"),
        ("*/61 * * * *", "minute step 61 is larger than the field (0-59)"),
        ("0 */25 * * *", "hour step 25 is larger than the field (0-23)"),
        ("0 0 * * */9", "day-of-week step 9 is larger than the field (0-7)"),
        ("0 0 * * mnday", "day-of-week: unknown name 'mnday' (use sun..sat or 0-7)"),
        ("0 0 * foo *", "month: unknown name 'foo' (use jan..dec or 1-12)"),
        ("0 0 * mon *", "month: unknown name 'mon' (use jan..dec or 1-12)"),
        ("jan 0 * * *", "minute: 'jan' is not a number"),
        ("0 0 1,,2 * *", "day-of-month: empty item in '1,,2'"),
        ("0 0 1- * *", "day-of-month: cannot read '1-'"),
        ("0 0 1-2-3 * *", "day-of-month: cannot read '1-2-3'"),
        ("-5 * * * *", "minute: cannot read '-5'"),
        ("*/1234567 * * * *", "minute step 1234567 is larger than the field (0-59)"),
        (
            "0 0 * * */0000000000009",
            "day-of-week step 0000000000009 is larger than the field (0-7)",
        ),
        (
            "0 0 L * *",
            "day-of-month: 'L' is not supported (no L, W, # or ?);"
            " write a systemd calendar expression instead",
        ),
        (
            "0 0 * * 5#2",
            "day-of-week: '5#2' is not supported (no L, W, # or ?);"
            " write a systemd calendar expression instead",
        ),
        (
            "@fortnightly",
            "unknown schedule keyword '@fortnightly'; use one of @hourly, @daily,"
            " @midnight, @weekly, @monthly, @yearly, @annually, @reboot",
        ),
        ("@daily 5", "@daily takes nothing after it"),
        # never fires
        ("0 0 31 2 *", "never fires: February has no day 31"),
        ("0 0 30 2 *", "never fires: February has no day 30"),
        ("0 0 30,31 feb *", "never fires: February has no day 30 or 31"),
        (
            "0 0 31 4,6,9,11 *",
            "never fires: April, June, September and November have no day 31",
        ),
        # a timezone belongs in `timezone:`
        ("Mon 10:00 Europe/Berlin", TIMEZONE_MESSAGE),
        ("*-*-* 10:00:00 UTC", TIMEZONE_MESSAGE),
        ("daily utc", TIMEZONE_MESSAGE),
        ("Mon 10:00 CEST", TIMEZONE_MESSAGE),
        ("Mon 10:00 EST5EDT", TIMEZONE_MESSAGE),
        ("Mon 10:00 Etc/GMT+5", TIMEZONE_MESSAGE),
        ("0 9 * * * America/New_York", TIMEZONE_MESSAGE),
    ],
)
def test_bad_expressions(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression)
    assert str(caught.value) == message


def test_how_the_day_fields_combine() -> None:
    assert parse_cron("0 0 1-31 * 1-5").rule == "any"  # either side is every day
    assert parse_cron("0 0 * * *").rule == "any"
    assert parse_cron("0 0 13 * 5").rule == "or"
    assert parse_cron("0 0 13 * *").rule == "dom"
    assert parse_cron("0 0 * * 5").rule == "dow"
    assert parse_cron("0 0 31 2 1").rule == "dow"  # the day-of-month side never fires


def test_huge_literals_are_out_of_range_not_handed_to_int() -> None:
    # parse_schedule caps the line's length; parse_cron itself may get any text, and int()
    # refuses more than 4,300 digits with a ValueError of its own.
    for text, message in [
        ("9" * 5000 + " * * * *", f"minute {'9' * 5000} is out of range 0-59"),
        ("*/" + "7" * 5000 + " * * * *", f"minute step {'7' * 5000} is larger than the field"),
    ]:
        with pytest.raises(ScheduleError) as caught:
            parse_cron(text)
        assert str(caught.value).startswith(message)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


@pytest.mark.parametrize(
    "expression", ["0 0 29 2 *", "0 9 * * MON", "0 9 * JAN SUN", "0 0 28-31 2 *", "0 0 30 * *"]
)
def test_valid_edge_cases(expression: str) -> None:
    assert parse_schedule(expression).kind == "cron"


# --- describe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("*/15 * * * *", "every 15 minutes"),
        ("* * * * *", "every minute"),
        ("0 * * * *", "every hour"),
        ("@hourly", "every hour"),
        ("0 */2 * * *", "every 2 hours"),
        ("30 */6 * * *", "every 6 hours at minute 30"),
        ("0 9,14,18 * * *", "at 09:00, 14:00 and 18:00 every day"),
        # up to eight times a day are listed; more are minutes past hours
        (
            "0,20 9,13,17,21 * * *",
            "at 09:00, 09:20, 13:00, 13:20, 17:00, 17:20, 21:00 and 21:20 every day",
        ),
        (
            "0,20 9,13,17,21,23 * * *",
            "at minutes 0 and 20 past hours 9, 13, 17, 21 and 23 every day",
        ),
        (
            "7 1,3,5,7,9,11,13,15,17 * * *",
            "at minute 7 past hours 1, 3, 5, 7, 9, 11, 13, 15 and 17 every day",
        ),
        ("55 3 * * *", "at 03:55 every day"),
        ("@daily", "at 00:00 every day"),
        ("0 10 * * 1", "at 10:00 on Monday"),
        ("0 10 * * MON", "at 10:00 on Monday"),
        ("0 7 * * 1-5", "at 07:00 on Monday to Friday"),
        ("0 8 * * sat,sun", "at 08:00 on Saturday and Sunday"),
        ("0 0 * * 7", "at 00:00 on Sunday"),
        ("0 0 1 * *", "at 00:00 on day 1 of the month"),
        ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"),
        ("0 0 1 1 *", "at 00:00 on day 1 of January"),
        ("0 0 1 */3 *", "at 00:00 on day 1 of January, April, July and October"),
        ("0 12 * 6-8 *", "at 12:00 every day in June to August"),
        ("*/5 * * 12 *", "every 5 minutes in December"),
        ("*/15 9-17 * * 1-5", "every 15 minutes from 09:00 to 17:45 on Monday to Friday"),
        ("* 9 * * *", "every minute from 09:00 to 09:59"),
        ("0 9-17 * * *", "every hour from 09:00 to 17:00"),
        ("0,30 9-17 * * *", "every 30 minutes from 09:00 to 17:30"),
        ("0 0 13 * 5", "at 00:00 on day 13 of the month and on every Friday"),
        ("*/7 * * * *", "every hour at minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56"),
        ("0,20 9-17 * * *", "at minutes 0 and 20 past hours 9 to 17 every day"),
        ("0 */5 * * *", "at 00:00, 05:00, 10:00, 15:00 and 20:00 every day"),
        ("15 */3 * * *", "every 3 hours at minute 15"),
        ("0 */5 * * 1", "at 00:00, 05:00, 10:00, 15:00 and 20:00 on Monday"),
        ("*/10 0-20/4 * * *", "every 10 minutes during hours 0, 4, 8, 12, 16 and 20"),
        ("@reboot", "once when the user manager starts"),
        ("Mon..Fri 07:00", "systemd calendar: Mon..Fri 07:00"),
    ],
)
def test_describe(expression: str, text: str) -> None:
    assert describe(parse_schedule(expression)) == text


# --- check_calendars ---------------------------------------------------------------------


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real_run: Callable[..., Any] = subprocess.run

    def run(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr("compiler.language.schedule.subprocess.run", run)
    return calls


@needs_systemd_analyze
def test_check_calendars_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_runs(monkeypatch)
    expressions = [
        "Mon..Fri 07:00",
        "bogus",
        "2020-01-01 10:00",
        "*-02-30 10:00",
        "daily",
        "-1",
        "",
        "Mon  10:00",
        "Mon..Fri 07:00",
    ]
    assert check_calendars(expressions) == {
        "Mon..Fri 07:00": None,
        "bogus": "invalid calendar expression",
        "2020-01-01 10:00": "never fires",
        "*-02-30 10:00": "never fires",
        "daily": None,
        "-1": "invalid calendar expression",
        "": "invalid calendar expression",
        "Mon  10:00": None,
    }
    assert len(calls) == 1


@needs_systemd_analyze
def test_check_calendars_with_nothing_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_runs(monkeypatch)
    assert check_calendars([]) == {}
    assert check_calendars(["Mon\n10:00"]) == {"Mon\n10:00": "invalid calendar expression"}
    assert calls == []


@needs_systemd_analyze
def test_check_calendars_falls_back_to_one_call_each(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_runs(monkeypatch)
    real_match = schedule._match_blocks

    def confused(stdout: str, expressions: list[str]) -> list[list[str]] | None:
        return None if len(expressions) > 1 else real_match(stdout, expressions)

    monkeypatch.setattr("compiler.language.schedule._match_blocks", confused)
    assert check_calendars(["daily", "bogus", "2020-01-01"]) == {
        "daily": None,
        "bogus": "invalid calendar expression",
        "2020-01-01": "never fires",
    }
    assert len(calls) == 4


def test_old_systemd_analyze_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def old(args: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        stderr = "systemd-analyze: unrecognized option '--base-time=@1'\n"
        return subprocess.CompletedProcess(args, 1, "", stderr)

    monkeypatch.setattr(
        "compiler.language.schedule.shutil.which", lambda _name: "/bin/systemd-analyze"
    )
    monkeypatch.setattr("compiler.language.schedule.subprocess.run", old)
    with pytest.raises(CalendarCheckUnavailable, match="unrecognized option"):
        next_elapses(("*-*-* 10:00:00",), "UTC", 3, base=BASE)


def test_missing_systemd_analyze(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compiler.language.schedule.shutil.which", lambda _name: None)
    with pytest.raises(CalendarCheckUnavailable) as caught:
        check_calendars(["daily"])
    assert isinstance(caught.value, RuntimeError)
    assert not isinstance(caught.value, ScheduleError)
    with pytest.raises(CalendarCheckUnavailable):
        next_elapses(("*-*-* 10:00:00",), "UTC", 3, base=BASE)


# --- next_elapses ------------------------------------------------------------------------


@needs_systemd_analyze
def test_next_elapses_merges_lines_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_runs(monkeypatch)
    # Both lines fire at midnight on Mondays; it must come back once.
    lines = ("*-*-* 00:00:00", "Mon *-*-* 00:00:00", "Mon *-*-* 12:00:00")
    got = next_elapses(lines, "Europe/Berlin", 4, base=datetime(2026, 11, 15, 12, tzinfo=UTC))
    berlin = ZoneInfo("Europe/Berlin")
    assert got == [
        datetime(2026, 11, 16, 0, 0, tzinfo=berlin),
        datetime(2026, 11, 16, 12, 0, tzinfo=berlin),
        datetime(2026, 11, 17, 0, 0, tzinfo=berlin),
        datetime(2026, 11, 18, 0, 0, tzinfo=berlin),
    ]
    assert all(moment.tzinfo == berlin for moment in got)
    assert len(calls) == 1


@needs_systemd_analyze
def test_next_elapses_errors() -> None:
    assert next_elapses((), "UTC", 5) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        next_elapses(("daily",), "UTC", 1, base=datetime(2026, 1, 1))
    with pytest.raises(ScheduleError, match="unknown timezone"):
        next_elapses(("daily",), "Mars/Olympus", 1)
    with pytest.raises(ScheduleError, match="invalid calendar expression: bogus"):
        next_elapses(("daily", "bogus"), "UTC", 1)


@needs_systemd_analyze
def test_next_elapses_stops_when_the_calendar_does() -> None:
    assert next_elapses(("2027-01-01 00:00:00",), "UTC", 5, base=BASE) == [
        datetime(2027, 1, 1, tzinfo=UTC)
    ]
    assert next_elapses(("2020-01-01 00:00:00",), "UTC", 5, base=BASE) == []


# --- daylight saving time ----------------------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _in_utc(moments: list[datetime]) -> list[datetime]:
    # A repeated wall time never compares equal across zones (PEP 495), so compare in UTC.
    return [moment.astimezone(UTC) for moment in moments]


@needs_systemd_analyze
def test_dst_spring_forward_skips_the_missing_time() -> None:
    # 2026-03-08: New York's clocks jump from 02:00 to 03:00, so 02:30 does not exist.
    timing = parse_schedule("30 2 * * *")
    start = _utc(2026, 3, 8)
    got = next_elapses(timing.on_calendar, "America/New_York", 2, base=start)
    assert _in_utc(got) == [_utc(2026, 3, 9, 6, 30), _utc(2026, 3, 10, 6, 30)]  # 02:30 EDT
    # croniter, like cron, runs the missed job at 03:00 on the day itself.
    runs = croniter("30 2 * * *", start.astimezone(NEW_YORK))
    assert runs.get_next(datetime) == _utc(2026, 3, 8, 7, 0)  # 03:00 EDT


@needs_systemd_analyze
def test_dst_fall_back_runs_the_repeated_time_once() -> None:
    # 2026-11-01: New York's clocks go from 02:00 EDT back to 01:00 EST, so 01:30 happens twice.
    timing = parse_schedule("30 1 * * *")
    start = _utc(2026, 10, 31, 12)
    got = next_elapses(timing.on_calendar, "America/New_York", 2, base=start)
    assert _in_utc(got) == [
        _utc(2026, 11, 1, 5, 30),
        _utc(2026, 11, 2, 6, 30),
    ]  # 01:30 EDT, next day
    runs = croniter("30 1 * * *", start.astimezone(NEW_YORK))
    assert _in_utc(list(islice(runs.all_next(datetime), 3))) == [
        _utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        _utc(2026, 11, 1, 6, 30),  # 01:30 EST: croniter runs it again
        _utc(2026, 11, 2, 6, 30),
    ]


@needs_systemd_analyze
def test_dst_fall_back_pauses_frequent_jobs_for_the_repeated_hour() -> None:
    timing = parse_schedule("*/15 * * * *")
    got = next_elapses(timing.on_calendar, "America/New_York", 4, base=_utc(2026, 11, 1, 5, 20))
    # 01:30 and 01:45 EDT, then nothing until 02:00 EST: the hour 01:00-01:59 EST is skipped.
    assert _in_utc(got) == [
        _utc(2026, 11, 1, 5, 30),
        _utc(2026, 11, 1, 5, 45),
        _utc(2026, 11, 1, 7, 0),
        _utc(2026, 11, 1, 7, 15),
    ]


# --- time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Asia/Kolkata", "EST5EDT"]
)
def test_known_timezones(name: str) -> None:
    check_timezone(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("europe/berlin", "unknown timezone 'europe/berlin'; did you mean 'Europe/Berlin'?"),
        ("Berlin", "unknown timezone 'Berlin'; did you mean 'Europe/Berlin'?"),
        ("New York", "unknown timezone 'New York'; did you mean 'America/New_York'?"),
        ("utc", "unknown timezone 'utc'; did you mean 'Etc/UTC' or 'UTC'?"),
        ("Amerca/New_York", "unknown timezone 'Amerca/New_York'; did you mean 'America/New_York'"),
        ("localtime", "unknown timezone 'localtime'; use an IANA name such as 'Europe/Berlin'"),
        ("/etc/localtime", "unknown timezone '/etc/localtime'; use an IANA name"),
        ("", "unknown timezone ''; use an IANA name"),
        ("Factory", "unknown timezone 'Factory'"),
    ],
)
def test_unknown_timezones(name: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        check_timezone(name)
    assert str(caught.value).startswith(message)

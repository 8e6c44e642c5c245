"""What the pictures are drawn from (compiler/glance/collect.py): firings ahead as systemd
computes them, runs behind as runs.jsonl holds them, quiet hours and maintenance windows on the
wall clock across clock changes, this month's spend adding up to the ledger `vigil cost` reads,
and the installed generation with its drift."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler.glance.collect import collect
from compiler.glance.model import Glance, LaneKind, Mark, ShadeKind, day_start
from compiler.install.generations import Installation
from compiler.language.schedule import FiringsCache, firings_within
from compiler.language.validate import load_config
from compiler.layout import Scope
from compiler.operate.cost import month_to_date
from compiler.operate.setup import ConfigView, Installed
from tests.conftest import ROOT, require_systemd_analyze
from tests.glance_support import two_zones, two_zones_glance, write_two_zones_runs

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday, 07:00 in New York
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _systemd_analyze() -> None:
    require_systemd_analyze()


def setup_of(example: str, state: Path, **changes: object) -> ConfigView:
    setup = ConfigView.of_config(load_config(ROOT / "examples" / example).config)
    return dataclasses.replace(setup, state_dir=str(state), **changes)


def write_runs(state: Path, records: list[dict[str, object]]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"config": "bruba", "kind": "job", **record}) for record in records]
    (state / "runs.jsonl").write_text("".join(f"{line}\n" for line in lines))


def glance(setup: ConfigView, now: datetime = NOW, days: int = 7, past: int = 30) -> Glance:
    problems: list[str] = []
    found = collect(setup, now=now, days=days, past=past, warn=problems.append)
    assert list(found.problems) == problems
    return found


def systemd_firings(line: str, zone: str, after: datetime, count: int) -> list[datetime]:
    """systemd-analyze asked directly, one expression, `count` iterations."""
    shown = subprocess.run(
        ["systemd-analyze", "calendar", f"--iterations={count}",
         f"--base-time=@{int(after.timestamp())}", f"{line} {zone}"],
        capture_output=True, text=True, check=True, env={"TZ": "UTC", "LC_ALL": "C"},
    ).stdout  # fmt: skip
    moments = []
    for text in shown.splitlines():
        label, _, value = text.strip().partition(": ")
        if label in ("Next elapse", *(f"Iter. #{n}" for n in range(2, count + 1))):
            moments.append(datetime.strptime(value, "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC))
    return moments


def test_every_job_fires_ahead_as_systemd_computes_it_and_nothing_outside_the_window(
    tmp_path: Path,
) -> None:
    setup = setup_of("bruba.yaml", tmp_path)
    seen = glance(setup)
    assert seen.since == datetime(2026, 11, 7, tzinfo=NEW_YORK)
    assert seen.until == datetime(2026, 12, 14, tzinfo=NEW_YORK)  # today and six days more
    jobs = [lane for lane in seen.lanes if lane.kind is LaneKind.JOB]
    assert [lane.name for lane in jobs] == list(setup.jobs)
    for lane in jobs:
        calendar = setup.jobs[lane.name].calendar
        assert calendar is not None
        expected = sorted(
            moment
            for line in calendar["on_calendar"]
            for moment in systemd_firings(line, calendar["timezone"], NOW, 40)
            if moment <= seen.until
        )
        assert list(lane.firings) == expected, lane.name
        assert lane.firings and all(NOW < moment <= seen.until for moment in lane.firings)
    briefing = next(lane for lane in jobs if lane.name == "morning-briefing")
    assert briefing.firings[0] == datetime(2026, 12, 7, 7, 15, tzinfo=NEW_YORK)
    assert len(briefing.firings) == 5  # Mon..Fri, this week
    assert [lane.kind for lane in seen.lanes][-1] is LaneKind.COORDINATOR


def test_a_job_firing_every_minute_for_a_year_is_cut_not_computed_forever(tmp_path: Path) -> None:
    setup = setup_of("minimal.yaml", tmp_path)
    job = setup.jobs["hello"]
    every_minute = dataclasses.replace(
        job, calendar={"on_calendar": ["*-*-* *:*:00"], "timezone": "UTC"}
    )
    setup = dataclasses.replace(setup, jobs={"hello": every_minute})
    week = glance(setup, days=7).lanes[0]
    assert not week.cut and len(week.firings) == 7 * 1440 - 12 * 60
    year = glance(setup, days=366).lanes[0]
    assert year.cut and len(year.firings) > 7 * 1440


def test_runs_behind_are_marks_of_four_kinds_within_the_window(tmp_path: Path) -> None:
    write_runs(
        tmp_path,
        [
            {"job": "reminder-check", "start": "2026-11-06T14:00:00Z", "result": "ok"},  # before
            {"job": "reminder-check", "start": "2026-11-20T14:00:00Z", "result": "ok",
             "duration_s": 2.5, "exit_status": 0},
            {"job": "reminder-check", "start": "2026-11-21T14:00:00Z", "result": "timeout",
             "reason": "ran past its timeout", "exit_status": 4},
            {"job": "nightly-reset-execute", "start": "2026-11-22T09:02:00Z",
             "result": "skipped-after", "exit_status": 5},
            {"job": "nightly-reset-wake", "start": "2026-11-23T09:07:00Z", "result": "missed"},
            {"job": "morning-briefing", "start": "2026-12-08T12:15:00Z", "result": "ok"},  # ahead
            {"job": "coordinator", "kind": "coordinator", "start": "2026-12-07T11:00:00Z",
             "result": "ok"},
        ],
    )  # fmt: skip
    lanes = {lane.name: lane for lane in glance(setup_of("bruba.yaml", tmp_path)).lanes}
    reminder = lanes["reminder-check"].runs
    assert [(run.mark, run.result) for run in reminder] == [
        (Mark.OK, "ok"),
        (Mark.FAILED, "timeout"),
    ]
    assert reminder[0].duration_s == 2.5 and reminder[1].reason == "ran past its timeout"
    assert reminder[1].exit_status == 4
    assert [run.mark for run in lanes["nightly-reset-execute"].runs] == [Mark.SKIPPED]
    assert [run.mark for run in lanes["nightly-reset-wake"].runs] == [Mark.MISSED]
    assert lanes["morning-briefing"].runs == ()
    assert [run.mark for run in lanes["coordinator"].runs] == [Mark.OK]


def test_quiet_hours_follow_the_wall_clock_through_both_clock_changes(tmp_path: Path) -> None:
    """22:00-07:00 in New York: ten hours the night the clocks go back, eight the night they go
    forward, nine on every other; clipped to the window at both ends."""
    quiet = {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}
    setup = setup_of("minimal.yaml", tmp_path, quiet_hours=quiet, timezone="America/New_York")
    for night, hours in ((date(2026, 10, 31), 10), (date(2026, 3, 7), 8)):
        now = datetime.combine(night, datetime.min.time(), NEW_YORK) + timedelta(hours=12)
        shades = [s for s in glance(setup, now, days=3, past=1).shades if s.kind is ShadeKind.QUIET]
        lengths = {s.start.astimezone(NEW_YORK).date(): s.end - s.start for s in shades}
        assert lengths[night] == timedelta(hours=hours), night
        assert lengths[night + timedelta(days=1)] == timedelta(hours=9)
        assert all(s.start.astimezone(NEW_YORK).hour == 22 for s in shades[1:])
        seen = glance(setup, now, days=3, past=1)
        assert shades[0].start == seen.since  # the night before the window, clipped
        assert shades[-1].end <= seen.until


def test_maintenance_windows_shade_only_their_weekdays(tmp_path: Path) -> None:
    window = {"match": {}, "start": "01:00", "end": "03:00", "days": [5, 6],
              "timezone": "Europe/Berlin", "drop": True}  # fmt: skip
    setup = setup_of("minimal.yaml", tmp_path, maintenance={"backups": window})
    shades = glance(setup, days=14, past=0).shades
    berlin = ZoneInfo("Europe/Berlin")
    assert {s.start.astimezone(berlin).strftime("%a %H:%M") for s in shades} == {
        "Sat 01:00",
        "Sun 01:00",
    }
    assert len(shades) == 4 and all(s.end - s.start == timedelta(hours=2) for s in shades)
    assert shades[0].label == "maintenance backups (alerts dropped)"


def test_the_days_of_spend_add_up_to_the_ledger_vigil_cost_reads(tmp_path: Path) -> None:
    """The ledger keeps what rotation took from runs.jsonl: the days show the history, the
    rest is unrecorded, and together they are `vigil cost`'s month to date. A run at 23:30 on
    30 November in New York is November's, though December's in UTC."""
    write_runs(
        tmp_path,
        [
            {"job": "reminder-check", "start": "2026-12-01T04:30:00Z", "cost_usd": 0.5,
             "tokens_in": 100},  # 23:30 on 30 November in New York
            {"job": "reminder-check", "start": "2026-12-02T14:00:00Z", "cost_usd": 0.25,
             "tokens_in": 900, "tokens_out": 100},
            {"job": "morning-briefing", "start": "2026-12-03T12:15:00Z", "cost_usd": 0.125,
             "tokens_in": 1500, "tokens_out": 400},
            {"job": "morning-briefing", "start": "2026-12-04T12:15:00Z", "cost_usd": 0.125,
             "tokens_in": 1500, "tokens_out": 400},
        ],
    )  # fmt: skip
    setup = setup_of("bruba.yaml", tmp_path)
    spend = glance(setup).spend
    assert spend is not None and spend.month == "2026-12"
    assert spend.by_day == {
        date(2026, 12, 2): {"reminder-check": 0.25},
        date(2026, 12, 3): {"morning-briefing": 0.125},
        date(2026, 12, 4): {"morning-briefing": 0.125},
    }
    assert spend.unrecorded == {}
    (tmp_path / "state").mkdir()
    ledger = {
        "version": 1,
        "month": "2026-12",
        "jobs": {
            "reminder-check": {"tokens": 90_000, "usd": 1.25, "calls": 9},
            "morning-briefing": {"tokens": 3800, "usd": 0.25, "calls": 2},
        },
        "reservations": {},
    }
    (tmp_path / "state" / "spend-2026-12.json").write_text(json.dumps(ledger))
    spend = glance(setup).spend
    assert spend is not None
    cost = month_to_date(tmp_path, "bruba", setup.timezone, NOW, warn=pytest.fail)
    assert spend.by_job == cost
    assert spend.unrecorded == {"reminder-check": 1.0}
    days = sum(usd for jobs in spend.by_day.values() for usd in jobs.values())
    assert days + sum(spend.unrecorded.values()) == pytest.approx(spend.total_usd)
    assert spend.total_usd == pytest.approx(sum(usd for usd, _, _ in cost.values()))
    (budget,) = spend.budgets
    assert (budget.scope, budget.monthly_usd, budget.spent_usd) == ("global", 10.0, 1.5)


def test_the_installed_generation_and_files_changed_by_hand(vigil, tmp_path: Path) -> None:
    config = tmp_path / "bruba.yaml"
    config.write_text((ROOT / "examples" / "bruba.yaml").read_text())
    result = vigil("apply", config, "--root", tmp_path / "root", "--yes")
    assert result.exit_code == 0, result.stderr
    installation = Installation(Scope(root=tmp_path / "root"), "bruba")
    number = installation.current()
    assert number is not None
    setup = setup_of("bruba.yaml", tmp_path / "state")
    found = Installed(installation, number, setup, changed=False)
    seen = collect(setup, now=NOW, days=1, past=0, found=found, warn=pytest.fail)
    assert seen.generation is not None
    assert seen.generation.generation == number and seen.generation.drift == ()
    assert seen.generation.config_sha256 == installation.manifest()["config"]["sha256"]
    unit = installation.unit_dir / "bruba-reminder-check.timer"
    unit.write_text(unit.read_text().replace("09,14,18", "10,14,18"))
    seen = collect(setup, now=NOW, days=1, past=0, found=found, warn=pytest.fail)
    assert seen.generation is not None
    assert seen.generation.drift == ("units/bruba-reminder-check.timer",)
    assert collect(setup, now=NOW, days=1, past=0, warn=pytest.fail).generation is None


# --- reading the history once; asking systemd for what is needed --------------------------------


def test_runs_jsonl_is_read_once_a_line_at_a_time_and_only_this_configs_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pass gives the window's runs and the month's spend per day and per job (the ledger's
    stand-in while there is none): a history of many megabytes is not read three times."""
    import runner.history

    setup = two_zones(tmp_path)
    write_two_zones_runs(
        setup,
        {"job": "ny-noon", "start": "2026-12-05T17:00:00Z", "result": "ok", "tokens_in": 10,
         "cost_usd": 0.25},
        {"job": "ny-noon", "config": "another", "start": "2026-12-05T18:00:00Z",
         "result": "failed", "tokens_in": 10, "cost_usd": 9.0},
    )  # fmt: skip
    reads: list[str] = []
    original = runner.history._lines
    monkeypatch.setattr(runner.history, "_lines", lambda d: reads.append(d) or original(d))
    seen = two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    assert len(reads) == 1, f"read {len(reads)} times"
    lane = next(lane for lane in seen.lanes if lane.name == "ny-noon")
    assert [run.mark for run in lane.runs] == [Mark.OK]
    assert seen.spend is not None
    assert seen.spend.by_job == {"ny-noon": (0.25, 10, 1)}
    assert seen.spend.by_day == {date(2026, 12, 5): {"ny-noon": 0.25}}


def test_three_hundred_daily_jobs_in_a_zone_are_computed_in_seconds() -> None:
    """Each line is asked for about as many firings as it has in the window (counted by the
    in-process reader), not 64: three hundred daily jobs in Berlin take one short run."""
    timers = {f"j{n}": ([f"*-*-* {n % 24:02}:{n % 60:02}:00"], "Europe/Berlin") for n in range(300)}
    started = time.monotonic()
    found = firings_within(timers, NOW, datetime(2026, 12, 14, tzinfo=UTC))
    assert time.monotonic() - started < 3.0
    assert all(len(firings) in (6, 7) and not cut for firings, cut in found.values())


@pytest.mark.parametrize(
    "line",
    ["*-*-* 02:30:00", "Mon..Fri *-*-* 07:15:00", "*-*-* *:0/15:00", "*-*-01 00:00:00",
     "daily", "Sat *-*-1..7 18:00:00", "*-02-29 12:00:00"],
)  # fmt: skip
def test_firings_are_systemds_however_many_are_asked_first(line: str) -> None:
    """A count too low is asked again, an expression the reader cannot count starts at 64:
    the firings are systemd's either way, through a spring-forward night."""
    zone = "Europe/Berlin"
    after, until = datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 10, tzinfo=UTC)
    found, cut = firings_within({"j": ([line], zone)}, after, until)["j"]
    expected = [m for m in systemd_firings(line, zone, after, 3000) if m <= until]
    assert found == expected and not cut


def test_a_cache_asks_systemd_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.language import schedule

    timers = {"j": (["*-*-* 09:00:00"], "Europe/Berlin")}
    until = datetime(2026, 12, 14, tzinfo=UTC)
    uncached = firings_within(timers, NOW, until)
    calls: list[object] = []
    original = schedule._analyze
    monkeypatch.setattr(schedule, "_analyze", lambda *a: calls.append(a) or original(*a))
    cache: FiringsCache = {}
    first = firings_within(timers, NOW, until, cache=cache)
    later = firings_within(timers, NOW + timedelta(hours=1), until, cache=cache)
    assert len(calls) == 1 and first == uncached
    assert later["j"][0] == [m for m in uncached["j"][0] if m > NOW + timedelta(hours=1)]
    firings_within(timers, NOW + timedelta(days=1), until + timedelta(days=1), cache=cache)
    assert len(calls) == 2 and len(cache) == 1  # the next day: computed anew, the old dropped


@pytest.mark.parametrize(
    ("zone", "day", "first"),
    [
        ("America/Santiago", date(2026, 9, 6), datetime(2026, 9, 6, 4, tzinfo=UTC)),  # 01:00
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 5, tzinfo=UTC)),  # 00:00
        ("Asia/Beirut", date(2026, 3, 29), datetime(2026, 3, 28, 22, tzinfo=UTC)),  # 01:00
    ],
)
def test_a_day_starts_at_its_first_instant(zone: str, day: date, first: datetime) -> None:
    """In a zone that springs forward at midnight a day has no 00:00: it starts at 01:00."""
    start = day_start(day, ZoneInfo(zone))
    assert start.astimezone(UTC) == first and start.astimezone(ZoneInfo(zone)).date() == day

"""What the pictures are drawn from (compiler/glance/collect.py): firings ahead as systemd
computes them, runs behind as runs.jsonl holds them, quiet hours and maintenance windows on the
wall clock across clock changes, this month's spend adding up to the ledger `vigil cost` reads,
and the installed generation with its drift."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler.glance.collect import collect
from compiler.glance.model import Glance, LaneKind, Mark, ShadeKind
from compiler.install.generations import Installation
from compiler.language.validate import load_config
from compiler.layout import Scope
from compiler.operate.cost import month_to_date
from compiler.operate.setup import ConfigView, Installed
from tests.conftest import ROOT, require_systemd_analyze

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

"""Previous firings of a calendar, as systemd computes them, and the deadline watch's window
("since the previous deadline") across a year of days, both DST changes and month ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from compiler.language.schedule import next_elapses, parse_schedule
from runner.calendar import CalendarError, firings_between, previous_firing
from runner.watch import check_deadline
from tests.conftest import require_systemd_analyze
from tests.runner_support import inbox, real_spec, run_runner, runner_env, write_spec

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
# Bases just before both 2026 DST changes in New York and Berlin, and a month end.
BASES = (
    datetime(2026, 3, 7, 12, tzinfo=UTC),
    datetime(2026, 3, 28, 12, tzinfo=UTC),
    datetime(2026, 10, 24, 12, tzinfo=UTC),
    datetime(2026, 10, 31, 12, tzinfo=UTC),
    datetime(2026, 2, 27, 12, tzinfo=UTC),
)
EXPRESSIONS = (
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "hourly",
    "03:00",
    "Mon..Fri 07:00",
    "Mon-Fri 9:00",
    "Sat,Sun 10:00",
    "Sun 02:30",
    "*-*-* 01:30:00",
    "*-*-* 02:30:00",
    "*:0/15",
    "*-*-01 00:00",
    "*-*-31 03:00",
    "*-02~01 12:00",
    "*-*-1,15 04:00:30",
    "30 2 * * *",
    "0 9 13 * 5",
    "*/20 1-3 * * *",
)


@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_previous_firing_is_systemds(expression: str, timezone: str) -> None:
    require_systemd_analyze()
    lines = parse_schedule(expression).on_calendar
    for base in BASES:
        # In UTC: PEP 495 makes an inter-zone == false for any time in a repeated hour.
        firings = [moment.astimezone(UTC) for moment in next_elapses(lines, timezone, 60, base)]
        for earlier, later in pairwise(firings):
            assert previous_firing(list(lines), timezone, later) == earlier, (base, later)
            middle = earlier + (later - earlier) / 2
            assert previous_firing(list(lines), timezone, middle) == earlier, (base, middle)


@pytest.mark.parametrize("timezone", ZONES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_firings_between_are_systemds(expression: str, timezone: str) -> None:
    """What the heartbeat expects of a timer in a stretch of time ("did it run?") is the run of
    firings systemd computes, the DST days and month ends included."""
    require_systemd_analyze()
    lines = parse_schedule(expression).on_calendar
    for base in BASES:
        firings = [moment.astimezone(UTC) for moment in next_elapses(lines, timezone, 60, base)]
        found = firings_between(list(lines), timezone, base, firings[-1])
        assert found == firings, base
        assert firings_between(list(lines), timezone, firings[0], firings[-1]) == firings[1:]


def test_unreadable_expressions_are_refused() -> None:
    for text in ("Mon 10:00 extra", "*-*-* 25:00", "Someday 10:00", "*-13-01"):
        with pytest.raises(CalendarError):
            previous_firing([text], "UTC", datetime(2026, 1, 1, tzinfo=UTC))


def backup_spec(state: Path, timezone: str) -> dict[str, Any]:
    spec = real_spec("backup/specs/watch-backup-finished.json")
    spec.update(state_dir=str(state))
    spec["calendar"]["timezone"] = timezone
    return spec


def record_backup(state: Path, start: datetime) -> None:
    state.mkdir(parents=True, exist_ok=True)
    stamp = start.isoformat().replace("+00:00", "Z")
    line = {"job": "backup", "kind": "job", "start": stamp, "end": stamp, "result": "ok"}
    with (state / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")


@pytest.mark.parametrize("timezone", ["Europe/Berlin", "America/New_York"])
def test_a_year_of_deadlines_counts_only_runs_since_the_previous_one(
    tmp_path: Path, timezone: str
) -> None:
    """Every day of 2026 at 03:00: a backup 20 minutes before the deadline, except every
    fifth day and both DST Sundays, when it ran 30 minutes before the *previous* deadline (too
    early to count).
    The reference deadlines come from systemd itself."""
    require_systemd_analyze()
    state = tmp_path / "state"
    spec = backup_spec(state, timezone)
    base = datetime(2025, 12, 31, tzinfo=UTC)
    deadlines = [moment.astimezone(UTC) for moment in next_elapses(("03:00",), timezone, 366, base)]
    missed_days = set(range(1, len(deadlines), 5))
    # The days after a clock change are missed days too: their window is 23 or 25 hours.
    changes = {n for n, (a, b) in enumerate(pairwise(deadlines), 1) if b - a != timedelta(days=1)}
    assert len(changes) == 2
    missed_days |= changes
    verdicts = []
    for number, (previous, deadline) in enumerate(pairwise(deadlines), start=1):
        if number in missed_days:
            record_backup(state, previous - timedelta(minutes=30))
        else:
            record_backup(state, deadline - timedelta(minutes=20))
        now = deadline + timedelta(seconds=30)
        verdicts.append(check_deadline(spec, str(state), now)[0])
    assert verdicts == [number not in missed_days for number in range(1, len(deadlines))]
    assert len(verdicts) == 365


@pytest.mark.parametrize(
    ("now", "ran", "met"),
    [
        # Sunday 29 March, Berlin springs forward: the previous deadline was 23 hours ago,
        # and a run 30 minutes before it is not this night's backup.
        ("2026-03-29T01:00:30Z", "2026-03-28T01:30:00Z", False),
        # Sunday 25 October, Berlin falls back: 25 hours since the previous deadline; a run
        # 30 minutes after it is this night's backup.
        ("2026-10-25T02:00:30Z", "2026-10-24T01:30:00Z", True),
    ],
)
def test_the_deadline_runner_on_both_dst_sundays(
    tmp_path: Path, now: str, ran: str, met: bool
) -> None:
    state = tmp_path / "state"
    record_backup(state, datetime.fromisoformat(ran))
    path = write_spec(tmp_path, backup_spec(state, "Europe/Berlin"))
    result = run_runner("watch", path, env=runner_env(VIGIL_NOW=now))
    assert result.returncode == 0, result.stderr
    [finding] = inbox(state)
    assert finding["satisfied"] is met, finding["evidence"]

"""When a preflight runs: the job's firings moved earlier (compiler.language.preflight), checked
against systemd's own calendar arithmetic, and the errors for schedules it cannot follow."""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from compiler.language.preflight import PreflightError, preflight_calendar
from compiler.language.schedule import parse_schedule
from tests.conftest import require_systemd_analyze


@pytest.mark.parametrize(
    ("schedules", "lead", "lines"),
    [
        (["15 7 * * *"], 1800, ["*-*-* 06:45:00"]),
        (["15 7 * * 1-5"], 1800, ["Mon..Fri *-*-* 06:45:00"]),
        (["15 0 * * 1-5"], 1800, ["Mon,Tue,Wed,Thu,Sun *-*-* 23:45:00"]),
        (["0 7,19 * * *"], 5400, ["*-*-* 05,17:30:00"]),
        (["daily"], 600, ["*-*-* 23:50:00"]),
        (["*-*-01 09:00"], 1800, ["*-*-01 08:30:00"]),
        (["0 0,12 * * *"], 60, ["*-*-* 23:59:00", "*-*-* 11:59:00"]),
    ],
)
def test_firings_move_earlier(schedules: list[str], lead: int, lines: list[str]) -> None:
    got = preflight_calendar(schedules, lead)
    assert sorted(_normal(line) for line in got) == sorted(_normal(line) for line in lines)


def _normal(line: str) -> str:
    return line.replace("Mon,Tue,Wed,Thu,Fri", "Mon..Fri")


@pytest.mark.parametrize(
    ("schedule", "lead", "why"),
    [
        ("@reboot", 60, "runs at boot"),
        ("*:0/15", 300, "fires every hour or minute"),
        ("0 * * * *", 300, "fires every hour or minute"),
        ("0 0 1 * *", 1800, "the day before a date"),
        ("15 7 * * *", 86400, "shorter than a day"),
    ],
)
def test_schedules_a_preflight_cannot_follow(schedule: str, lead: int, why: str) -> None:
    with pytest.raises(PreflightError, match=why):
        preflight_calendar([schedule], lead)


def _firings(lines: list[str], base: datetime, count: int) -> list[datetime]:
    """The next firings after `base`, as systemd computes them (all lines merged)."""
    found: list[datetime] = []
    for line in lines:
        result = subprocess.run(
            ["systemd-analyze", "calendar", f"--iterations={count}",
             f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", f"{line} UTC"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        for text in result.stdout.splitlines():
            text = text.strip()
            if text.startswith(("Next elapse:", "Iter. #")):
                stamp = text.split(": ", 1)[1].split(" ", 1)[1].removesuffix(" UTC")
                found.append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    return sorted(found)[:count]


def test_systemd_fires_each_preflight_exactly_the_lead_before_its_job() -> None:
    require_systemd_analyze()
    chooser = random.Random(20261206)
    base = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    for _ in range(25):
        minute = chooser.choice(["0", "15", "30,45", "5", "59"])
        hour = chooser.choice(["0", "7", "0,12", "9,14,18", "23", "6-8"])
        weekdays = chooser.choice(["*", "1-5", "0", "6", "1,3,5"])
        schedule = f"{minute} {hour} * * {weekdays}"
        lead = chooser.choice([60, 600, 1800, 5400, 6 * 3600])
        original = _firings(list(parse_schedule(schedule).on_calendar), base, 12)
        early = _firings(preflight_calendar([schedule], lead), base - timedelta(seconds=lead), 12)
        assert len(original) == 12
        assert early == [moment - timedelta(seconds=lead) for moment in original], (
            schedule,
            lead,
        )

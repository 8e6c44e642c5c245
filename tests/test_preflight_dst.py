"""A preflight across DST: the lead is moved on the wall clock of the job's zone, as systemd
fires both timers; a preflight time the clock skips one day a year is said when the config is
validated (nothing can move it), and a due time after the clock changed is the job's."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime

from compiler.language.loader import load_text
from compiler.language.preflight import preflight_calendar, skipped
from compiler.language.validate import validate_document
from runner.preflight import _due
from tests.conftest import require_systemd_analyze

CONFIG = """\
name: demo
timezone: America/New_York
coordinator: {deliver_to: [sink]}
channels: {sink: {file: /tmp/x.jsonl}}
jobs:
  report:
    schedule: "%s"
    run: "true"
    check: "true"
    preflight: 30m
"""


def next_elapse(line: str, base: str) -> str:
    shown = subprocess.run(
        ["systemd-analyze", "calendar", f"--base-time={base}", line],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Next elapse: \w+ (\S+ \S+) UTC", shown)
    assert match, shown
    return match.group(1)


def test_a_preflight_the_clock_skips_is_a_warning() -> None:
    """A job at 03:15 New York time with `preflight: 30m`: its preflight at 02:45 does not exist
    on the spring-forward day, and systemd skips it (checked here), so validation says so."""
    require_systemd_analyze()
    zone = "America/New_York"
    base = "2027-03-13 12:00 UTC"  # DST starts 2027-03-14 02:00 local
    lines = preflight_calendar(["15 3 * * *"], 1800)
    assert next_elapse(f"*-*-* 03:15:00 {zone}", base) == "2027-03-14 07:15:00"
    assert next_elapse(f"{lines[0]} {zone}", base) == "2027-03-15 06:45:00"  # not the 14th
    assert skipped(lines, zone, date(2027, 1, 1)) == ("02:45", date(2027, 3, 14))
    validated = validate_document(load_text(CONFIG % "15 3 * * *", "c.yaml"), check_calendar=False)
    (warning,) = validated.warnings
    assert warning.startswith("jobs.report.preflight: 02:45 does not exist in America/New_York")


def test_a_preflight_outside_the_skipped_hour_says_nothing() -> None:
    validated = validate_document(load_text(CONFIG % "15 7 * * *", "c.yaml"), check_calendar=False)
    assert validated.warnings == []
    assert (
        skipped(preflight_calendar(["15 7 * * *"], 1800), "America/New_York", date(2027, 1, 1))
        is None
    )


def test_the_due_time_is_on_the_jobs_wall_clock_across_a_change() -> None:
    """A preflight at 01:45 on the fall-back night (first pass, EDT) for a job at 02:15 (EST,
    the only 02:15 that night after the clock fell back at 02:00): due is 02:15 local."""
    started = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT
    due = _due(started, 1800, "America/New_York")
    assert due is not None and due.strftime("%H:%M") == "02:15"

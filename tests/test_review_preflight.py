"""REVIEW (hostile review of 9f57d97..577b205): failing test for preflight across DST."""

from __future__ import annotations

import re
import subprocess

from compiler.language.preflight import preflight_calendar
from tests.conftest import require_systemd_analyze


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


def test_review_preflight_runs_before_the_job_on_the_spring_forward_day() -> None:
    """compiler/language/preflight.py: the lead is subtracted in local wall-clock time. A job
    at 03:15 America/New_York with `preflight: 30m` gets a preflight at 02:45, a time that
    does not exist on the spring-forward day; systemd skips it, so that day's 03:15 run (which
    does happen, 07:15 UTC) has no preflight at all. Any lead that crosses 02:00-03:00 local
    does the same."""
    require_systemd_analyze()
    zone = "America/New_York"
    base = "2027-03-13 12:00 UTC"  # DST starts 2027-03-14 02:00 local
    job = next_elapse(f"*-*-* 03:15:00 {zone}", base)
    assert job == "2027-03-14 07:15:00"
    lines = preflight_calendar(["15 3 * * *"], 1800)
    firings = [next_elapse(f"{line} {zone}", base) for line in lines]
    assert any("2027-03-14 06:00:00" <= f < job for f in firings), (lines, firings)

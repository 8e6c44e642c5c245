"""One simulated day of the reference workload (tests/bench/reference_day.py): the real runner
and coordinator as subprocesses, the real SDK against the loopback Messages API.

The full day (about 15 s) runs once, through the script's command line in this process, and
every test below reads its figures; the quick variant (09:00-11:00, about 5 s) runs as the
documented `python -m tests.bench.reference_day --quick` command."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.bench import reference_day as bench
from tests.conftest import ROOT, require_systemd_analyze

NIGHTLY = ("nightly-reset-prep", "nightly-reset-execute", "nightly-reset-wake")
WITH_PROMPT = ("reminder-check", "staleness-check", "calendar-prep", "morning-briefing")


def needs() -> None:
    require_systemd_analyze()  # firings come from systemd-analyze calendar
    pytest.importorskip("anthropic")


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    needs()
    path = tmp_path_factory.mktemp("reference-day") / "day.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bench.main(["--date", "2026-02-02", "--json", str(path)])
    figures: dict[str, Any] = json.loads(Path(path).read_text())
    figures["exit_code"], figures["table"] = code, out.getvalue()
    return figures


def row(day: dict[str, Any], job: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in day["jobs"] if r["job"] == job)
    return found


def job_runs(day: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return [r for r in day["runs"] if r["kind"] == "job" and r["job"] == job]


@pytest.mark.slow
def test_every_run_succeeds_and_every_invariant_holds(day: dict[str, Any]) -> None:
    assert day["invariant_problems"] == []
    assert day["exit_code"] == 0
    assert all(r["exit_code"] == 0 for r in day["runs"])
    assert "invariants: all hold" in day["table"]


@pytest.mark.slow
def test_firings_of_a_monday(day: dict[str, Any]) -> None:
    firings = {r["job"]: r["firings"] for r in day["jobs"]}
    assert firings == {
        **dict.fromkeys(NIGHTLY, 1),
        "reminder-check": 3,
        "staleness-check": 1,
        "calendar-prep": 1,
        "morning-briefing": 1,
        "coordinator": 96 + 9,  # heartbeats, and one run after each job run
    }


@pytest.mark.slow
def test_model_calls_only_in_jobs_with_prompts_that_found_something(day: dict[str, Any]) -> None:
    for run in day["runs"]:
        if run["kind"] != "job" or run["job"] not in WITH_PROMPT:
            assert run["calls"] == 0, run
        else:
            assert run["calls"] == (0 if run["found_nothing"] else 1), run
    calls = {r["job"]: r["calls"] for r in day["jobs"]}
    assert calls == {
        **dict.fromkeys(NIGHTLY, 0),
        "reminder-check": 2,
        "staleness-check": 1,
        "calendar-prep": 1,
        "morning-briefing": 1,
        "coordinator": 0,
    }


@pytest.mark.slow
def test_the_evening_reminder_check_finds_nothing_and_asks_no_model(day: dict[str, Any]) -> None:
    by_hour = {datetime.fromisoformat(r["at"]).hour: r for r in job_runs(day, "reminder-check")}
    assert sorted(by_hour) == [9, 14, 18]
    assert [by_hour[h]["calls"] for h in (9, 14, 18)] == [1, 1, 0]
    assert by_hour[18]["found_nothing"] and not by_hour[9]["found_nothing"]


@pytest.mark.slow
def test_the_nightly_chain_and_the_coordinator_spend_nothing(day: dict[str, Any]) -> None:
    for job in (*NIGHTLY, "coordinator"):
        figures = row(day, job)
        assert (figures["calls"], figures["tokens_in"], figures["tokens_out"]) == (0, 0, 0)
        assert figures["cost"] == 0
    assert [len(job_runs(day, job)) for job in NIGHTLY] == [1, 1, 1]


@pytest.mark.slow
def test_tokens_and_cost_are_recorded_for_the_model_calls(day: dict[str, Any]) -> None:
    for job in WITH_PROMPT:
        figures = row(day, job)
        assert figures["tokens_in"] > 0 and figures["tokens_out"] > 0 and figures["cost"] > 0
    total = day["total"]
    assert total["calls"] == 5
    # Far below the reference design's ~$4/month, most of which was its LLM heartbeat.
    assert 0 < total["month_schedule"] < 1.0 and total["month_30"] < 1.0


@pytest.mark.slow
def test_messages_go_through_the_file_channel_with_the_first_nags(day: dict[str, Any]) -> None:
    messages = day["messages"]
    assert messages and {m["channel"] for m in messages} == {"signal"}
    bodies = "\n".join(m["body"] for m in messages)
    assert "Reminder: Call dentist is overdue" in bodies
    assert "Reminder: Renew passport is overdue" in bodies
    # Nagged at 09:00; the 14:00 finding is within min_interval (20h), so no second nag.
    assert bodies.count("Call dentist") == 1
    assert sorted(s for m in messages for s in m["sources"]) == sorted(WITH_PROMPT)
    assert f"messages delivered: {len(messages)} (file channel)" in day["table"]


def test_the_quick_variant_from_the_command_line(tmp_path: Path) -> None:
    needs()
    figures = tmp_path / "quick.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.reference_day", "--quick", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    quick = json.loads(figures.read_text())
    assert quick["quick"] and quick["invariant_problems"] == []
    assert [(r["kind"], r["job"]) for r in quick["runs"] if r["kind"] != "heartbeat"] == [
        ("job", "reminder-check"),
        ("coordinator", "coordinator"),
        ("job", "staleness-check"),
        ("coordinator", "coordinator"),
    ]
    assert sum(r["kind"] == "heartbeat" for r in quick["runs"]) == 8
    assert row(quick, "coordinator")["calls"] == 0 and quick["total"]["calls"] == 2
    bodies = [m["body"] for m in quick["messages"]]
    assert bodies[0].splitlines() == [
        "• Reminder: Call dentist is overdue [r1]",
        "• Reminder: Renew passport is overdue [r2]",
    ]
    assert "invariants: all hold" in result.stdout

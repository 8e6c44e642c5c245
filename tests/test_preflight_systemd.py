"""Preflights against a real systemd user manager: the timer fires the job's check the lead
before each firing (systemd's own arithmetic), in the job's sandbox; a failing check alerts once,
not again while it keeps failing, and once more when it passes again."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: pf
state_dir: {state}
timezone: Europe/Berlin
jobs:
  briefing:
    schedule: "15 7 * * 1-5"
    run: "echo the briefing"
    check: "echo checking; test ! -e {state}/broken || {{ echo 'Cannot find module'; exit 1; }}"
    preflight: 30m
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


def deliveries(state: Path) -> list[dict[str, object]]:
    path = state / "deliveries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_failing_preflight_alerts_once_until_it_passes(vigil, vigil_manager, tmp_path) -> None:
    state = apply_config(vigil, tmp_path, "pf", CONFIG)
    shown = vigil_manager.systemctl(
        "show", "pf-briefing.timer", "pf-preflight-briefing.timer",
        "--property=NextElapseUSecRealtime",
    ).stdout  # fmt: skip
    job, preflight = (
        datetime.strptime(line.split("=", 1)[1], "%a %Y-%m-%d %H:%M:%S %Z")
        for line in shown.splitlines()
        if line
    )
    # 30 minutes before a firing of the job: between a preflight and its firing (06:45-07:15
    # Berlin) the job's next firing is today's and the preflight's the next working day's.
    assert (job - preflight).total_seconds() % 86400 == 1800

    def preflight_run() -> str:
        vigil_manager.systemctl("start", "pf-preflight-briefing.service", check=False)
        return vigil_manager.systemctl(
            "show", "pf-preflight-briefing.service", "--property=Result"
        ).stdout.strip()

    assert preflight_run() == "Result=success"
    (state / "broken").touch()
    assert preflight_run() == "Result=exit-code"
    (alert,) = vigil_manager.wait_for(lambda: deliveries(state), 20, what="the preflight alert")
    assert "briefing is due at" in str(alert["body"])
    assert "will fail: `echo checking; test ! -e" in str(alert["body"])
    assert "exited 1: Cannot find module" in str(alert["body"])
    assert preflight_run() == "Result=exit-code"
    vigil_manager.systemctl("reset-failed", "pf-preflight-briefing.service")
    config = tmp_path / "pf.yaml"
    (row,) = json.loads(vigil("status", "briefing", "--config", config, "--json").stdout)
    assert "preflight failing since" in row["note"] and "Cannot find module" in row["note"]

    (state / "broken").unlink()
    assert preflight_run() == "Result=success"
    alerts = vigil_manager.wait_for(
        lambda: len(deliveries(state)) >= 2 and deliveries(state), 20, what="the recovery"
    )
    assert len(alerts) == 2, alerts
    assert "briefing: its preflight passes again (failing since" in str(alerts[1]["body"])
    (row,) = json.loads(vigil("status", "briefing", "--config", config, "--json").stdout)
    assert "preflight" not in row["note"]
    # A preflight is not a run of the job: nothing in runs.jsonl about the briefing.
    runs = (state / "runs.jsonl").read_text() if (state / "runs.jsonl").exists() else ""
    assert '"job":"briefing"' not in runs

"""Jobs run by a real systemd user manager: what systemd records (Result, exit status), what
runs.jsonl records, and the failure alert that OnFailure= puts into the inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: rt
state_dir: {state}
jobs:
  good:
    schedule: "0 0 1 1 *"
    run: "echo '{{\\"message\\": \\"hello\\"}}'"
  quiet:
    schedule: "0 0 1 1 *"
    run: "echo just a log line"
  broken:
    schedule: "0 0 1 1 *"
    run: "echo about to fail >&2; exit 3"
  garbage:
    schedule: "0 0 1 1 *"
    run: "echo '{{not json'"
  slow:
    schedule: "0 0 1 1 *"
    run: "sleep 60"
    timeout: 1s
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""

EXPECTED = {
    # job: (systemd Result, exit status, runs.jsonl result, findings in the inbox)
    "good": ("success", "0", "ok", 1),
    "quiet": ("success", "0", "ok", 0),
    "broken": ("exit-code", "1", "failed", 0),
    "garbage": ("exit-code", "3", "contract", 0),
    "slow": ("exit-code", "4", "timeout", 0),
}


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path):
    manager = vigil_manager
    state = apply_config(vigil, tmp_path, "rt", CONFIG)
    # These tests look at the inbox themselves: keep the coordinator from draining it.
    manager.systemctl("stop", "rt-coordinator.path", "rt-coordinator.timer")
    return manager, state


def runs(state: Path) -> list[dict]:
    path = state / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def inbox(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "inbox").glob("*.json"))]


@pytest.mark.parametrize("job", sorted(EXPECTED))
def test_job_result_in_systemd_history_and_inbox(installed, job: str) -> None:
    manager, state = installed
    unit = f"rt-{job}.service"
    manager.systemctl("start", unit, check=False)
    result, status, word, findings = EXPECTED[job]
    shown = manager.show(unit, "Result", "ExecMainStatus", "InvocationID")
    assert (shown["Result"], shown["ExecMainStatus"]) == (result, status)
    recorded = [run for run in runs(state) if run["job"] == job]
    assert len(recorded) == 1
    assert recorded[0]["result"] == word
    assert recorded[0]["invocation_id"] == shown["InvocationID"]
    mine = [f for f in inbox(state) if f.get("source") == job]
    assert len(mine) == findings
    if word == "ok":
        return
    # OnFailure= ran the failure handler, which put an alert into the inbox.
    alerts = manager.wait_for(
        lambda: [f for f in inbox(state) if f.get("kind") == "failure" and f.get("unit") == unit],
        timeout=15,
        what=f"failure alert for {unit}",
    )
    alert = alerts[0]
    assert alert["source"] == "vigil" and alert["urgent"] is True
    assert alert["job"] == job
    assert alert["message"].startswith(f"rt-{job} failed (exit-code, status {status})")
    failure = manager.show(f"rt-failure@{unit}.service", "Result")
    assert failure["Result"] == "success"


def test_job_output_reaches_the_journal(installed) -> None:
    manager, _ = installed
    manager.systemctl("start", "rt-quiet.service")
    manager.wait_for_journal("rt-quiet.service", "just a log line")
    manager.systemctl("start", "rt-broken.service", check=False)
    manager.wait_for_journal("rt-broken.service", "about to fail")

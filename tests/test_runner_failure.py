"""The OnFailure= handler: $MONITOR_* and the journal become an urgent finding."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.history import RunRecord
from tests.runner_support import inbox, real_spec, run_runner, runner_env, write_spec

MONITOR = {
    "MONITOR_SERVICE_RESULT": "exit-code",
    "MONITOR_EXIT_CODE": "exited",
    "MONITOR_EXIT_STATUS": "1",
    "MONITOR_INVOCATION_ID": "0123456789abcdef0123456789abcdef",
    "MONITOR_UNIT": "bruba-reminder-check.service",
}


def failure_spec(tmp_path: Path, **overrides: Any) -> Path:
    spec = real_spec("bruba/specs/failure.json")
    spec.update(state_dir=str(tmp_path / "state"), **overrides)
    return write_spec(tmp_path, spec, "failure.json")


def fake_journalctl(tmp_path: Path, script: str) -> str:
    """A directory holding a stand-in `journalctl`, to put first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "journalctl"
    tool.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "journalctl.args"}\n{script}\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def handle_failure(spec: Path, unit: str = "", **env: str) -> Any:
    return run_runner("failure", spec, unit or "ignored.service", env=runner_env(**env))


def test_alert_from_monitor_variables_and_journal(tmp_path: Path) -> None:
    path = fake_journalctl(tmp_path, "printf 'starting\\nremindctl: no such list\\n'")
    result = handle_failure(failure_spec(tmp_path), PATH=path, **MONITOR)
    assert result.returncode == 0, result.stderr
    [alert] = inbox(tmp_path / "state")
    assert alert["source"] == "vigil"
    assert alert["kind"] == "failure"
    assert alert["unit"] == "bruba-reminder-check.service"
    assert alert["job"] == "reminder-check"
    assert alert["result"] == "exit-code"
    assert alert["exit_status"] == "1"
    # The reference workload's `release: {pause_after: 5}` counts the failure (test_runner_pause).
    assert alert["message"] == (
        "bruba-reminder-check failed (exit-code, status 1) (failure 1 in a row; paused at 5)"
    )
    assert alert["journal"] == ["starting", "remindctl: no such list"]
    assert alert["urgent"] is True
    assert alert["priority"] >= 100
    assert alert["id"] == f"failure-{MONITOR['MONITOR_INVOCATION_ID']}"
    assert alert["timestamp"].endswith("Z")
    args = (tmp_path / "journalctl.args").read_text().split()
    assert "--user" not in args  # per-user journal files miss root's and volatile journals
    assert f"_SYSTEMD_INVOCATION_ID={MONITOR['MONITOR_INVOCATION_ID']}" in args
    assert "20" in args  # journal_lines from the spec
    assert "remindctl: no such list" in result.stderr  # the alert reaches the journal too


def test_the_runners_reason_is_quoted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    record = {
        "job": "reminder-check",
        "kind": "job",
        "invocation_id": MONITOR["MONITOR_INVOCATION_ID"],
        "result": "contract",
        "reason": "finding 0: `priority` must be a whole number",
    }
    (state / "runs.jsonl").write_text(json.dumps(record) + "\n")
    path = fake_journalctl(tmp_path, "true")
    env = {**MONITOR, "MONITOR_EXIT_STATUS": "3"}
    assert handle_failure(failure_spec(tmp_path), PATH=path, **env).returncode == 0
    [alert] = inbox(state)
    assert alert["message"] == (
        "bruba-reminder-check failed (exit-code, status 3): "
        "finding 0: `priority` must be a whole number (failure 1 in a row; paused at 5)"
    )


def test_a_failing_coordinators_recorded_reason_is_quoted(tmp_path: Path) -> None:
    """The coordinator records itself as kind `coordinator`: its reason reaches the alert."""
    state = tmp_path / "state"
    state.mkdir()
    started = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    record = RunRecord(job="coordinator", kind="coordinator", config="bruba", started=started)
    record.invocation_id = MONITOR["MONITOR_INVOCATION_ID"]
    line = record.as_json(
        result="storage", exit_code=8, reason="inbox: No space left on device", ended=started
    )
    (state / "runs.jsonl").write_text(line + "\n")
    env = {**MONITOR, "MONITOR_UNIT": "bruba-coordinator.service", "MONITOR_EXIT_STATUS": "8"}
    path = fake_journalctl(tmp_path, "true")
    assert handle_failure(failure_spec(tmp_path), PATH=path, **env).returncode == 0
    [alert] = inbox(state)
    assert alert["job"] == "coordinator"
    assert alert["message"] == (
        "bruba-coordinator failed (exit-code, status 8): inbox: No space left on device"
    )


@pytest.mark.parametrize("journal", ["missing", "failing"])
def test_the_alert_goes_out_without_a_journal(tmp_path: Path, journal: str) -> None:
    if journal == "missing":
        empty = tmp_path / "empty"
        empty.mkdir()
        path = str(empty)
    else:
        path = fake_journalctl(tmp_path, "echo 'Failed to open journal' >&2; exit 1")
    result = handle_failure(failure_spec(tmp_path), PATH=path, **MONITOR)
    assert result.returncode == 0, result.stderr
    [alert] = inbox(tmp_path / "state")
    assert len(alert["journal"]) == 1
    assert alert["journal"][0].startswith("journal unavailable")
    if journal == "failing":
        assert "Failed to open journal" in alert["journal"][0]


def test_unit_from_the_argument_and_system_scope(tmp_path: Path) -> None:
    path = fake_journalctl(tmp_path, "echo line")
    spec = failure_spec(tmp_path, scope="system")
    env = {"MONITOR_SERVICE_RESULT": "timeout", "MONITOR_EXIT_CODE": "killed"}
    env["MONITOR_EXIT_STATUS"] = "TERM"
    result = handle_failure(spec, "bruba-staleness-check.service", PATH=path, **env)
    assert result.returncode == 0, result.stderr
    [alert] = inbox(tmp_path / "state")
    assert alert["unit"] == "bruba-staleness-check.service"
    assert alert["job"] == "staleness-check"
    assert alert["message"] == (
        "bruba-staleness-check failed (timeout, signal TERM) (failure 1 in a row; paused at 5)"
    )
    args = (tmp_path / "journalctl.args").read_text().split()
    assert "--user" not in args
    assert "--unit" in args and "bruba-staleness-check.service" in args


def test_a_failing_coordinator_alerts_at_most_every_ten_minutes(tmp_path: Path) -> None:
    path = fake_journalctl(tmp_path, "echo crashed")
    spec = failure_spec(tmp_path)
    env = {**MONITOR, "MONITOR_UNIT": "bruba-coordinator.service", "PATH": path}
    state = tmp_path / "state"

    assert handle_failure(spec, **env).returncode == 0
    assert len(inbox(state)) == 1
    second = handle_failure(spec, **env)
    assert second.returncode == 0
    assert len(inbox(state)) == 1, "a second coordinator alert within ten minutes"
    assert "bruba-coordinator failed" in second.stderr  # still in the journal
    assert "not written to the inbox" in second.stderr

    # Other units are never rate-limited.
    other = {**env, "MONITOR_UNIT": MONITOR["MONITOR_UNIT"]}
    assert handle_failure(spec, **other).returncode == 0
    assert len(inbox(state)) == 2

    limit = state / "state" / "failure-alerts.json"
    earlier = datetime.now(UTC) - timedelta(minutes=11)
    limit.write_text(json.dumps({"coordinator_alerted": earlier.isoformat()}))
    assert handle_failure(spec, **env).returncode == 0
    assert len(inbox(state)) == 3

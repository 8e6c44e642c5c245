"""`pause_after` under a real user manager: the sandboxed failure handler stops and disables the
timer of a job that failed N times in a row, one alert reaches the file channel through the
coordinator, `vigil status` shows the pause, `vigil apply` keeps it and `vigil enable` ends it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: pz
state_dir: {state}
jobs:
  flaky:
    schedule: "0 12 1 1 *"
    run: "echo 'the API said 503' >&2; exit 3"
    check: "true"
    preflight: 30m
    pause_after: 3
  steady:
    schedule: "0 0 1 1 *"
    run: "true"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""
TIMER = "pz-flaky.timer"
PREFLIGHT = "pz-preflight-flaky.timer"
SERVICE = "pz-flaky.service"


def delivered(state: Path) -> list[dict[str, Any]]:
    path = state / "deliveries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def about_flaky(state: Path) -> list[str]:
    return [m["body"] for m in delivered(state) if "flaky" in m["body"]]


def fail_once(manager, state: Path, alerts: int) -> None:
    """Start the job's service and wait until its failure handler has finished and the
    coordinator has delivered `alerts` messages about it in all."""
    manager.systemctl("start", SERVICE, check=False)
    assert manager.show(SERVICE, "Result")["Result"] == "exit-code"
    handler = f"pz-failure@{SERVICE}.service"
    manager.wait_for(
        lambda: manager.show(handler, "ActiveState")["ActiveState"] in ("inactive", "failed"),
        timeout=15,
        what=f"{handler} to finish",
    )
    assert manager.show(handler, "Result")["Result"] == "success"
    manager.wait_for(
        lambda: len(about_flaky(state)) >= alerts, timeout=15, what=f"{alerts} deliveries"
    )


def test_pause_after_3_stops_the_timer_with_one_alert(vigil, vigil_manager, tmp_path) -> None:
    manager = vigil_manager
    state = apply_config(vigil, tmp_path, "pz", CONFIG)
    config = tmp_path / "pz.yaml"
    assert manager.show(TIMER, "ActiveState")["ActiveState"] == "active"

    fail_once(manager, state, 1)
    fail_once(manager, state, 2)
    assert manager.show(TIMER, "ActiveState", "UnitFileState") == {
        "ActiveState": "active",
        "UnitFileState": "enabled",
    }
    fail_once(manager, state, 3)
    for unit in (TIMER, PREFLIGHT):  # its preflight would warn about runs that will not come
        assert manager.show(unit, "ActiveState", "UnitFileState") == {
            "ActiveState": "inactive",
            "UnitFileState": "disabled",
        }
    first, second, third = about_flaky(state)
    assert "(failure 1 in a row; paused at 3)" in first
    assert "(failure 2 in a row; paused at 3)" in second
    assert (
        "flaky paused after 3 failures in a row: command exited with status 3; "
        "`vigil enable flaky` resumes"
    ) in third
    assert manager.show("pz-steady.timer", "ActiveState")["ActiveState"] == "active"

    # A fourth failure (a run by hand) alerts no more.
    manager.systemctl("start", SERVICE, check=False)
    handler = f"pz-failure@{SERVICE}.service"
    manager.wait_for(
        lambda: "not alerted again" in manager.journal(handler), timeout=15, what="the handler"
    )
    assert manager.show(TIMER, "ActiveState")["ActiveState"] == "inactive"

    status = vigil("status", "flaky", "--config", config, "--json")
    [row] = json.loads(status.stdout)
    assert row["enabled"] == "paused"
    assert row["paused"]["failures"] == 3
    assert row["paused"]["reason"] == "command exited with status 3"
    table = vigil("status", "--config", config).stdout
    assert "paused since" in table and "`vigil enable flaky` resumes" in table
    checks = json.loads(vigil("doctor", "--config", config, "--json").stdout)
    [unit_check] = [c for c in checks if c["name"] == "units" and c["status"] != "ok"]
    assert unit_check["status"] == "warn" and unit_check["fix"] == "vigil enable flaky"
    assert unit_check["detail"].startswith("flaky paused since ")

    # plan says it stays paused; apply of the same config, of one that changes its timer
    # (which apply restarts otherwise) and a rollback keep it so.
    stays = "after 3 failures: command exited with status 3); `vigil enable flaky` resumes"
    planned = vigil("plan", config)
    assert planned.exit_code == 0, planned.stderr
    assert "flaky: stays paused (since " in planned.stderr and stays in planned.stderr
    assert "disabled by hand" not in planned.stderr and "No changes." in planned.stderr
    again = vigil("apply", config, "--yes")
    assert again.exit_code == 0, again.stderr
    assert "flaky: stays paused (since " in again.stderr and stays in again.stderr
    edited = CONFIG.replace("    pause_after: 3\n", "    pause_after: 3\n    accuracy: 2min\n")
    config.write_text(edited.format(state=state))
    changed = vigil("apply", config, "--yes")
    assert changed.exit_code == 0, changed.stderr
    assert "update    units/pz-flaky.timer" in changed.stderr
    for unit in (TIMER, PREFLIGHT):
        assert manager.show(unit, "ActiveState", "UnitFileState") == {
            "ActiveState": "inactive",
            "UnitFileState": "disabled",
        }
    back = vigil("rollback", "--yes")
    assert back.exit_code == 0, back.stderr
    assert "flaky: stays paused (since " in back.stderr
    assert manager.show(TIMER, "ActiveState")["ActiveState"] == "inactive"

    resumed = vigil("enable", "flaky", "--config", config)
    assert resumed.exit_code == 0, resumed.stderr
    for unit in (TIMER, PREFLIGHT):
        assert manager.show(unit, "ActiveState", "UnitFileState") == {
            "ActiveState": "active",
            "UnitFileState": "enabled",
        }
    [row] = json.loads(vigil("status", "flaky", "--config", config, "--json").stdout)
    assert row["paused"] is None and row["enabled"] == "enabled"
    # The count starts afresh: the next failure is the first of a new row.
    fail_once(manager, state, 4)
    assert "(failure 1 in a row; paused at 3)" in about_flaky(state)[-1]
    assert manager.show(TIMER, "ActiveState")["ActiveState"] == "active"


@pytest.mark.usefixtures("vigil_manager")
def test_plan_and_status_name_a_pause_record_of_another_shape(vigil, tmp_path) -> None:
    state = apply_config(vigil, tmp_path, "pz", CONFIG)
    config = tmp_path / "pz.yaml"
    record = state / "state" / "pauses.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"version": 2, "jobs": {}}))
    said = f"{record} is version 2; this vigil reads version 1: the jobs paused there are not "
    planned = vigil("plan", config)
    assert planned.exit_code == 0 and said in planned.stderr
    status = vigil("status", "--config", config)
    assert status.exit_code == 0 and said in status.stderr
    assert record.exists()  # read only: the handler sets it aside when it next runs

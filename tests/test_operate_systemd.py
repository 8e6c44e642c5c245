"""Operating an installed config against a real systemd user manager: `vigil status`, `run`,
`logs`, `enable`, `disable` and `doctor`, on healthy installs and on failures.

vigil runs in-process with the manager's environment (as in test_apply_systemd.py), except
`vigil logs`: journalctl sees the private journal only inside the manager's mount namespace,
so it runs there as a subprocess.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import apply_config, vigil_in_namespace

pytestmark = pytest.mark.systemd

CONFIG = """\
name: op
state_dir: {state}
secrets:
  token: {secrets}/token
jobs:
  good:
    description: Prints a numbered line, if it can read its credential
    schedule: "0 0 1 1 *"
    secrets: [token]
    # The early stderr line ties the journal stream to the unit while the runner is alive.
    run: >-
      echo starting >&2; sleep 0.2;
      n=$(( $(cat {state}/count 2>/dev/null || echo 0) + 1 )); echo $n > {state}/count;
      test -r "$CREDENTIALS_DIRECTORY/token" && echo "good-output-line $n"
  broken:
    schedule: "0 0 1 1 *"
    run: "echo broken-output-line >&2; sleep 0.2; exit 3"
  slow:
    schedule: "Mon..Fri 07:00"
    run: "sleep 2"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""
JOBS = ("good", "broken", "slow")


@dataclass
class Installed:
    manager: Any
    config: Path
    state: Path
    secret: Path
    tmp: Path


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path):
    manager = vigil_manager
    state, secrets = tmp_path / "state", tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    secret = secrets / "token"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    apply_config(vigil, tmp_path, "op", CONFIG, secrets=secrets)
    config = tmp_path / "op.yaml"
    return Installed(manager, config, state, secret, tmp_path)


def status_json(vigil, op: Installed, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = vigil("status", "--config", op.config, "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def runs(state: Path, job: str) -> list[dict[str, Any]]:
    path = state / "runs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [run for run in map(json.loads, lines) if run.get("job") == job]


def vigil_logs(op: Installed, *args: str) -> str:
    """`vigil logs ARGS` inside the manager's mount namespace, from the config's directory."""
    return vigil_in_namespace(op.manager, op.tmp, "logs", *args, "--config", op.config).stdout


def doctor(vigil, op: Installed) -> tuple[int, dict[str, list[dict[str, str]]]]:
    result = vigil("doctor", "--config", op.config, "--json")
    checks: dict[str, list[dict[str, str]]] = {}
    for check in json.loads(result.stdout):
        checks.setdefault(check["name"], []).append(check)
    return result.exit_code, checks


def failing(checks: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    return {
        name: [c["detail"] for c in found if c["status"] == "fail"]
        for name, found in checks.items()
        if any(c["status"] == "fail" for c in found)
    }


# --- status -------------------------------------------------------------------------------------


def test_status_after_apply_shows_every_job_and_the_coordinator(vigil, installed) -> None:
    op = installed
    table = vigil("status", "--config", op.config)
    assert table.exit_code == 0, table.stdout + table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "KIND", "ENABLED"]
    assert [line.split()[0] for line in lines] == [*JOBS, "coordinator"]

    code, rows = status_json(vigil, op)
    assert code == 0
    by_name = {row["name"]: row for row in rows}
    assert {n: r["kind"] for n, r in by_name.items()} == {
        **dict.fromkeys(JOBS, "job"),
        "coordinator": "coordinator",
    }
    for row in rows:  # the coordinator's next run is its heartbeat's (a monotonic timer)
        assert row["enabled"] == "enabled", row
        assert row["next_run"], f"no next run for {row['name']}"
        assert (row["failed"], row["failures_in_row"], row["last_run"]) == (False, 0, None)
    assert "2027-01-01 00:00:00" in by_name["good"]["next_run"]
    assert by_name["slow"]["next_run"].startswith(("Mon", "Tue", "Wed", "Thu", "Fri"))


def test_status_after_a_failed_run_exits_1_and_shows_the_failure(vigil, installed) -> None:
    op = installed
    assert vigil("run", "broken", "--wait", "--config", op.config).exit_code != 0
    table = vigil("status", "--config", op.config)
    assert table.exit_code == 1
    broken_line = next(line for line in table.stdout.splitlines() if line.startswith("broken "))
    assert " failed " in broken_line and "op-broken.service failed (exit-code)" in broken_line

    code, rows = status_json(vigil, op)
    assert code == 1
    broken = next(row for row in rows if row["name"] == "broken")
    assert (broken["result"], broken["failures_in_row"], broken["failed"]) == ("failed", 1, True)
    assert broken["last_run"] and broken["duration_s"] is not None
    assert not any(row["failed"] for row in rows if row["name"] != "broken")

    # One row; the exit code follows only what is shown.
    one = vigil("status", "broken", "--config", op.config)
    assert one.exit_code == 1
    assert [line.split()[0] for line in one.stdout.splitlines()[1:]] == ["broken"]
    code, rows = status_json(vigil, op, "good")
    assert code == 0 and [row["name"] for row in rows] == ["good"]

    # A second failure in a row is counted.
    op.manager.systemctl("reset-failed", "op-broken.service")
    vigil("run", "broken", "--wait", "--config", op.config)
    assert status_json(vigil, op, "broken")[1][0]["failures_in_row"] == 2


def test_status_of_an_unknown_name_exits_2_with_a_suggestion(vigil, installed) -> None:
    result = vigil("status", "brokn", "--config", installed.config)
    assert result.exit_code == 2
    assert "unknown job or watch 'brokn'; did you mean 'broken'?" in result.stderr
    assert "(jobs and watches: broken, coordinator, good, slow)" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    for command in (["run"], ["logs"], ["enable"], ["disable"]):
        assert vigil(*command, "nosuch", "--config", installed.config).exit_code == 2


# --- run ----------------------------------------------------------------------------------------


def test_run_wait_exits_with_the_runners_status_and_records_the_invocation(
    vigil, installed
) -> None:
    op = installed
    good = vigil("run", "good", "--wait", "--config", op.config)
    assert good.exit_code == 0, good.stderr
    assert "op-good.service: success (exit status 0), ok" in good.stderr
    shown = op.manager.show("op-good.service", "InvocationID", "Result")
    [record] = runs(op.state, "good")
    assert record["result"] == "ok" and record["invocation_id"] == shown["InvocationID"]

    broken = vigil("run", "broken", "--wait", "--config", op.config)
    shown = op.manager.show("op-broken.service", "InvocationID", "ExecMainStatus", "Result")
    assert shown["Result"] == "exit-code"
    assert broken.exit_code == int(shown["ExecMainStatus"]) == 1
    assert "failed: command exited with status 3" in broken.stderr
    [record] = runs(op.state, "broken")
    assert (record["result"], record["exit_status"], record["command_exit"]) == ("failed", 1, 3)
    assert record["invocation_id"] == shown["InvocationID"]

    rotated = op.state / "runs.jsonl.1"
    rotated.mkdir()  # runs.jsonl cannot be read: the run's own status still counts
    try:
        again = vigil("run", "good", "--wait", "--config", op.config)
    finally:
        rotated.rmdir()
    assert again.exit_code == 0, again.stderr
    assert "op-good.service: success (exit status 0) (runs.jsonl cannot be read: " in again.stderr


def test_run_without_wait_returns_at_once(vigil, installed) -> None:
    op = installed
    began = time.monotonic()
    result = vigil("run", "slow", "--config", op.config)
    took = time.monotonic() - began
    assert result.exit_code == 0, result.stderr
    assert took < 1.5, f"vigil run took {took:.2f} s for a 2 s job"
    assert "op-slow.service: started" in result.stderr
    assert op.manager.show("op-slow.service", "ActiveState")["ActiveState"] == "activating"
    assert runs(op.state, "slow") == []
    [record] = op.manager.wait_for(lambda: runs(op.state, "slow"), timeout=15, what="slow's run")
    assert record["result"] == "ok" and record["duration_s"] >= 2


# --- logs ---------------------------------------------------------------------------------------


def test_logs_show_a_jobs_output_since_a_time_and_its_failure_handler(vigil, installed) -> None:
    op = installed
    manager = op.manager
    assert vigil("run", "good", "--wait", "--config", op.config).exit_code == 0
    manager.wait_for_journal("op-good.service", "good-output-line 1")
    first = vigil_logs(op, "good")
    assert "good-output-line 1" in first and "Starting op-good.service" in first

    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    assert vigil("run", "good", "--wait", "--config", op.config).exit_code == 0
    manager.wait_for_journal("op-good.service", "good-output-line 2")
    later = vigil_logs(op, "good", "--since", since)
    assert "good-output-line 2" in later and "good-output-line 1" not in later
    assert "-- No entries --" in vigil_logs(op, "good", "--since", "tomorrow")
    assert len(vigil_logs(op, "good", "-n", "1").strip().splitlines()) == 1

    assert vigil("run", "broken", "--wait", "--config", op.config).exit_code == 1
    handler = "op-failure@op-broken.service.service"
    manager.wait_for_journal(handler, "alert written")
    broken = vigil_logs(op, "broken")
    assert "broken-output-line" in broken
    assert "vigil: broken: failed: command exited with status 3" in broken
    assert f"Starting {handler}" in broken
    assert "op-broken failed (exit-code, status 1)" in broken  # the handler's own line
    assert "alert written" in broken
    assert "good-output-line" not in broken


# --- enable / disable ---------------------------------------------------------------------------


def timer_state(op: Installed, job: str) -> tuple[str, str]:
    shown = op.manager.show(f"op-{job}.timer", "UnitFileState", "ActiveState")
    return shown["UnitFileState"], shown["ActiveState"]


def test_disable_and_enable_a_timer_and_plan_shows_the_drift(vigil, installed) -> None:
    op = installed
    result = vigil("disable", "good", "--config", op.config)
    assert result.exit_code == 0, result.stderr
    assert "op-good.timer: stopped and disabled" in result.stderr
    assert timer_state(op, "good") == ("disabled", "inactive")
    assert timer_state(op, "broken") == ("enabled", "active")

    planned = vigil("plan", op.config)
    assert planned.exit_code == 0
    assert "drift: op-good.timer was disabled by hand" in planned.stderr
    assert "1 to enable again" in planned.stderr
    assert vigil("plan", op.config, "--check").exit_code == 1
    code, rows = status_json(vigil, op, "good")
    assert code == 0 and rows[0]["enabled"] == "disabled" and rows[0]["next_run"] is None
    # Paused on purpose: doctor mentions it but does not fail.
    code, checks = doctor(vigil, op)
    assert code == 0, failing(checks)
    assert any(
        c["status"] == "warn" and "op-good.timer was disabled by hand" in c["detail"]
        for c in checks["units"]
    )

    result = vigil("enable", "good", "--config", op.config)
    assert result.exit_code == 0, result.stderr
    assert timer_state(op, "good") == ("enabled", "active")
    clean = vigil("plan", op.config, "--check")
    assert clean.exit_code == 0 and "disabled by hand" not in clean.stderr
    assert status_json(vigil, op, "good")[1][0]["next_run"]


def test_apply_after_disable_enables_the_timer_again(vigil, installed) -> None:
    op = installed
    assert vigil("disable", "slow", "--config", op.config).exit_code == 0
    assert timer_state(op, "slow") == ("disabled", "inactive")
    result = vigil("apply", op.config, "--yes")
    assert result.exit_code == 0, result.stderr
    assert timer_state(op, "slow") == ("enabled", "active")
    assert vigil("plan", op.config, "--check").exit_code == 0


def test_disable_the_coordinator_stops_its_path_unit(vigil, installed) -> None:
    op = installed
    assert vigil("disable", "coordinator", "--config", op.config).exit_code == 0
    path = op.manager.show("op-coordinator.path", "UnitFileState", "ActiveState")
    assert (path["UnitFileState"], path["ActiveState"]) == ("disabled", "inactive")
    assert vigil("enable", "coordinator", "--config", op.config).exit_code == 0
    path = op.manager.show("op-coordinator.path", "UnitFileState", "ActiveState")
    assert (path["UnitFileState"], path["ActiveState"]) == ("enabled", "active")


# --- doctor -------------------------------------------------------------------------------------


def test_doctor_on_a_healthy_install(vigil, installed) -> None:
    code, checks = doctor(vigil, installed)
    assert code == 0, failing(checks)
    assert failing(checks) == {}
    # No logind here: linger cannot be known, which is a warning, never a failure.
    assert {c["status"] for c in checks["linger"]} <= {"ok", "warn"}
    for name in ("systemd", "manager", "installed", "units", "inbox", "outbox", "credentials"):
        assert [c["status"] for c in checks[name]] == ["ok"], checks[name]
    assert checks["credentials"][0]["detail"] == "1 secrets readable"
    text = vigil("doctor", "--config", installed.config)
    assert text.exit_code == 0
    assert not [line for line in text.stdout.splitlines() if line.startswith("fail")]


def test_doctor_fails_on_a_hand_edited_unit(vigil, installed) -> None:
    op = installed
    unit = op.manager.unit_dir / "op-good.timer"
    unit.write_text(unit.read_text().replace("AccuracySec=1min", "AccuracySec=1h"))
    code, checks = doctor(vigil, op)
    assert code == 1
    assert failing(checks) == {
        "installed": ["changed by hand since installed: units/op-good.timer"]
    }
    assert "vigil apply CONFIG restores them" in checks["installed"][0]["fix"]
    text = vigil("doctor", "--config", op.config)
    assert text.exit_code == 1
    assert any(line.startswith("fail  installed") for line in text.stdout.splitlines())


def test_doctor_fails_on_a_missing_secret(vigil, installed) -> None:
    op = installed
    op.secret.unlink()
    code, checks = doctor(vigil, op)
    assert code == 1
    assert failing(checks) == {
        "credentials": [f"secret token: {op.secret} is missing or unreadable"]
    }
    # The job that needs it cannot start: systemd refuses to load the credential.
    result = vigil("run", "good", "--wait", "--config", op.config)
    assert result.exit_code != 0

"""`notify_recovered`: the failure handler marks a failing job (state/failing/<job>), and the job's
next successful run drops one `recovered` finding and removes the mark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner import recovery
from tests.runner_support import RunnerCall, inbox, runner_in_process, shell_spec, write_spec
from tests.test_runner_failure import MONITOR, failure_spec, fake_journalctl, handle_failure

__all__ = ["runner_in_process"]  # the fixture

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
INVOCATION = MONITOR["MONITOR_INVOCATION_ID"]


def recovered(state: Path) -> list[dict[str, Any]]:
    return [finding for finding in inbox(state) if finding.get("kind") == "recovered"]


def fail(tmp_path: Path, wanted: list[str] | None = None, **monitor: str) -> None:
    spec = failure_spec(tmp_path, notify_recovered=wanted or ["reminder-check"])
    result = handle_failure(spec, PATH=fake_journalctl(tmp_path, "true"), **(MONITOR | monitor))
    assert result.returncode == 0, result.stderr


def run(run_in_process: RunnerCall, tmp_path: Path, command: str = "true", **spec: Any) -> int:
    settings = {"notify_recovered": True, **spec}
    path = write_spec(tmp_path, shell_spec(tmp_path, command, **settings))
    return run_in_process("job", path).returncode


def test_a_failure_then_a_success_is_one_recovery(
    tmp_path: Path, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    fail(tmp_path)
    assert (state / "state" / "failing" / "reminder-check").exists()
    assert run(runner_in_process, tmp_path) == 0
    [finding] = recovered(state)
    assert finding["source"] == "vigil"
    assert finding["job"] == "reminder-check"
    assert finding["id"] == f"recovered-{INVOCATION}"
    assert finding["timestamp"].endswith("Z")
    assert not (state / "state" / "failing" / "reminder-check").exists()
    assert run(runner_in_process, tmp_path) == 0
    assert len(recovered(state)) == 1  # success after success: nothing more


def test_a_run_that_fails_again_keeps_the_mark_and_the_latest_failure_names_the_recovery(
    tmp_path: Path, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    fail(tmp_path)
    assert run(runner_in_process, tmp_path, "exit 3") != 0
    assert recovered(state) == []
    fail(tmp_path, MONITOR_INVOCATION_ID="f" * 32)
    assert run(runner_in_process, tmp_path) == 0
    [finding] = recovered(state)
    assert finding["id"] == "recovered-" + "f" * 32


def test_no_mark_when_recovery_is_not_wanted(tmp_path: Path, runner_in_process: RunnerCall) -> None:
    state = tmp_path / "state"
    fail(tmp_path, wanted=["another-job"])
    assert not (state / "state" / "failing").exists()
    fail(tmp_path, MONITOR_UNIT="bruba-watch-urgent-reply.service")  # a watch: not a job
    assert not (state / "state" / "failing").exists()
    recovery.mark_failing(str(state), "reminder-check", INVOCATION, NOW)
    assert run(runner_in_process, tmp_path, notify_recovered=False) == 0
    assert recovered(state) == []  # the job's spec no longer asks for it


def test_a_crash_between_the_finding_and_the_unmarking_repeats_the_same_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = str(tmp_path / "state")
    recovery.mark_failing(state, "reminder-check", INVOCATION, NOW)

    def killed(_path: str) -> None:
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(recovery.os, "unlink", killed)
        with pytest.raises(KeyboardInterrupt):
            recovery.announce_recovery(state, "reminder-check", NOW)
    assert recovery.announce_recovery(state, "reminder-check", NOW) is True
    first, again = recovered(tmp_path / "state")
    assert first == again
    assert first["id"] == f"recovered-{INVOCATION}"
    assert recovery.announce_recovery(state, "reminder-check", NOW) is False


def test_a_mark_without_an_invocation_id_still_names_one_recovery(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    recovery.mark_failing(state, "reminder-check", "", NOW)
    Path(recovery.marker_path(state, "reminder-check")).write_text("not json")
    assert recovery.announce_recovery(state, "reminder-check", NOW)
    [finding] = recovered(tmp_path / "state")
    assert finding["id"].startswith("recovered-reminder-check-")

"""Shell jobs through the real runner: the stdout contract, failures, timeouts, environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner_support import ROOT, inbox, run_runner, runner_env, runs, shell_spec, write_spec


def run_job(
    tmp_path: Path, command: str | list[str], **overrides: object
) -> subprocess.CompletedProcess[str]:
    spec = write_spec(tmp_path, shell_spec(tmp_path, command, **overrides))
    return run_runner("job", spec)


def test_one_finding_gets_source_and_timestamp(tmp_path: Path) -> None:
    result = run_job(tmp_path, """echo '{"message": "Pay rent", "priority": 3}'""")
    assert result.returncode == 0, result.stderr
    [finding] = inbox(tmp_path / "state")
    assert finding["message"] == "Pay rent"
    assert finding["priority"] == 3
    assert finding["source"] == "reminder-check"
    assert finding["timestamp"].endswith("Z")
    [run] = runs(tmp_path / "state")
    assert run["result"] == "ok"
    assert run["finding_written"] is True
    assert run["findings"] == 1


def test_a_list_gives_one_file_per_finding_and_keeps_given_fields(tmp_path: Path) -> None:
    findings = [
        {"message": "a", "source": "other", "timestamp": "2026-01-01T00:00:00Z"},
        {"items": [1, 2]},
    ]
    result = run_job(tmp_path, f"echo '{json.dumps(findings)}'")
    assert result.returncode == 0, result.stderr
    written = inbox(tmp_path / "state")
    assert len(written) == 2
    assert {"source": "other", "timestamp": "2026-01-01T00:00:00Z", "message": "a"} in written
    assert any(f.get("items") == [1, 2] and f["source"] == "reminder-check" for f in written)
    assert runs(tmp_path / "state")[0]["findings"] == 2


@pytest.mark.parametrize("output", ["", "true", "echo '[]'", "echo '  {}  '", "printf '\\n\\n'"])
def test_nothing_to_report_writes_nothing(tmp_path: Path, output: str) -> None:
    result = run_job(tmp_path, output or ":")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "state" / "inbox").exists() or inbox(tmp_path / "state") == []
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["finding_written"], run["findings"]) == ("ok", False, 0)


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("echo '{\"message\": oops'", "not valid JSON"),
        ("echo '[1, 2]'", "finding 0: expected a JSON object"),
        ('echo \'{"priority": "high"}\'', "`priority` must be a whole number"),
        ('echo \'[{"message": "ok"}, "text"]\'', "finding 1"),
    ],
)
def test_broken_json_breaks_the_contract(tmp_path: Path, command: str, why: str) -> None:
    result = run_job(tmp_path, command)
    assert result.returncode == 3
    assert why in result.stderr
    assert not (tmp_path / "state" / "inbox").exists()
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["exit_status"]) == ("contract", 3)
    assert why in run["reason"]


def test_plain_text_is_log(tmp_path: Path) -> None:
    result = run_job(tmp_path, "echo 'all quiet'; echo 'second line'")
    assert result.returncode == 0
    assert result.stdout == "all quiet\nsecond line\n"
    assert not (tmp_path / "state" / "inbox").exists()
    assert runs(tmp_path / "state")[0]["result"] == "ok"


def test_output_log_never_makes_findings(tmp_path: Path) -> None:
    result = run_job(tmp_path, """echo '{"message": "x"}'""", output="log")
    assert result.returncode == 0
    assert '{"message": "x"}' in result.stdout
    assert not (tmp_path / "state" / "inbox").exists()


def test_output_message_makes_one_finding(tmp_path: Path) -> None:
    result = run_job(
        tmp_path, "printf '\\n  Backup took 3h\\nsecond line \\n\\n'", output="message"
    )
    assert result.returncode == 0, result.stderr
    [finding] = inbox(tmp_path / "state")
    assert finding["message"] == "Backup took 3h\nsecond line"
    assert finding["source"] == "reminder-check"


def test_output_message_empty_is_nothing(tmp_path: Path) -> None:
    assert run_job(tmp_path, "echo '   '", output="message").returncode == 0
    assert not (tmp_path / "state" / "inbox").exists()


def test_command_failure_is_recorded_and_exits_1(tmp_path: Path) -> None:
    result = run_job(tmp_path, """echo '{"message": "x"}'; echo boom >&2; exit 7""")
    assert result.returncode == 1
    assert "boom" in result.stderr
    assert "exited with status 7" in result.stderr
    assert not (tmp_path / "state" / "inbox").exists()
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["exit_status"], run["command_exit"]) == ("failed", 1, 7)


def test_missing_program_is_a_failure(tmp_path: Path) -> None:
    result = run_job(tmp_path, ["vigil-no-such-program-here", "--flag"])
    assert result.returncode == 1
    assert "cannot start vigil-no-such-program-here" in result.stderr
    assert runs(tmp_path / "state")[0]["result"] == "failed"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 300 & echo $! > {pids}; echo partial; sleep 300"
    start = time.monotonic()
    result = run_job(tmp_path, command, timeout=1)
    assert time.monotonic() - start < 10
    assert result.returncode == 4
    assert "partial" in result.stdout
    background = int(pids.read_text())
    deadline = time.monotonic() + 5
    while _alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(background), "a process of the job's group survived the timeout"
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["exit_status"]) == ("timeout", 4)


def test_environment_working_directory_and_credentials_reach_the_command(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token").write_text("t0k")
    command = 'printf \'{"greeting": "%s", "cwd": "%s", "token": "%s", "unit": "%s"}\' '
    command += '"$GREETING" "$PWD" "$(cat "$CREDENTIALS_DIRECTORY/token")" "$FROM_UNIT"'
    spec = shell_spec(
        tmp_path, command, environment={"GREETING": "hi there"}, working_directory=str(workdir)
    )
    env = runner_env(CREDENTIALS_DIRECTORY=str(creds), FROM_UNIT="kept", GREETING="overridden")
    result = run_runner("job", write_spec(tmp_path, spec), env=env)
    assert result.returncode == 0, result.stderr
    [finding] = inbox(tmp_path / "state")
    assert finding["greeting"] == "hi there"
    assert finding["cwd"] == str(workdir)
    assert finding["token"] == "t0k"
    assert finding["unit"] == "kept"


def test_working_directory_defaults_to_the_state_dir_and_tilde_expands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    spec = shell_spec(tmp_path, "pwd", state_dir="~/state", output="log")
    result = run_runner("job", write_spec(tmp_path, spec), env=runner_env(HOME=str(home)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(home / "state")
    assert (home / "state" / "runs.jsonl").exists()


def test_invocation_id_is_recorded(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, shell_spec(tmp_path, "true"))
    run_runner("job", spec, env=runner_env(INVOCATION_ID="abc123"))
    assert runs(tmp_path / "state")[0]["invocation_id"] == "abc123"


def test_inbox_writes_leave_no_temp_or_dot_files(tmp_path: Path) -> None:
    findings = json.dumps([{"message": str(i)} for i in range(5)])
    assert run_job(tmp_path, f"echo '{findings}'").returncode == 0
    state = tmp_path / "state"
    names = os.listdir(state / "inbox")
    assert len(names) == 5
    assert all(not name.startswith(".") and name.endswith(".json") for name in names)
    assert all(name.startswith("reminder-check-") for name in names)
    assert os.listdir(state / "tmp") == []


def test_stopped_by_sigterm_records_the_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, shell_spec(tmp_path, "sleep 300"))
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "job", str(spec)],
        cwd=ROOT,
        env=runner_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _has_child(process.pid):
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert "stopped by SIGTERM" in stderr
    assert runs(tmp_path / "state")[0]["result"] == "failed"


def _has_child(pid: int) -> bool:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return children.exists() and bool(children.read_text().strip())

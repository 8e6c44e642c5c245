"""`pause_after`: the failure handler counts a job's failures in a row from runs.jsonl (and the
failures that have no line there) and at the limit stops its timer, records the pause and sends
one pause alert instead of that run's failure alert.

The counting is a function of the job's records; the handler runs as the units run it, with a
stand-in `systemctl` first on PATH that logs its arguments (the real one, from inside the
handler's sandbox, is tests/test_pause_systemd.py's and test_sandbox_systemd.py's)."""

from __future__ import annotations

import json
import os
import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.clock import iso
from runner.pause import (
    Verdict,
    clear_pause,
    fails_unit,
    failures_in_row,
    judge_failure,
    paused_jobs,
)
from tests.conftest import sized
from tests.runner_support import inbox, real_spec, run_runner, runner_env, write_spec

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
JOB = "reminder-check"
UNIT = "bruba-reminder-check.service"
TIMER = "bruba-reminder-check.timer"
PREFLIGHT = "bruba-preflight-reminder-check.timer"
STOP = f"--no-ask-password disable --now {TIMER} {PREFLIGHT}"


def record(result: str, minute: int, invocation: str = "") -> dict[str, Any]:
    end = T0 + timedelta(minutes=minute)
    return {
        "job": JOB,
        "kind": "job",
        "invocation_id": invocation or f"run-{minute}",
        "end": end.isoformat().replace("+00:00", "Z"),
        "result": result,
        "reason": f"{result} at minute {minute}" if result != "ok" else None,
    }


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


# --- counting ---------------------------------------------------------------------------------


def count(records: list[dict[str, Any]], invocation: str, unrecorded=(), **kw: Any) -> int:
    newest_first = list(reversed(records))
    return failures_in_row(newest_first, invocation, list(unrecorded), at(100), **kw)[0]


def test_only_results_that_fail_the_unit_count_and_ok_ends_the_row() -> None:
    assert [fails_unit(word) for word in ("ok", "failed", "budget", "skipped-after")] == [
        False,
        True,
        True,
        True,
    ]
    assert fails_unit("missed") is None and fails_unit(None) is None
    runs = [record("failed", 1), record("ok", 2), record("timeout", 3), record("budget", 4)]
    assert count(runs, "run-4") == 2
    runs += [record("missed", 5), record("contract", 6)]  # a missed firing breaks no row
    assert count(runs, "run-6") == 3
    runs.append(record("ok", 7))
    runs.append(record("failed", 8))
    assert count(runs, "run-8") == 1
    assert count([], "run-x") == 1  # the handler ran: this failure counts even with no line


def test_a_failure_with_no_line_counts_and_is_remembered_until_an_ok_outdates_it() -> None:
    runs = [record("failed", 1), record("failed", 2)]
    total, remembered = failures_in_row(list(reversed(runs)), "killed-run", [], at(3))
    assert (total, remembered) == (3, [at(3)])  # systemd killed this run before it wrote a line
    total, remembered = failures_in_row(list(reversed(runs)), "run-2", [at(0)], at(4))
    assert (total, remembered) == (3, [at(0)])
    runs.append(record("ok", 5))
    total, remembered = failures_in_row(list(reversed(runs)), "killed", [at(0), at(3)], at(6))
    assert (total, remembered) == (1, [at(6)])


def test_the_row_starts_again_after_a_resume() -> None:
    runs = [record("failed", 1), record("failed", 2), record("failed", 3), record("failed", 4)]
    assert count(runs, "run-4") == 4
    assert count(runs, "run-4", resumed=at(3)) == 1
    assert count(runs, "killed", unrecorded=[at(2)], resumed=at(3)) == 2  # run-4 and this one


def test_without_an_invocation_id_the_newest_failing_line_is_this_run() -> None:
    assert count([record("failed", 1), record("failed", 2)], "") == 2
    assert count([record("ok", 1)], "") == 1


# --- the handler --------------------------------------------------------------------------------


def tools(tmp_path: Path, systemctl_exit: int = 0) -> str:
    """A PATH with stand-ins for journalctl and systemctl (which logs its arguments)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "journalctl": "echo 'the last line'",
        "systemctl": f'echo "$@" >> {tmp_path / "systemctl.args"}\n'
        + ("echo 'Failed to disable unit: Access denied' >&2\n" if systemctl_exit else "")
        + f"exit {systemctl_exit}",
    }
    for name, script in scripts.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{script}\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def systemctl_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "systemctl.args"
    return log.read_text().splitlines() if log.exists() else []


class Handler:
    """Failures of reminder-check, each with its run line (or none) and a handler run."""

    def __init__(self, tmp_path: Path, limit: int = 3, **spec: Any) -> None:
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=True)
        failure = real_spec("bruba/specs/failure.json")
        pausing = {JOB: {"after": limit, "timers": [TIMER, PREFLIGHT]}}
        failure.update(state_dir=str(self.state), pause_after=pausing, **spec)
        self.spec = write_spec(tmp_path, failure, "failure.json")
        self.minute = 0
        self.path = tools(tmp_path)

    def run(self, result: str = "failed", *, recorded: bool = True) -> Any:
        self.minute += 1
        invocation = f"{self.minute:032x}"
        if recorded:
            line = record(result, self.minute, invocation)
            with open(self.state / "runs.jsonl", "a") as handle:
                handle.write(json.dumps(line) + "\n")
        if result == "ok":
            return None
        env = {
            "MONITOR_SERVICE_RESULT": "exit-code",
            "MONITOR_EXIT_CODE": "exited",
            "MONITOR_EXIT_STATUS": "1",
            "MONITOR_INVOCATION_ID": invocation,
            "MONITOR_UNIT": UNIT,
            "VIGIL_NOW": (at(self.minute) + timedelta(seconds=5)).isoformat(),
            "PATH": self.path,
        }
        done = run_runner("failure", self.spec, UNIT, env=runner_env(**env))
        assert done.returncode == 0, done.stderr
        return done

    def alerts(self) -> list[dict[str, Any]]:
        return [a for a in inbox(self.state) if a.get("job") == JOB]

    def record(self) -> dict[str, Any]:
        return json.loads((self.state / "state" / "pauses.json").read_text())


def test_the_third_failure_in_a_row_pauses_with_one_alert(tmp_path: Path) -> None:
    handler = Handler(tmp_path)
    handler.run()
    handler.run()
    assert systemctl_calls(tmp_path) == []
    assert [a["message"] for a in handler.alerts()] == [
        "bruba-reminder-check failed (exit-code, status 1): failed at minute 1 "
        "(failure 1 in a row; paused at 3)",
        "bruba-reminder-check failed (exit-code, status 1): failed at minute 2 "
        "(failure 2 in a row; paused at 3)",
    ]
    handler.run()
    assert systemctl_calls(tmp_path) == [
        f"--user --no-ask-password disable --now {TIMER} {PREFLIGHT}"
    ]
    *_, pause = handler.alerts()
    assert len(handler.alerts()) == 3  # the pause alert replaces the third failure alert
    assert pause["kind"] == "paused" and pause["urgent"] is True
    assert pause["message"] == (
        "reminder-check paused after 3 failures in a row: failed at minute 3; "
        "`vigil enable reminder-check` resumes"
    )
    assert pause["journal"] == ["the last line"]
    assert handler.record() == {
        "version": 1,
        "jobs": {
            JOB: {
                "paused": {
                    "since": "2026-03-08T07:03:05Z",
                    "failures": 3,
                    "reason": "failed at minute 3",
                }
            }
        },
    }

    # A run started by hand while paused fails: no alert, the timer is stopped again.
    fourth = handler.run()
    assert len(handler.alerts()) == 3
    assert "reminder-check is paused since 2026-03-08T07:03:05Z: not alerted again" in (
        fourth.stderr
    )
    assert len(systemctl_calls(tmp_path)) == 2
    assert handler.record()["jobs"][JOB]["paused"]["failures"] == 3


def test_successes_in_between_reset_the_count(tmp_path: Path) -> None:
    handler = Handler(tmp_path, limit=2)
    handler.run()
    handler.run("ok")
    handler.run("timeout")
    handler.run("ok")
    handler.run("budget")
    assert systemctl_calls(tmp_path) == []
    assert all("(failure 1 in a row; paused at 2)" in a["message"] for a in handler.alerts())
    handler.run("skipped-after")
    assert "paused after 2 failures in a row" in handler.alerts()[-1]["message"]
    assert len(systemctl_calls(tmp_path)) == 1


def test_runs_systemd_killed_without_a_line_count_too(tmp_path: Path) -> None:
    handler = Handler(tmp_path)
    handler.run(recorded=False)
    assert handler.record()["jobs"][JOB] == {"unrecorded": ["2026-03-08T07:01:05.000Z"]}
    handler.run()
    handler.run(recorded=False)
    assert (
        "paused after 3 failures in a row: exit-code, status 1;"
        in (handler.alerts()[-1]["message"])
    )
    assert "unrecorded" not in handler.record()["jobs"][JOB]


def test_a_timer_that_cannot_be_stopped_is_not_recorded_as_paused(tmp_path: Path) -> None:
    handler = Handler(tmp_path, limit=1)
    handler.path = tools(tmp_path, systemctl_exit=1)
    handler.run()
    [alert] = handler.alerts()
    assert alert["kind"] == "failure"
    assert alert["message"].endswith(
        "(1 failure in a row, pause_after 1; stopping its timer failed: "
        "Failed to disable unit: Access denied)"
    )
    assert not (tmp_path / "state" / "state" / "pauses.json").exists()
    handler.path = tools(tmp_path)
    handler.run()  # the next failure tries again
    assert handler.alerts()[-1]["kind"] == "paused"


def test_system_scope_stops_the_system_managers_timer(tmp_path: Path) -> None:
    handler = Handler(tmp_path, limit=1, scope="system")
    handler.run()
    assert systemctl_calls(tmp_path) == [
        f"--system --no-ask-password disable --now {TIMER} {PREFLIGHT}"
    ]
    assert handler.alerts()[-1]["message"].endswith(
        "`vigil enable reminder-check --system` resumes"
    )


def test_other_jobs_and_units_are_never_paused(tmp_path: Path) -> None:
    handler = Handler(tmp_path, limit=1)
    handler.spec.write_text(handler.spec.read_text().replace(JOB, "other-job"))
    handler.run()
    [alert] = handler.alerts()
    assert alert["message"] == (
        "bruba-reminder-check failed (exit-code, status 1): failed at minute 1"
    )
    assert systemctl_calls(tmp_path) == []
    assert not (tmp_path / "state" / "state").exists()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            {"version": 2, "jobs": {JOB: {"paused": {"since": "2026-03-01T00:00:00Z"}}}},
            "is version 2; this vigil reads version 1; the jobs it paused are no longer known "
            "to be paused (`vigil apply` starts their timers again)",
        ),
        (
            {"version": 1, "jobs": {JOB: {"paused": {"since": 5, "failures": "three"}}}},
            "has 1 entry of another shape (reminder-check: `paused`: `since` is int)",
        ),
    ],
)
def test_a_pause_record_of_unknown_shape_is_set_aside_loudly(
    tmp_path: Path, content: dict[str, Any], said: str
) -> None:
    handler = Handler(tmp_path, limit=2)
    (handler.state / "state").mkdir()
    (handler.state / "state" / "pauses.json").write_text(json.dumps(content))
    handler.run()
    [aside] = [a["message"] for a in inbox(handler.state) if a.get("kind") == "state-rejected"]
    assert aside.startswith(f"vigil set aside state/pauses.json {said}")
    [kept] = (handler.state / "state" / "rejected").glob("pauses.json-*[0-9Z]")
    assert json.loads(kept.read_text()) == content
    # The failure is alerted and counted all the same, and the next one pauses the job.
    assert "(failure 1 in a row; paused at 2)" in handler.alerts()[-1]["message"]
    handler.run()
    assert handler.alerts()[-1]["kind"] == "paused"


def test_a_state_directory_that_takes_nothing_still_alerts(tmp_path: Path) -> None:
    handler = Handler(tmp_path)
    (handler.state / "state").mkdir()
    (handler.state / "state" / "pauses.json.lock").mkdir()  # cannot be opened as a lock file
    handler.run()
    [alert] = handler.alerts()
    assert "(not counted towards pause_after: " in alert["message"]


def test_a_resume_forgets_the_pause_and_starts_the_row_afresh(tmp_path: Path) -> None:
    handler = Handler(tmp_path, limit=2)
    handler.run()
    handler.run()
    state = str(handler.state)
    assert set(paused_jobs(state, at(10))) == {JOB}
    pause = clear_pause(state, JOB, at(10))
    assert pause is not None and pause["failures"] == 2
    assert paused_jobs(state, at(10)) == {}
    assert clear_pause(state, "never-paused", at(10)) is None
    handler.minute = 10
    handler.run()
    assert "(failure 1 in a row; paused at 2)" in handler.alerts()[-1]["message"]


@pytest.mark.parametrize("limit", [None, 3])
def test_the_spec_carries_each_jobs_limit(tmp_path: Path, limit: int | None) -> None:
    from compiler.generate.specs import failure_spec
    from compiler.language.validate import load_config

    config = tmp_path / "vigil.yaml"
    release = f"release: {{pause_after: {limit}}}\n" if limit else ""
    config.write_text(
        "name: p\njobs:\n"
        "  own: {schedule: '@daily', run: 'true', pause_after: 5, check: 'true', preflight: 5m}\n"
        "  plain: {schedule: '@daily', run: 'true'}\n"
        "channels: {sink: {file: /tmp/x.jsonl}}\ncoordinator: {deliver_to: [sink]}\n" + release
    )
    spec = failure_spec(load_config(config).config, system=False)
    own = {"after": 5, "timers": ["p-own.timer", "p-preflight-own.timer"]}
    plain = {"after": 3, "timers": ["p-plain.timer"]}
    assert spec["pause_after"] == ({"own": own, "plain": plain} if limit else {"own": own})


# --- many runs against a reference model --------------------------------------------------------


@pytest.mark.parametrize("seed", range(sized(5, 50)))
def test_long_sequences_agree_with_a_reference_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Random runs of one job (ok, failing with or without a line, missed firings) and resumes:
    the handler's verdict after each failure is the one a plain counter gives."""
    rng = random.Random(seed)
    monkeypatch.setenv("PATH", tools(tmp_path))
    state = tmp_path / "state"
    state.mkdir()
    limit = rng.randint(1, 4)
    row, paused = 0, False  # the reference model
    moment = T0
    for step in range(200):
        moment += timedelta(minutes=rng.randint(1, 90))
        event = rng.choice(["ok", "failed", "failed", "killed", "missed", "resume"])
        if event == "resume":  # `vigil enable`: ends a pause and its row, else changes nothing
            assert (clear_pause(str(state), JOB, moment) is not None) is paused
            row, paused = (0, False) if paused else (row, paused)
            continue
        invocation = f"{seed}-{step}"
        if event != "killed":
            line = {
                "job": JOB,
                "kind": "job",
                "invocation_id": invocation,
                "end": iso(moment, "milliseconds"),
                "result": "failed" if event == "failed" else event,
            }
            with open(state / "runs.jsonl", "a") as handle:
                handle.write(json.dumps(line) + "\n")
        if event in ("ok", "missed"):
            row = 0 if event == "ok" else row
            continue
        outcome = judge_failure(
            str(state),
            "user",
            JOB,
            [TIMER],
            limit=limit,
            invocation_id=invocation,
            reason="r",
            now=moment + timedelta(seconds=1),
        )
        if paused:
            expected = Verdict.ALREADY_PAUSED
        else:
            row += 1
            expected = Verdict.PAUSED if row >= limit else Verdict.COUNTED
            paused = expected is Verdict.PAUSED
            assert outcome.count == row, f"step {step}"
        assert outcome.verdict is expected, f"step {step}: {event}"
    assert set(paused_jobs(str(state), moment)) == ({JOB} if paused else set())

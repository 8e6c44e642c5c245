"""Chains: a step runs only after its predecessor succeeded in the predecessor's own current
cycle (since its latest scheduled firing, systemd's, in its zone); a predecessor still running
is waited for, then reported as running, never as failed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.runner_support import (
    RunnerCall,
    real_spec,
    run_runner,
    runner_env,
    runner_in_process,
    runs,
    write_spec,
)

__all__ = ["runner_in_process"]

PREDECESSOR = "nightly-reset-prep"  # daily at 03:55 in New York


def chain_spec(tmp_path: Path, **overrides: Any) -> Path:
    """The compiled nightly-reset-execute step (after nightly-reset-prep)."""
    spec = real_spec("bruba/specs/nightly-reset-execute.json")
    marker = tmp_path / "ran"
    spec.update(state_dir=str(tmp_path / "state"), command={"argv": ["touch", str(marker)]})
    spec.update(overrides)
    assert spec["after"]["job"] == PREDECESSOR
    assert spec["after"]["calendar"] == {
        "on_calendar": ["*-*-* 03:55:00"],
        "timezone": "America/New_York",
    }
    return write_spec(tmp_path, spec)


def seed(tmp_path: Path, result: str, start: str, job: str = PREDECESSOR) -> None:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    record = {"job": job, "kind": "job", "config": "bruba", "start": start, "result": result}
    with (state / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def run_step(tmp_path: Path, now: str, **overrides: Any) -> subprocess.CompletedProcess[str]:
    return run_runner("job", chain_spec(tmp_path, **overrides), env=runner_env(VIGIL_NOW=now))


# An ordinary Tuesday: the predecessor fired at 03:55 EDT (07:55 UTC).
TUESDAY = "2026-03-10T08:00:00Z"
# Spring forward: Sunday's 03:55 EDT is 07:55 UTC, Saturday's 03:55 EST was 08:55 UTC, only
# 23 hours earlier, so Saturday's success is less than a day old and still not this cycle's.
DST_SUNDAY = "2026-03-08T08:00:00Z"
# Fall back: Sunday's 03:55 EST is 08:55 UTC, 25 hours after Saturday's 03:55 EDT.
FALL_SUNDAY = "2026-11-01T09:00:00Z"


@pytest.mark.parametrize(
    ("now", "history", "why"),
    [
        (TUESDAY, [("failed", "2026-03-10T06:00:00Z"), ("ok", "2026-03-10T07:55:20Z")], None),
        (TUESDAY, [("ok", "2026-03-09T07:55:20Z")], "has not succeeded since its scheduled run"),
        (TUESDAY, [("ok", "2026-03-10T07:50:00Z")], "at 2026-03-10T07:55:00Z"),
        (DST_SUNDAY, [("ok", "2026-03-07T08:55:20Z")], "has not succeeded since"),
        (DST_SUNDAY, [("ok", "2026-03-08T07:55:20Z")], None),
        (FALL_SUNDAY, [("ok", "2026-11-01T08:55:30Z")], None),
        (FALL_SUNDAY, [("ok", "2026-10-31T07:56:00Z")], "has not succeeded since"),
        (TUESDAY, [("ok", "2026-03-10T07:56:00Z"), ("failed", "2026-03-10T07:58:00Z")], "did not"),
        (TUESDAY, [], "has no recorded run"),
        (TUESDAY, [("timeout", "2026-03-10T07:56:00Z")], "was timeout"),
    ],
)
def test_runs_only_after_a_success_in_the_predecessors_cycle(
    tmp_path: Path, now: str, history: list[tuple[str, str]], why: str | None
) -> None:
    seed(tmp_path, "ok", now, job="someone-else")
    for result, start in history:
        seed(tmp_path, result, start)
    result = run_step(tmp_path, now)
    if why is None:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "ran").exists()
        return
    assert result.returncode == 5, result.stderr
    assert why in result.stderr
    assert not (tmp_path / "ran").exists(), "the command ran although the chain was broken"
    record = runs(tmp_path / "state")[-1]
    assert (record["job"], record["result"], record["exit_status"]) == (
        "nightly-reset-execute",
        "skipped-after",
        5,
    )
    assert why in record["reason"]
    assert record["command_exit"] is None


def running_marker(tmp_path: Path, pid: int, start: str) -> None:
    directory = tmp_path / "state" / "running"
    directory.mkdir(parents=True, exist_ok=True)
    marker = {"job": PREDECESSOR, "pid": pid, "start": start}
    (directory / f"{PREDECESSOR}.json").write_text(json.dumps(marker))


def test_a_predecessor_still_running_is_reported_as_running_not_failed(tmp_path: Path) -> None:
    """Yesterday's success, today's run in progress: the step waits (its timeout), then says
    the predecessor is running."""
    seed(tmp_path, "ok", "2026-03-09T07:55:20Z")
    with subprocess.Popen(["sleep", "30"]) as predecessor:
        running_marker(tmp_path, predecessor.pid, "2026-03-10T07:55:10.000Z")
        began = time.monotonic()
        result = run_step(tmp_path, TUESDAY, timeout=2)
        waited = time.monotonic() - began
        predecessor.kill()
    assert result.returncode == 10, result.stderr
    assert waited >= 2
    assert not (tmp_path / "ran").exists()
    record = runs(tmp_path / "state")[-1]
    assert record["result"] == "after-running"
    assert record["reason"] == (
        f"not run: predecessor {PREDECESSOR} is still running (started 2026-03-10T07:55:10.000Z)"
    )


def test_the_step_waits_for_a_predecessor_that_finishes(tmp_path: Path) -> None:
    seed(tmp_path, "ok", "2026-03-10T07:55:20Z")
    # Not our child: something else reaps it once it ends, as systemd does a real run.
    orphan = subprocess.run(
        ["sh", "-c", "sleep 1.5 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    running_marker(tmp_path, int(orphan.stdout), "2026-03-10T07:55:10.000Z")
    result = run_step(tmp_path, TUESDAY, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"waiting for {PREDECESSOR}" in result.stderr
    assert (tmp_path / "ran").exists()


def test_a_marker_left_by_a_killed_run_is_ignored(tmp_path: Path) -> None:
    seed(tmp_path, "ok", "2026-03-10T07:55:20Z")
    dead = subprocess.Popen(["true"])
    dead.wait()
    running_marker(tmp_path, dead.pid, "2026-03-10T07:55:10.000Z")
    began = time.monotonic()
    assert run_step(tmp_path, TUESDAY, timeout=30).returncode == 0
    assert time.monotonic() - began < 10


def test_a_run_marks_itself_running_until_it_ends(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = real_spec("bruba/specs/nightly-reset-prep.json")
    seen = tmp_path / "seen"
    command = f"cat {state}/running/{PREDECESSOR}.json > {seen}"
    spec.update(state_dir=str(state), command={"shell": command})
    result = run_runner("job", write_spec(tmp_path, spec), env=runner_env(VIGIL_NOW=TUESDAY))
    assert result.returncode == 0, result.stderr
    marker = json.loads(seen.read_text())
    assert marker["start"] == "2026-03-10T08:00:00.000Z"
    assert marker["pid"] != os.getpid()
    assert not (state / "running" / f"{PREDECESSOR}.json").exists()
    assert runs(state)[-1]["start"] == "2026-03-10T08:00:00.000Z"
    assert datetime.fromisoformat(runs(state)[-1]["end"]) - datetime(
        2026, 3, 10, 8, tzinfo=UTC
    ) < timedelta(seconds=30)


def test_a_run_is_recorded_before_its_marker_goes(
    tmp_path: Path, runner_in_process: RunnerCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that polls between the two must not find neither marker nor record (and judge
    yesterday's run): runs.jsonl has the line when the marker is removed."""
    import runner.job
    from runner.running import mark_ended

    state = tmp_path / "state"
    seen: list[list[dict[str, Any]]] = []

    def recorded_then_ended(state_dir: str, job: str) -> None:
        seen.append(runs(state))
        assert (state / "running" / f"{PREDECESSOR}.json").exists()
        mark_ended(state_dir, job)

    monkeypatch.setattr(runner.job, "mark_ended", recorded_then_ended)
    spec = real_spec("bruba/specs/nightly-reset-prep.json")
    spec.update(state_dir=str(state), command={"argv": ["true"]})
    result = runner_in_process("job", write_spec(tmp_path, spec), VIGIL_NOW=TUESDAY)
    assert result.returncode == 0, result.stderr
    assert [[(run["job"], run["result"]) for run in lines] for lines in seen] == [
        [(PREDECESSOR, "ok")]
    ]
    assert not (state / "running" / f"{PREDECESSOR}.json").exists()

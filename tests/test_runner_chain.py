"""Chains: a step runs only after its predecessor succeeded within the cycle's window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.runner_support import real_spec, run_runner, runs, write_spec


def chain_spec(tmp_path: Path) -> Path:
    """The compiled nightly-reset-execute step (after nightly-reset-prep, window 1 day)."""
    spec = real_spec("bruba/specs/nightly-reset-execute.json")
    marker = tmp_path / "ran"
    spec.update(state_dir=str(tmp_path / "state"), command={"argv": ["touch", str(marker)]})
    assert spec["after"]["job"] == "nightly-reset-prep"
    assert spec["after"]["window"] == 86400
    return write_spec(tmp_path, spec)


def seed(tmp_path: Path, result: str, age: timedelta, job: str = "nightly-reset-prep") -> None:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    start = (datetime.now(UTC) - age).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = {"job": job, "kind": "job", "config": "bruba", "start": start, "result": result}
    with (state / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def test_runs_after_a_recent_success(tmp_path: Path) -> None:
    seed(tmp_path, "failed", timedelta(hours=2))
    seed(tmp_path, "ok", timedelta(minutes=7))
    result = run_runner("job", chain_spec(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ran").exists()
    assert runs(tmp_path / "state")[-1]["result"] == "ok"


@pytest.mark.parametrize(
    ("history", "why"),
    [
        ([("ok", timedelta(hours=3)), ("failed", timedelta(minutes=7))], "did not succeed"),
        ([("ok", timedelta(hours=24, minutes=7))], "longer than this cycle's window of 24h"),
        ([("ok", timedelta(minutes=1, hours=1))], None),
        ([], "has no recorded run"),
        ([("timeout", timedelta(minutes=7))], "was timeout"),
    ],
)
def test_skips_unless_the_predecessor_succeeded_in_this_cycle(
    tmp_path: Path, history: list[tuple[str, timedelta]], why: str | None
) -> None:
    seed(tmp_path, "ok", timedelta(minutes=1), job="someone-else")
    for result, age in history:
        seed(tmp_path, result, age)
    result = run_runner("job", chain_spec(tmp_path))
    if why is None:
        assert result.returncode == 0
        return
    assert result.returncode == 5
    assert why in result.stderr
    assert "nightly-reset-prep" in result.stderr
    assert not (tmp_path / "ran").exists(), "the command ran although the chain was broken"
    record = runs(tmp_path / "state")[-1]
    assert (record["job"], record["result"], record["exit_status"]) == (
        "nightly-reset-execute",
        "skipped-after",
        5,
    )
    assert why in record["reason"]
    assert record["command_exit"] is None

"""What a failure alert says after a change (runner.release), from generation metadata and
runs.jsonl as the compiler and the runner write them."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner.contract import GENERATION_META
from runner.history import last_run
from runner.release import AfterChange, after_change, of_spec

T0 = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def generation(data: Path, number: int, created: datetime, **meta: object) -> Path:
    directory = data / "generations" / str(number)
    (directory / "specs").mkdir(parents=True)
    (directory / "specs/failure.json").write_text("{}")
    record = {"created": created.isoformat(timespec="milliseconds"), **meta}
    (directory / GENERATION_META).write_text(json.dumps(record))
    return directory


def judge(
    generation: Path, state: Path, job: str = "digest", *, auto: bool = True, recorded: bool = True
) -> AfterChange | None:
    """What the failure handler of `generation` says of `job`'s failed run: its newest record
    (or none: a run systemd killed before it wrote one)."""
    failed = last_run(str(state), job) if recorded else None
    spec = of_spec(str(generation / "specs/failure.json"))
    return after_change(spec, str(state), job, auto, failed)


def run(state: Path, job: str, start: datetime, result: str) -> None:
    line = {"job": job, "kind": "job", "start": start.isoformat(), "result": result}
    with (state / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    data, state = tmp_path / "data", tmp_path / "state"
    state.mkdir()
    generation(data, 6, T0, previous=5, jobs_changed={"digest": "new"})
    current = generation(
        data,
        7,
        T0 + timedelta(days=30),
        previous=6,
        jobs_changed={"digest": "schedule, run changed"},
    )
    for day in range(30):
        run(state, "digest", T0 + timedelta(days=day, hours=1), "ok")
    run(state, "digest", T0 + timedelta(days=30, hours=1), "failed")
    return current, state


def test_the_first_failure_after_a_change_names_both_generations(setup) -> None:
    current, state = setup
    note = judge(current, state, auto=False)
    assert note is not None and note.rollback_to is None
    assert note.words == (
        "first run since generation 7 (schedule, run changed); generation 6 ran it 30 times "
        "without failure; `vigil rollback 6`"
    )


def test_auto_rollback_asks_for_the_previous_generation(setup) -> None:
    current, state = setup
    note = judge(current, state)
    assert note is not None and note.rollback_to == 6
    assert "`vigil rollback" not in note.words
    # A run that left no record (killed by systemd) may have been generation 6's: no rollback.
    unknown = judge(current, state, recorded=False)
    assert unknown is not None and unknown.rollback_to is None
    assert unknown.words.endswith("`vigil rollback 6`")


def test_a_later_failure_names_how_many_runs_failed(setup) -> None:
    current, state = setup
    run(state, "digest", T0 + timedelta(days=31, hours=1), "timeout")
    run(state, "digest", T0 + timedelta(days=31, hours=2), "missed")
    note = judge(current, state, auto=False)
    assert note is not None and note.words.startswith("2 runs, none succeeded, since generation 7")


def test_nothing_once_the_job_worked_after_the_change(setup) -> None:
    current, state = setup
    run(state, "digest", T0 + timedelta(days=31, hours=1), "ok")
    run(state, "digest", T0 + timedelta(days=32, hours=1), "failed")
    assert judge(current, state) is None


def test_nothing_for_a_job_the_generation_did_not_change(setup) -> None:
    current, state = setup
    run(state, "other", T0 + timedelta(days=30, hours=2), "failed")
    assert judge(current, state, "other") is None


def test_a_rollback_generation_never_rolls_back(tmp_path: Path) -> None:
    data, state = tmp_path / "data", tmp_path / "state"
    state.mkdir()
    generation(data, 1, T0)
    generation(data, 2, T0 + timedelta(days=1), previous=1, jobs_changed={"digest": "run changed"})
    third = generation(
        data,
        3,
        T0 + timedelta(days=2),
        previous=2,
        reason="auto-rollback to 1: digest failed",
        jobs_changed={"digest": "run changed"},
    )
    run(state, "digest", T0 + timedelta(days=1, hours=1), "failed")
    run(state, "digest", T0 + timedelta(days=2, hours=1), "failed")
    note = judge(third, state)
    assert note is not None and note.rollback_to is None
    assert note.words == (
        "first run since generation 3 (run changed); generation 2 ran it once; 1 failed "
        "(this generation is a rollback: not rolled back again)"
    )


def test_no_rollback_without_the_previous_generation(setup) -> None:
    current, state = setup
    shutil.rmtree(current.parent / "6")
    note = judge(current, state)
    assert note is not None and note.rollback_to is None
    assert note.words == "first run since generation 7 (schedule, run changed)"


def test_nothing_for_the_first_generation(tmp_path: Path) -> None:
    data, state = tmp_path / "data", tmp_path / "state"
    state.mkdir()
    first = generation(data, 1, T0, jobs_changed={"digest": "new"})
    run(state, "digest", T0 + timedelta(hours=1), "failed")
    assert judge(first, state) is None

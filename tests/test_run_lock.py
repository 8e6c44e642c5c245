"""One run of a job at a time: a try (its own transient unit) and a run of the job's timer
share the job's run lock, so the second waits for the first (runner.running)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from runner.running import one_run_at_a_time

HOLD = """
import sys, time
from runner.running import one_run_at_a_time
with one_run_at_a_time(sys.argv[1], "digest", waiting=lambda h: print("waiting", h, flush=True)):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def test_a_second_run_waits_for_the_first(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "1.0"], stdout=subprocess.PIPE, text=True
    )
    assert first.stdout is not None and first.stdout.readline() == "holding\n"
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-c", HOLD, str(tmp_path), "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert second.stdout.splitlines()[0] == "waiting a try"
    assert second.stdout.splitlines()[1:] == ["holding", "released"]
    assert time.monotonic() - started > 0.5
    first.wait(timeout=30)


def test_other_jobs_do_not_wait(tmp_path: Path) -> None:
    said: list[str] = []
    with (
        one_run_at_a_time(str(tmp_path), "digest", waiting=said.append),
        one_run_at_a_time(str(tmp_path), "other", waiting=said.append),
    ):
        pass
    assert said == []


def test_a_state_directory_without_room_for_the_lock_runs_unlocked(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with one_run_at_a_time(str(blocked), "digest", waiting=lambda _: None):
        pass

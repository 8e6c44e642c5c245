"""Chains under a real user manager: a step's service is ordered after its predecessor's, so
when a Persistent= catch-up queues both at once, systemd starts the step only once the
predecessor has finished (the job services are Type=oneshot)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: ch
state_dir: {state}
jobs:
  prep:
    schedule: "0 0 1 1 *"
    run: "sleep 1"
    output: log
    timeout: 1m
  execute:
    schedule: "0 0 1 1 *"
    after: prep
    run: "echo executed"
    output: log
    timeout: 1m
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""

# What a catch-up after boot does: both timers elapse and queue their services' start jobs
# before the manager runs either. A target that wants both (the step named first) queues them
# in one transaction, as that does.
CATCH_UP = """\
[Unit]
Description=both chain services queued at once, as a Persistent= catch-up queues them
Wants=ch-execute.service ch-prep.service
"""

TRIALS = 5


def runs(state: Path) -> list[dict]:
    path = state / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_step_queued_with_its_predecessor_starts_after_it(vigil, vigil_manager, tmp_path):
    manager = vigil_manager
    state = apply_config(vigil, tmp_path, "ch", CONFIG)
    manager.systemctl("stop", "ch-coordinator.path", "ch-coordinator.timer")
    shown = manager.show("ch-execute.service", "After")["After"].split()
    assert "ch-prep.service" in shown
    manager.write_unit("ch-catch-up.target", CATCH_UP)
    manager.systemctl("daemon-reload")
    for trial in range(TRIALS):
        (state / "runs.jsonl").unlink(missing_ok=True)
        shutil.rmtree(state / "running", ignore_errors=True)
        manager.systemctl("start", "ch-catch-up.target")
        both = manager.wait_for(
            lambda: len(runs(state)) == 2 and runs(state),
            timeout=30,
            what=f"both chain runs recorded (trial {trial})",
        )
        by_job = {run["job"]: run for run in both}
        assert by_job["execute"]["result"] == "ok", (trial, by_job["execute"]["reason"])
        prep_end = datetime.fromisoformat(by_job["prep"]["end"])
        assert datetime.fromisoformat(by_job["execute"]["start"]) >= prep_end, (trial, both)
        manager.systemctl("stop", "ch-catch-up.target")

"""Did it run? under a real systemd user manager: the manager (and everything it runs) is frozen
across two firings of a job that fires every 10 s, as a machine asleep would be. On waking,
systemd fires the elapsed timer once; the coordinator's heartbeat (its own timer, asking
`systemctl show` from its sandbox) records both skipped firings as missed, once, and alerts
once to a file channel."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import apply_config
from tests.missed_support import missed
from tests.systemd_manager import UserManager

pytestmark = pytest.mark.systemd

PERIOD = 10
"""Seconds between the job's firings; its grace is half of it, its accuracy 1 s."""
WINDOW = 1 + PERIOD // 2
CONFIG = """\
name: mr
timezone: UTC
state_dir: {state}
jobs:
  tick:
    schedule: "*:*:0/10"
    run: "true"
    accuracy: 1s
    catch_up: false
channels:
  sink: {{file: {state}/sink.jsonl}}
coordinator:
  deliver_to: [sink]
  heartbeat: 2s
"""


def freezer(manager: UserManager) -> Path:
    uid = manager.account.uid
    path = manager.cgroup / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service"
    if not (path / "cgroup.freeze").exists():
        pytest.skip("no cgroup v2 freezer for the manager's cgroup")
    return path


def set_frozen(cgroup: Path, frozen: bool) -> None:
    (cgroup / "cgroup.freeze").write_text("1" if frozen else "0")
    deadline = time.monotonic() + 5
    while f"frozen {int(frozen)}" not in (cgroup / "cgroup.events").read_text():
        assert time.monotonic() < deadline, "the freezer did not settle"
        time.sleep(0.01)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def starts(ran: Path, job: str) -> list[datetime]:
    """When each recorded run of `job` started."""
    records = [json.loads(line) for line in ran.read_text().splitlines()]
    return [
        datetime.fromisoformat(r["start"]) for r in records
        if r.get("job") == job and r.get("result") != "missed"
    ]  # fmt: skip


def alerts(state: Path) -> list[str]:
    path = state / "sink.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [text for line in lines for text in json.loads(line)["body"].splitlines()]


def test_firings_the_frozen_manager_skipped_are_missed_once(vigil, vigil_manager, tmp_path) -> None:
    manager: UserManager = vigil_manager
    cgroup = freezer(manager)
    state = apply_config(vigil, tmp_path, "mr", CONFIG)
    ran = state / "runs.jsonl"
    manager.wait_for(lambda: ran.exists() and '"job":"tick"' in ran.read_text(), timeout=15)
    # Frozen 2 s after a firing until 7.5 s after the second next one: both elapse frozen; the
    # one run on waking is outside either firing's window (1 s + 5 s), so it is a catch-up.
    first = (int(time.time()) // PERIOD + 1) * PERIOD
    sleep_until(first + 2)
    skipped = [first + PERIOD, first + 2 * PERIOD]
    set_frozen(cgroup, True)
    try:
        sleep_until(skipped[-1] + WINDOW + 1.5)
    finally:
        set_frozen(cgroup, False)
    expected = [datetime.fromtimestamp(moment, UTC) for moment in skipped]

    def alerted() -> list[str]:
        return [text for text in alerts(state) if "tick did not run" in text]

    [text] = manager.wait_for(alerted, timeout=20, what="the missed-run alert")
    assert missed(state, "tick") == expected
    # On waking, systemd fires the job's timer and the heartbeat's at once, in no set order:
    # a heartbeat that starts before the catch-up run (no line, no marker yet) says it has
    # not run since; either way it is said once, and the catch-up run is recorded.
    said = text.removeprefix("• tick did not run at ").split("; ", 1)[1]
    assert "(nor at the next firing)" in text, text
    assert said.startswith(("caught up at", "it has not run since")), text
    manager.wait_for(
        lambda: any(start > expected[-1] for start in starts(ran, "tick")),
        timeout=10,
        what="the run on waking",
    )
    # Later heartbeats record and alert nothing again.
    checked = json.loads((state / "state" / "firings.json").read_text())["checked"]
    manager.wait_for(
        lambda: json.loads((state / "state" / "firings.json").read_text())["checked"] != checked,
        timeout=10,
        what="another heartbeat",
    )
    assert missed(state, "tick") == expected
    assert len(alerted()) == 1
    assert datetime.now(UTC) - expected[0] < timedelta(minutes=1)

"""The warm coordinator under a real systemd user manager: the run a finding started stays
`linger` seconds and handles the next findings itself (one service run, several passes, each with
its journal line and runs.jsonl record), then exits cleanly; a start by hand and `vigil run
coordinator` make a pass and neither linger nor wait for a lingering run; `systemctl stop` ends
a lingering run at once; a generation applied meanwhile handles the next finding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import apply_config
from tests.test_coordinator_systemd import coordinator_runs, delivered, drop, finding

pytestmark = pytest.mark.systemd

NAME = "wm"
SERVICE = f"{NAME}-coordinator.service"
CONFIG = """\
name: wm
state_dir: {state}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
  linger: {linger}
  message: {{title: "{title}"}}
  sources:
    probe: {{external: true}}
"""


def install(vigil, tmp_path: Path, linger: str, title: str = "v1 {count}") -> Path:
    return apply_config(vigil, tmp_path, NAME, CONFIG, linger=linger, title=title)


def deliver(manager, state: Path, message: str) -> dict:
    """Rename a finding in; its delivered line."""
    drop(state, f"{message}.json", finding("probe", message))
    return manager.wait_for(
        lambda: next((line for line in delivered(state) if message in line["body"]), None),
        timeout=15,
        what=f"{message} delivered",
    )


def recorded(manager, state: Path, count: int) -> list[dict]:
    """The coordinator's first `count` pass records (a line is written before its record)."""

    def passes() -> list[dict] | None:
        runs = coordinator_runs(state)
        return runs[:count] if len(runs) >= count else None

    return manager.wait_for(passes, what=f"{count} coordinator passes recorded")


def active_state(manager) -> str:
    return manager.show(SERVICE, "ActiveState")["ActiveState"]


def journal(manager) -> str:
    manager.sync_journal()
    return manager.journalctl("--output=cat", "-t", f"{NAME}-coordinator").stdout


def test_findings_while_warm_are_handled_by_the_run_the_first_started(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    manager = vigil_manager
    state = install(vigil, tmp_path, "5s")
    deliver(manager, state, "first")
    assert active_state(manager) == "activating"  # a oneshot still in its run: lingering
    shown = vigil("status", "coordinator", "--json", "--config", tmp_path / f"{NAME}.yaml")
    [row] = json.loads(shown.stdout)
    assert row["note"] == "warm: takes the next finding at once (`linger`)", shown.stderr
    (state / "inbox" / ".half-written.tmp").write_text("{")  # a writer's temp: not a finding
    for message in ("second", "third"):
        time.sleep(0.5)
        deliver(manager, state, message)
    runs = recorded(manager, state, 3)
    assert [run["findings"] for run in runs] == [1, 1, 1]
    assert len({run["invocation_id"] for run in runs}) == 1  # one service run, three passes
    manager.wait_for(lambda: active_state(manager) == "inactive", timeout=15, what="the exit")
    assert manager.show(SERVICE, "Result")["Result"] == "success"
    assert len(coordinator_runs(state)) == 3  # the temp file woke nothing
    manager.wait_for(
        lambda: "2 more passes while warm; exiting: no finding for 5s" in journal(manager),
        what="the run's last line",
    )
    # After an idle period the next finding starts a new run.
    deliver(manager, state, "fourth")
    runs = recorded(manager, state, 4)
    assert runs[3]["invocation_id"] != runs[0]["invocation_id"]
    manager.systemctl("stop", SERVICE)
    assert manager.show(SERVICE, "ActiveState", "Result") == {
        "ActiveState": "inactive",
        "Result": "success",
    }
    manager.wait_for(lambda: "exiting: asked to stop" in journal(manager), what="the stop line")


def test_starts_by_hand_make_one_pass(vigil, vigil_manager, tmp_path: Path) -> None:
    """systemd keeps $TRIGGER_UNIT from the path unit's start for later starts by hand: those
    must still not linger (a blocking `systemctl start` would wait the whole linger)."""
    manager = vigil_manager
    state = install(vigil, tmp_path, "60s")
    deliver(manager, state, "first")
    assert active_state(manager) == "activating"
    # `vigil run coordinator` while it lingers: a pass now, not a wait for the linger's end.
    started = time.monotonic()
    result = vigil("run", "coordinator", "--wait", "--config", tmp_path / f"{NAME}.yaml")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started < 20
    assert active_state(manager) == "inactive"
    # A start by hand: one pass, then the service is done.
    before = len(coordinator_runs(state))
    began = time.monotonic()
    manager.systemctl("start", SERVICE)
    assert time.monotonic() - began < 20
    recorded(manager, state, before + 1)
    assert active_state(manager) == "inactive"
    invocations = {run["invocation_id"] for run in coordinator_runs(state)}
    assert len(invocations) == len(coordinator_runs(state))  # no pass was a warm one


def test_a_generation_applied_while_warm_handles_the_next_finding(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    manager = vigil_manager
    state = install(vigil, tmp_path, "60s", title="v1 {count}")
    assert deliver(manager, state, "first")["title"] == "v1 1"
    assert active_state(manager) == "activating"
    install(vigil, tmp_path, "60s", title="v2 {count}")
    assert active_state(manager) == "activating"  # apply leaves the run; it notices itself
    assert deliver(manager, state, "second")["title"] == "v2 1"
    runs = recorded(manager, state, 2)
    assert runs[0]["invocation_id"] != runs[1]["invocation_id"]
    generations = sorted(
        json.loads(line)["title"] for line in (state / "deliveries.jsonl").read_text().splitlines()
    )
    assert generations == ["v1 1", "v2 1"]
    manager.wait_for(
        lambda: "exiting: another generation is live" in journal(manager), what="why it left"
    )

"""Watches under a real systemd user manager, on real clocks: a deadline watch's own timer fires
a few seconds after install, the coordinator's heartbeat timer (every 2 s here) checks file
watches and repeats, and `vigil watch arm` / `vigil ack` reach the coordinator through the
inbox and the path unit. The last test kills the coordinator in the middle of a delivery."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from tests.systemd_manager import UserManager

pytestmark = pytest.mark.systemd

NAME = "wt"
LEAD = 5
"""Seconds from writing the config to its deadline: room for `vigil apply` and a backup run."""
HEARTBEAT = 2
CONFIG = """\
name: wt
timezone: UTC
state_dir: {state}
jobs:
  backup:
    schedule: "0 0 1 1 *"
    run: "test -e {tmp}/backup-ok || {{ echo 'disk full' >&2; exit 7; }}"
watches:
  backup-done:
    deadline: {{job: backup, at: "*-*-* {at}"}}
  urgent-mail:
    match:
      source: mail
      items: messages
      key: id
      any: [{{field: subject, contains: URGENT}}]
    handoff: pager
    repeat: 2s
  research:
    file: {{path: "{tmp}/results/{{key}}.md", within: 15m}}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
  pager: {{command: ["{tmp}/pager", "{{id}}", "{{message}}"]}}
coordinator:
  deliver_to: [sink]
  heartbeat: {heartbeat}s
  sources:
    mail: {{external: true}}
"""
# A stand-in agent: records each hand-off (message id, then the text on one line); with
# `pager-slow` present it sleeps once (the flag goes first, so the run after a crash is quick).
PAGER = """\
#!/bin/sh
printf '%s %s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')" >> {tmp}/pager.log
if [ -e {tmp}/pager-slow ]; then
    rm -f {tmp}/pager-slow
    touch {tmp}/pager-sleeping
    sleep 30
fi
"""


@dataclass
class Installed:
    manager: UserManager
    state: Path
    tmp: Path
    config: Path
    deadline: datetime


@pytest.fixture
def install(vigil, vigil_manager, tmp_path: Path) -> Callable[[float], Installed]:
    """Install the config with its deadline `lead` seconds from now (UTC, whole seconds)."""
    manager = vigil_manager

    def run(lead: float) -> Installed:
        state = tmp_path / "state"
        pager = tmp_path / "pager"
        pager.write_text(PAGER.format(tmp=tmp_path))
        pager.chmod(0o755)
        deadline = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
        config = tmp_path / "wt.yaml"
        config.write_text(
            CONFIG.format(state=state, tmp=tmp_path, at=f"{deadline:%H:%M:%S}", heartbeat=HEARTBEAT)
        )
        result = vigil("apply", config, "--yes")
        assert result.exit_code == 0, result.stdout + result.stderr
        timer = f"{NAME}-watch-backup-done.timer"
        show = ["systemctl", "--user", "show", timer, "-p", "NextElapseUSecRealtime", "--value"]
        due = manager.run("env", "TZ=UTC", *show).stdout.strip()
        assert due.endswith(f" {deadline:%Y-%m-%d %H:%M:%S} UTC"), (
            f"{timer} is not due at the deadline {deadline} (passed during install?): {due}"
        )
        return Installed(manager, state, tmp_path, config, deadline)

    return run


# -- reading what happened ----------------------------------------------------------------


def drop(state: Path, name: str, finding: dict) -> None:
    """Write a finding beside the inbox and rename it in, as writers do."""
    outside = state / "writer"
    outside.mkdir(exist_ok=True)
    (outside / name).write_text(json.dumps(finding))
    os.rename(outside / name, state / "inbox" / name)


def mail(*messages: tuple[str, str]) -> dict:
    return {
        "source": "mail",
        "timestamp": datetime.now(UTC).isoformat(),
        "messages": [{"id": key, "subject": subject} for key, subject in messages],
    }


def deliveries(state: Path) -> list[dict]:
    path = state / "deliveries.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def lines_about(state: Path, words: str) -> list[str]:
    """Delivered alert lines (one per alert) that contain `words`."""
    return [
        line
        for record in deliveries(state)
        for line in record["body"].splitlines()
        if words in line
    ]


def instances(state: Path, watch: str) -> dict:
    path = state / "state" / f"watch-{watch}.json"
    return json.loads(path.read_text())["instances"] if path.exists() else {}


def coordinator_runs(state: Path) -> int:
    path = state / "runs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(json.loads(line)["kind"] == "coordinator" for line in lines)


def leftovers(state: Path) -> list[str]:
    """Findings not yet handled and messages not yet delivered."""
    return sorted(
        f"{directory}/{entry.name}"
        for directory in ("inbox", "processing", "outbox")
        if (state / directory).exists()
        for entry in (state / directory).iterdir()
        if entry.name.endswith(".json")
    )


def shown(vigil, config: Path, watch: str) -> dict[str, dict]:
    """`vigil watches --json`: the rows of one watch, by key."""
    result = vigil("watches", "-c", config, "--json")
    assert result.exit_code == 0, result.stderr
    return {row["key"]: row for row in json.loads(result.stdout) if row["watch"] == watch}


def settled(setup: Installed, runs: int = 1) -> None:
    """Wait until nothing is pending and `runs` more coordinator runs have ended: everything
    the config's watches were going to say by now has been said."""
    start = coordinator_runs(setup.state)
    setup.manager.wait_for(
        lambda: coordinator_runs(setup.state) >= start + runs and not leftovers(setup.state),
        timeout=HEARTBEAT * runs + 10,
        what=f"{runs} more coordinator run(s) and empty inbox/processing/outbox",
    )


def passed(moment: datetime) -> bool:
    return datetime.now(UTC) >= moment


# -- deadlines ------------------------------------------------------------------------------


def test_a_backup_that_succeeds_before_the_deadline_raises_no_alert(install, vigil) -> None:
    setup = install(LEAD)
    manager, state = setup.manager, setup.state
    (setup.tmp / "backup-ok").touch()
    manager.systemctl("start", f"{NAME}-backup.service")  # a oneshot: returns when it ended
    assert manager.show(f"{NAME}-backup.service", "Result")["Result"] == "success"
    assert not passed(setup.deadline), "the backup should run before the deadline"

    satisfied = manager.wait_for(
        lambda: instances(state, "backup-done"), timeout=LEAD + 15, what="the deadline's result"
    )
    assert passed(setup.deadline)
    [(key, instance)] = satisfied.items()
    assert instance["state"] == "satisfied"
    assert instance["evidence"]["text"].startswith("backup succeeded at ")
    timer = manager.show(f"{NAME}-watch-backup-done.timer", "LastTriggerUSec")
    assert timer["LastTriggerUSec"] not in ("", "n/a"), "the deadline check runs from its timer"
    assert manager.show(f"{NAME}-watch-backup-done.service", "Result")["Result"] == "success"
    settled(setup, runs=2)
    assert lines_about(state, "backup-done") == []
    row = shown(vigil, setup.config, "backup-done")[key]
    assert row["state"] == "satisfied"
    assert row["awaits"].startswith("job backup to succeed by")


@pytest.mark.parametrize("backup", ["fails", "does not run"])
def test_a_backup_that_fails_or_does_not_run_is_alerted_at_the_deadline(
    install, vigil, backup: str
) -> None:
    setup = install(LEAD)
    manager, state = setup.manager, setup.state
    if backup == "fails":
        manager.systemctl("start", f"{NAME}-backup.service", check=False)
        shown_unit = manager.show(f"{NAME}-backup.service", "Result", "ExecMainStatus")
        assert shown_unit == {"Result": "exit-code", "ExecMainStatus": "1"}
        assert not passed(setup.deadline), "the backup should fail before the deadline"
        evidence = "backup failed at "
    else:
        evidence = "backup has never run"

    [line] = manager.wait_for(
        lambda: lines_about(state, "backup-done"), timeout=LEAD + 15, what="the deadline alert"
    )
    assert passed(setup.deadline)
    assert line.startswith("• backup-done: not done by ")
    assert evidence in line
    if backup == "fails":
        assert "(exit 1): command exited with status 7" in line, line

    def delivered() -> dict:
        return {
            k: i for k, i in instances(state, "backup-done").items() if i["state"] == "delivered"
        }

    [(key, instance)] = manager.wait_for(
        delivered, timeout=HEARTBEAT + 10, what="the alert recorded as delivered"
    ).items()
    assert [step["state"] for step in instance["history"]] == ["fired", "delivered"]
    assert evidence in instance["evidence"]["text"]
    assert shown(vigil, setup.config, "backup-done")[key]["state"] == "delivered"
    settled(setup, runs=2)
    assert len(lines_about(state, "backup-done")) == 1  # no repeat configured: said once


# -- match ----------------------------------------------------------------------------------


def test_a_match_watch_fires_on_the_matching_finding_only(install, vigil) -> None:
    setup = install(3600)
    manager, state = setup.manager, setup.state
    drop(state, "mail-1.json", {**mail(("m1", "lunch?")), "message": "1 new mail"})
    manager.wait_for(lambda: lines_about(state, "1 new mail"), timeout=10, what="the plain finding")
    settled(setup)
    assert lines_about(state, "urgent-mail") == []
    assert instances(state, "urgent-mail") == {}

    drop(state, "mail-2.json", mail(("m2", "invoice"), ("m3", "URGENT: site down")))
    first = manager.wait_for(
        lambda: lines_about(state, "urgent-mail"), timeout=10, what="the match alert"
    )[0]
    assert "id=m3" in first and "URGENT: site down" in first and "m2" not in first
    assert set(instances(state, "urgent-mail")) == {"m3"}
    manager.wait_for(
        lambda: shown(vigil, setup.config, "urgent-mail")["m3"]["state"] == "delivered",
        timeout=10,
        what="m3 delivered",
    )
    assert shown(vigil, setup.config, "urgent-mail")["m3"]["handoff"] == "accepted"
    assert "m3" in (setup.tmp / "pager.log").read_text()  # handed to the agent with its id


# -- file watches armed by hand ---------------------------------------------------------------


def test_a_file_watch_armed_by_hand_is_satisfied_in_time_or_expires(install, vigil) -> None:
    setup = install(3600)
    manager, state = setup.manager, setup.state
    for key in ("t1", "t2"):
        result = vigil(
            "watch", "arm", "research", "--key", key, "--within", "3s", "-c", setup.config
        )
        assert result.exit_code == 0, result.stderr
    armed = manager.wait_for(
        lambda: len(instances(state, "research")) == 2 and instances(state, "research"),
        timeout=10,
        what="both instances armed",
    )
    assert {key: i["state"] for key, i in armed.items()} == {"t1": "armed", "t2": "armed"}
    results = setup.tmp / "results"
    results.mkdir()
    (results / ".t1.md").write_text("# t1\nthe answer is 42\n")
    os.rename(results / ".t1.md", results / "t1.md")
    assert datetime.now(UTC) < datetime.fromisoformat(armed["t1"]["deadline"]), "t1 came late"

    def finished() -> dict:
        now = instances(state, "research")
        return now if all(i["state"] != "armed" for i in now.values()) else {}

    done = manager.wait_for(finished, timeout=3 + HEARTBEAT + 10, what="both instances decided")
    # The heartbeat looks for the file; its recorded time may be a heartbeat after the deadline.
    assert done["t1"]["state"] == "satisfied"
    assert done["t1"]["evidence"]["file"] == str(results / "t1.md")
    assert done["t2"]["state"] == "expired"
    assert done["t2"]["at"] >= done["t2"]["deadline"]
    assert "t2.md after 3s" in done["t2"]["evidence"]["text"]
    manager.wait_for(
        lambda: lines_about(state, "research t2: expired"), timeout=10, what="the expiry alert"
    )
    [satisfied] = lines_about(state, "research t1: satisfied")
    assert "the answer is 42" in satisfied
    rows = shown(vigil, setup.config, "research")
    assert rows["t1"]["state"] == "satisfied"
    assert rows["t2"]["state"] in ("expired", "delivered")


# -- repeats and acknowledgement ---------------------------------------------------------------


def test_ack_stops_the_repeats(install, vigil) -> None:
    setup = install(3600)
    manager, state = setup.manager, setup.state
    drop(state, "mail-9.json", mail(("m9", "URGENT: disk failing")))
    repeated = manager.wait_for(
        lambda: len(lines_about(state, "id=m9")) >= 3 and deliveries(state),
        timeout=3 * HEARTBEAT + 10,
        what="the alert and two repeats",
    )
    times = [datetime.fromisoformat(r["delivered"]) for r in repeated if "id=m9" in r["body"]]
    assert all(b - a >= timedelta(seconds=2) for a, b in pairwise(times))

    result = vigil("ack", "urgent-mail", "m9", "-c", setup.config)
    assert result.exit_code == 0, result.stderr
    manager.wait_for(
        lambda: instances(state, "urgent-mail")["m9"]["state"] == "acknowledged",
        timeout=10,
        what="the acknowledgement applied",
    )
    settled(setup)
    said = len(lines_about(state, "id=m9"))
    settled(setup, runs=3)  # three heartbeats later: nothing more
    assert len(lines_about(state, "id=m9")) == said
    assert shown(vigil, setup.config, "urgent-mail")["m9"]["state"] == "acknowledged"


# -- a coordinator killed in the middle of a run ---------------------------------------------


def test_watch_state_survives_a_coordinator_killed_mid_delivery(install, vigil) -> None:
    setup = install(3600)
    manager, state, tmp = setup.manager, setup.state, setup.tmp

    def coordinator() -> dict[str, str]:
        return manager.show(f"{NAME}-coordinator.service", "ActiveState", "Result")

    (tmp / "pager-slow").touch()
    drop(state, "mail-7.json", mail(("m7", "URGENT: payment failed")))
    manager.wait_for(
        lambda: (tmp / "pager-sleeping").exists(), timeout=10, what="the slow hand-off"
    )
    drop(state, "late.json", {"source": "mail", "timestamp": "x", "message": "arrived meanwhile"})
    # Hold the triggers, so the aftermath of the kill can be looked at before the next run.
    manager.systemctl("stop", f"{NAME}-coordinator.path", f"{NAME}-coordinator.timer")
    assert coordinator()["ActiveState"] == "activating"
    manager.systemctl("kill", "-s", "SIGKILL", f"{NAME}-coordinator.service")
    killed = manager.wait_for(
        lambda: coordinator()["ActiveState"] != "activating" and coordinator(),
        timeout=10,
        what="the coordinator to die",
    )
    assert killed["Result"] == "signal"
    # What the crash left: valid JSON state, the alert still owed, the late finding untouched.
    [instance] = instances(state, "urgent-mail").values()
    assert instance["state"] == "fired" and set(instance["messages"]) == {"pager", "sink"}
    assert any(name.startswith("outbox/") for name in leftovers(state))
    assert "inbox/late.json" in leftovers(state)

    manager.systemctl("start", f"{NAME}-coordinator.path", f"{NAME}-coordinator.timer")
    manager.wait_for(
        lambda: instances(state, "urgent-mail")["m7"]["state"] == "delivered",
        timeout=15,
        what="m7 delivered after the restart",
    )
    settled(setup)
    data = json.loads((state / "state" / "watch-urgent-mail.json").read_text())
    assert [step["state"] for step in data["instances"]["m7"]["history"]] == ["fired", "delivered"]
    # m7's code, given before the kill, is its code after it; the late finding and the kill's
    # failure alert have the next two, in the order the restarted runs took them.
    assert lines_about(state, "id=m7")
    assert all(line.endswith(" [r1]") for line in lines_about(state, "id=m7"))
    [late] = lines_about(state, "arrived meanwhile")
    [failed] = manager.wait_for(  # OnFailure= noticed the kill
        lambda: lines_about(state, f"{NAME}-coordinator failed (signal"),
        timeout=10,
        what="the coordinator's failure alert",
    )
    assert late.startswith("• arrived meanwhile [r")
    assert {late[-4:], failed[-4:]} == {"[r2]", "[r3]"}, (late, failed)
    handed = [line.split()[0] for line in (tmp / "pager.log").read_text().splitlines()]
    assert handed.count(handed[0]) >= 2  # the killed hand-off, then the same message again
    assert shown(vigil, setup.config, "urgent-mail")["m7"]["handoff"] == "accepted"
    assert leftovers(state) == []

"""Watches in the coordinator: match, absence, file, deadline results; states, repeats,
escalation, acknowledgement and the hand-off to an agent. Real files, simulated time."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runner.watch import check_deadline
from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

NOW = datetime(2026, 2, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `openclaw` on PATH that records what it was handed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "handed.jsonl"
    script = bin_dir / "openclaw"
    code = f'import json,sys; open("{record}","a").write(json.dumps(sys.argv[1:])+"\\n")'
    script.write_text(f"#!/bin/sh\npython3 -c '{code}' \"$@\"\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return record


def mail(*messages: tuple[str, str, str]) -> dict:
    return {
        "source": "mail",
        "timestamp": "x",
        "messages": [{"id": i, "subject": s, "priority": p} for i, s, p in messages],
    }


def watch_state(state: Path, name: str) -> dict:
    return json.loads((state / "state" / f"watch-{name}.json").read_text())["instances"]


def test_match_fires_only_on_matching_items_and_hands_off(state_dir: Path, agent: Path) -> None:
    spec = bruba_spec(state_dir)
    drop(state_dir, mail(("m1", "lunch?", "normal"), ("m2", "URGENT: site down", "normal")))
    heartbeat(spec, NOW)
    bodies = [m["body"] for m in delivered(state_dir)]
    assert len(bodies) == 1 and "id=m2" in bodies[0] and "m1" not in bodies[0]
    handed = [json.loads(line) for line in agent.read_text().splitlines()]
    assert len(handed) == 1 and "URGENT: site down" in handed[0][-1]
    heartbeat(spec, NOW + timedelta(minutes=1))
    instance = watch_state(state_dir, "urgent-reply")["m2"]
    assert [h["state"] for h in instance["history"]] == ["fired", "delivered"]
    assert instance["handoff"]["accepted"] is True
    # the same item reported again does not fire again; a high-priority one does
    drop(state_dir, mail(("m2", "URGENT: site down", "normal"), ("m3", "re: invoice", "high")))
    heartbeat(spec, NOW + timedelta(minutes=2))
    assert set(watch_state(state_dir, "urgent-reply")) == {"m2", "m3"}


@pytest.mark.usefixtures(agent.__name__)  # the watch hands its alert to the stand-in
def test_repeat_until_acknowledged_and_escalate(vigil, state_dir: Path, tmp_path) -> None:
    spec = bruba_spec(state_dir)
    drop(state_dir, mail(("m9", "outage in prod", "normal")))
    heartbeat(spec, NOW)
    heartbeat(spec, NOW + timedelta(minutes=30))
    assert len(delivered(state_dir)) == 1
    heartbeat(spec, NOW + timedelta(hours=1))  # repeat: 1h
    assert len(delivered(state_dir)) == 2
    heartbeat(spec, NOW + timedelta(hours=4, minutes=1))  # escalate after 4h, and a repeat
    last = delivered(state_dir)[-1]["body"]
    assert "escalated, not acknowledged" in last
    # `vigil ack` drops a control finding; the coordinator applies it
    config = tmp_path / "vigil.yaml"
    text = (Path(__file__).parent.parent / "examples/bruba.yaml").read_text()
    config.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state_dir}\n"))
    assert vigil("ack", "urgent-reply", "m9", "-c", config).exit_code == 0
    heartbeat(spec, NOW + timedelta(hours=5))
    count = len(delivered(state_dir))
    heartbeat(spec, NOW + timedelta(hours=9))
    assert len(delivered(state_dir)) == count
    assert watch_state(state_dir, "urgent-reply")["m9"]["state"] == "acknowledged"
    shown = json.loads(vigil("watches", "-c", config, "--json").stdout)
    assert {"watch": "urgent-reply", "key": "m9", "state": "acknowledged"}.items() <= shown[
        -1
    ].items()


def test_absence_is_a_dead_mans_switch(state_dir: Path) -> None:
    spec = bruba_spec(state_dir)
    spec["watches"]["briefing-alive"] = {
        "absence": {"source": "morning-briefing", "for": 2 * 86400},
        "message": None,
        "notify": None,
        "handoff": None,
        "urgent": False,
        "repeat": None,
        "escalate": None,
        "deadline": None,
        "match": None,
        "file": None,
    }
    heartbeat(spec, NOW)  # the silence counts from here
    heartbeat(spec, NOW + timedelta(days=1))
    assert delivered(state_dir) == []
    heartbeat(spec, NOW + timedelta(days=2, minutes=1))
    assert "nothing from morning-briefing" in delivered(state_dir)[0]["body"]
    heartbeat(spec, NOW + timedelta(days=3))
    assert len(delivered(state_dir)) == 1  # fires once per silence
    drop(state_dir, {"source": "morning-briefing", "timestamp": "x", "message": "hello"})
    heartbeat(spec, NOW + timedelta(days=3, hours=1))
    assert watch_state(state_dir, "briefing-alive")["silence"]["state"] == "satisfied"


def test_file_watch_armed_by_hand_expires(vigil, state_dir: Path, tmp_path: Path) -> None:
    spec = bruba_spec(state_dir)
    spec["watches"]["research-result"]["file"].update(path=str(tmp_path / "{key}.md"), roots=None)
    config = tmp_path / "vigil.yaml"
    text = (Path(__file__).parent.parent / "examples/bruba.yaml").read_text()
    config.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state_dir}\n"))
    result = vigil(
        "watch", "arm", "research-result", "--key", "t1", "--within", "10m", "-c", config
    )
    assert result.exit_code == 0, result.stderr
    heartbeat(spec, NOW)
    assert watch_state(state_dir, "research-result")["t1"]["state"] == "armed"
    heartbeat(spec, NOW + timedelta(minutes=11))
    assert watch_state(state_dir, "research-result")["t1"]["state"] == "expired"
    assert "t1: expired" in delivered(state_dir)[0]["body"]


def runs_line(state: Path, **record: object) -> None:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "runs.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


@pytest.mark.parametrize(
    ("record", "met", "words"),
    [
        (
            {"result": "ok", "start": "2026-02-02T07:00:00Z", "end": "2026-02-02T07:40:00Z"},
            True,
            "succeeded at 2026-02-02T07:40:00Z",
        ),
        (
            {
                "result": "failed",
                "start": "2026-02-02T07:00:00Z",
                "end": "2026-02-02T07:01:00Z",
                "exit_status": 1,
                "reason": "command exited with 1",
            },
            False,
            "failed at",
        ),
        (
            {"result": "ok", "start": "2026-01-31T07:00:00Z", "end": "2026-01-31T07:40:00Z"},
            False,
            "did not run since",
        ),
        (None, False, "has never run"),
    ],
)
def test_deadline_evidence(state_dir: Path, record, met: bool, words: str) -> None:
    if record:
        runs_line(state_dir, job="backup", **record)
    spec = {"watch": {"deadline": {"job": "backup", "at": "03:00"}}, "window": 86400}
    satisfied, evidence = check_deadline(
        spec, str(state_dir), datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    )
    assert satisfied is met
    assert words in evidence["text"]


def test_deadline_result_fires_with_its_evidence(state_dir: Path) -> None:
    spec = bruba_spec(state_dir)
    spec["watches"]["backup-done"] = {
        "deadline": {"job": "nightly-reset-prep", "at": "03:00", "source": None, "file": None},
        "message": None,
        "notify": None,
        "handoff": None,
        "urgent": True,
        "repeat": None,
        "escalate": None,
        "match": None,
        "file": None,
        "absence": None,
    }
    result = {
        "source": "vigil",
        "timestamp": "x",
        "kind": "watch-deadline",
        "watch": "backup-done",
        "key": "2026-02-02T08:00:00Z",
        "satisfied": False,
        "evidence": {"text": "nightly-reset-prep did not run since 2026-02-01T08:00:00Z"},
    }
    drop(state_dir, result)
    heartbeat(spec, NOW)
    drop(state_dir, result)  # reported twice: no second alert
    heartbeat(spec, NOW + timedelta(minutes=1))
    bodies = [m["body"] for m in delivered(state_dir)]
    assert bodies == [
        "• backup-done: not done by 2026-02-02T08:00:00Z: "
        "nightly-reset-prep did not run since 2026-02-01T08:00:00Z [r1]"
    ]
    # the key is a time, colons and all: the instance still learns that its alert went out
    fired = watch_state(state_dir, "backup-done")["2026-02-02T08:00:00Z"]
    assert [step["state"] for step in fired["history"]] == ["fired", "delivered"]
    drop(
        state_dir,
        {**result, "key": "2026-02-03T08:00:00Z", "satisfied": True, "evidence": {"text": "ok"}},
    )
    heartbeat(spec, NOW + timedelta(days=1))
    assert len(delivered(state_dir)) == 1
    assert watch_state(state_dir, "backup-done")["2026-02-03T08:00:00Z"]["state"] == "satisfied"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


SCHEDULE_ARMED = """
name: demo
timezone: UTC
state_dir: {state}
channels: {sink: {file: "{state}/sink.jsonl"}}
coordinator: {deliver_to: [sink]}
jobs:
  hello: {schedule: "@daily", run: "true"}
watches:
  morning-report:
    file:
      path: "{reports}/{key}.md"
      roots: ["{reports}"]
      within: 2h
      armed_by: {schedule: "0 7 * * *"}
"""


@pytest.mark.parametrize("written", [True, False])
def test_a_file_watch_armed_by_its_schedule_starts_a_clock_at_every_firing(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: bool
) -> None:
    """The watch's own timer fires at 07:00: its run arms one instance (keyed by the firing's
    minute) through the inbox; the file arrives in time, or the instance expires with an alert."""
    from runner.watch import main as watch_run
    from tests.coordinator_support import compiled_spec

    reports = tmp_path / "reports"
    reports.mkdir()
    state = tmp_path / "state"
    spec = compiled_spec(vigil, tmp_path, SCHEDULE_ARMED.replace("{reports}", str(reports)))
    fired = datetime(2026, 2, 3, 7, 0, 2, tzinfo=UTC)
    monkeypatch.setenv("VIGIL_NOW", fired.isoformat())
    assert watch_run(str(tmp_path / "out/specs/watch-morning-report.json")) == 0
    heartbeat(spec, fired + timedelta(seconds=5))
    [(key, instance)] = watch_state(state, "morning-report").items()
    assert (key, instance["state"]) == ("2026-02-03T07:00:00Z", "armed")
    assert instance["path"] == str(reports / "2026-02-03T07:00:00Z.md")
    assert instance["evidence"] == {"text": "armed by its schedule"}
    if written:
        Path(instance["path"]).write_text("the report\n")
    heartbeat(spec, fired + timedelta(hours=2, minutes=1))
    after = watch_state(state, "morning-report")[key]
    assert after["state"] == ("satisfied" if written else "expired")
    alerts = [m["body"] for m in delivered(state, "sink")]
    assert bool([b for b in alerts if "morning-report" in b and "expired" in b]) is not written

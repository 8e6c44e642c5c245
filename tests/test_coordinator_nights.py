"""Alerts across several nights and days: what quiet hours hold is delivered every night, a
finding that repeats on a later day is a new alert, watch repeats held overnight are one line,
and message ids stay the same for a rerun after a crash. The real coordinator, in-process, on
a spec from `vigil compile`, at chosen moments (the injected clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner import coordinator
from tests.coordinator_support import compiled_spec, delivered, drop, heartbeat

CONFIG = """\
name: nights
timezone: America/New_York
state_dir: {state}
channels:
  sink: {file: {state}/sink.jsonl}
coordinator:
  deliver_to: [sink]
  quiet_hours: {start: "22:00", end: "07:00"}
  sources:
    disk: {external: true}
    mail: {external: true}
    todo: {external: true}
nag:
  todo:
    source: todo
    items: overdue
    key: id
    ladder: [{min_count: 1, message: "nag {count}: {id}"}]
watches:
  urgent-reply:
    match:
      source: mail
      items: messages
      key: id
      all: [{field: subject, contains: outage}]
    message: "Outage mail: {key}"
    repeat: 1h
  result:
    file: {path: "{state}/{key}.md", within: 10m}
"""

EVENING = datetime(2026, 2, 2, 4, 0, tzinfo=UTC)  # Sunday 23:00 in New York: quiet


@pytest.fixture
def spec(vigil, tmp_path: Path) -> dict[str, Any]:
    return compiled_spec(vigil, tmp_path, CONFIG)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


REPEATING = pytest.mark.parametrize(
    "finding",
    [
        {"source": "disk", "timestamp": "x", "message": "disk 91% full"},
        {"source": "disk", "timestamp": "x", "id": "disk-full", "message": "disk full"},
    ],
    ids=["same text", "fixed id"],
)
"""A finding that comes again: the same text, or the same `id`."""


def bodies(state: Path) -> list[str]:
    return [message["body"] for message in delivered(state, "sink")]


@REPEATING
def test_an_alert_held_every_night_is_delivered_every_morning(
    spec: dict[str, Any], state: Path, finding: dict[str, Any]
) -> None:
    for night in range(4):
        evening = EVENING + timedelta(days=night)
        drop(state, finding)
        heartbeat(spec, evening)  # held
        heartbeat(spec, evening + timedelta(hours=3))  # 02:00: still held
        assert len(bodies(state)) == night
        counts = heartbeat(spec, evening + timedelta(hours=8, minutes=15))  # 07:15
        assert counts["delivered"] == 1, counts
        assert len(bodies(state)) == night + 1
    assert json.loads((state / "state/held.json").read_text())["alerts"] == []


@REPEATING
def test_the_same_finding_on_later_days_is_delivered_each_day(
    spec: dict[str, Any], state: Path, finding: dict[str, Any]
) -> None:
    noon = EVENING + timedelta(hours=13)
    for day in range(3):
        drop(state, finding)
        heartbeat(spec, noon + timedelta(days=day))
    assert len(bodies(state)) == 3


def test_a_rerun_after_a_crash_before_the_state_is_written_queues_nothing_twice(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The morning run dies after queuing the held alerts, before held.json is written: the
    rerun derives the same message id, so the person hears it once."""
    write_state = coordinator.write_state

    def dies_on_held(state_dir: str, name: str, data: dict[str, object]) -> None:
        if name == coordinator.HELD:
            raise SystemExit("killed")
        write_state(state_dir, name, data)

    for night in range(2):
        evening = EVENING + timedelta(days=night)
        drop(state, {"source": "disk", "timestamp": "x", "message": "disk 91% full"})
        heartbeat(spec, evening)
        morning = evening + timedelta(hours=8, minutes=15)
        monkeypatch.setattr(coordinator, "write_state", dies_on_held)
        with pytest.raises(SystemExit):
            heartbeat(spec, morning)
        monkeypatch.setattr(coordinator, "write_state", write_state)
        heartbeat(spec, morning + timedelta(minutes=15))
        heartbeat(spec, morning + timedelta(minutes=30))
        assert bodies(state) == ["• disk 91% full [r1]"] * (night + 1)


def test_watch_repeats_held_overnight_are_one_line_in_the_morning(
    spec: dict[str, Any], state: Path
) -> None:
    drop(
        state, {"source": "mail", "timestamp": "x", "messages": [{"id": "m1", "subject": "outage"}]}
    )
    heartbeat(spec, EVENING)
    for hour in range(1, 9):  # hourly heartbeats through the night: a repeat due each time
        heartbeat(spec, EVENING + timedelta(hours=hour, minutes=1))
    [morning] = delivered(state, "sink")
    assert morning["body"] == "• Outage mail: m1 [r1]"
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=30))  # settles; no repeat due yet
    instance = json.loads((state / "state/watch-urgent-reply.json").read_text())["instances"]["m1"]
    assert instance["state"] == "delivered"
    [message_id] = instance["messages"].values()
    ledger = json.loads((state / "state/delivered.json").read_text())["delivered"]
    assert message_id in ledger and morning["id"] == message_id


def test_a_watch_alert_acknowledged_while_held_is_not_brought_up_in_the_morning(
    spec: dict[str, Any], state: Path
) -> None:
    outage = {"source": "mail", "timestamp": "x", "messages": [{"id": "m1", "subject": "outage"}]}
    drop(state, outage)
    drop(state, {**outage, "messages": [{"id": "m2", "subject": "outage"}]})
    heartbeat(spec, EVENING)  # both held
    drop(state, {"source": "vigil", "timestamp": "x", "kind": "ack", "watch": "urgent-reply",
                 "key": "m1"})  # fmt: skip
    heartbeat(spec, EVENING + timedelta(hours=2))
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    assert bodies(state) == ["• Outage mail: m2 [r1]"]


def test_a_nag_held_overnight_for_an_item_done_meanwhile_is_not_brought_up_in_the_morning(
    spec: dict[str, Any], state: Path
) -> None:
    """Nagged about the wrong thing: A was done at 02:00, so the morning names only B, and A's
    nag did not count (it starts again from 1 if A is overdue again)."""
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}, {"id": "B"}]})
    heartbeat(spec, EVENING)  # both held
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "B"}]})
    heartbeat(spec, EVENING + timedelta(hours=3))  # A resolved, still quiet
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    assert bodies(state) == ["• nag 1: B [r1]"]
    items = json.loads((state / "state/nag-todo.json").read_text())["items"]
    assert items["A"]["status"] == "resolved" and items["A"]["nagCount"] == 0
    assert items["B"]["nagCount"] == 1
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}, {"id": "B"}]})
    heartbeat(spec, EVENING + timedelta(hours=9))
    assert "• nag 1: A [r2]" in bodies(state)[-1].splitlines()


def test_a_watch_instance_armed_again_is_delivered_and_settled_by_its_own_message(
    spec: dict[str, Any], state: Path
) -> None:
    """`vigil watch arm` on the same key on later days: each expiry is a new message, and the
    instance is marked delivered by that message, not by the first day's."""
    noon = EVENING + timedelta(hours=13)
    for day in range(3):
        armed = noon + timedelta(days=day)
        arm = {"source": "vigil", "timestamp": "x", "kind": "arm", "watch": "result", "key": "t1"}
        drop(state, arm)
        heartbeat(spec, armed)
        heartbeat(spec, armed + timedelta(minutes=11))  # expired: alerted
        heartbeat(spec, armed + timedelta(minutes=12))  # settled
        messages = delivered(state, "sink")
        assert len(messages) == day + 1 and "t1: expired" in messages[-1]["body"]
        watch = json.loads((state / "state/watch-result.json").read_text())
        instance = watch["instances"]["t1"]
        assert instance["state"] == "delivered"
        assert instance["messages"] == {"sink": messages[-1]["id"]}


OUTAGE = {"source": "mail", "timestamp": "x", "messages": [{"id": "m1", "subject": "outage"}]}


def dies_writing(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """The next write of `target` (a state file's name, or "done" for the claim's end) kills
    the run; later writes go through."""
    write_state, done = coordinator.write_state, coordinator.done

    def write(state_dir: str, name: str, data: dict[str, object]) -> None:
        if name == target:
            monkeypatch.setattr(coordinator, "write_state", write_state)
            raise SystemExit("killed")
        write_state(state_dir, name, data)

    def end(*_args: Any) -> None:
        monkeypatch.setattr(coordinator, "done", done)
        raise SystemExit("killed")

    if target == "done":
        monkeypatch.setattr(coordinator, "done", end)
    else:
        monkeypatch.setattr(coordinator, "write_state", write)


@pytest.mark.parametrize("kill", [coordinator.HELD, "watch-urgent-reply.json", "done"])
def test_an_alert_held_by_a_run_killed_at_any_write_is_told_once_in_the_morning(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch, kill: str
) -> None:
    drop(state, OUTAGE)
    dies_writing(monkeypatch, kill)
    with pytest.raises(SystemExit):
        heartbeat(spec, EVENING)
    heartbeat(spec, EVENING + timedelta(minutes=5))  # the rerun takes up what was left
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=30))
    assert bodies(state) == ["• Outage mail: m1 [r1]"]


@pytest.mark.parametrize("kill", [coordinator.HELD, "watch-urgent-reply.json"])
def test_a_morning_run_killed_at_any_write_sends_its_message_once(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch, kill: str
) -> None:
    """The run at the end of quiet hours claims nothing: it releases what was held and raises
    a repeat of the watch that is due; killed, its rerun a minute later sends the same."""
    drop(state, OUTAGE)
    heartbeat(spec, EVENING)
    heartbeat(spec, EVENING + timedelta(hours=4))  # a repeat, held
    morning = EVENING + timedelta(hours=8, minutes=15)
    dies_writing(monkeypatch, kill)
    with pytest.raises(SystemExit):
        heartbeat(spec, morning)
    heartbeat(spec, morning + timedelta(minutes=1))
    heartbeat(spec, morning + timedelta(minutes=30))
    assert len(bodies(state)) == 1, bodies(state)
    instance = json.loads((state / "state/watch-urgent-reply.json").read_text())["instances"]["m1"]
    assert instance["state"] == "delivered"


@pytest.mark.parametrize("kill", [coordinator.HELD, "nag-todo.json", "done"])
def test_a_nag_held_by_a_run_killed_at_any_write_is_told_once_in_the_morning(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch, kill: str
) -> None:
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}]})
    dies_writing(monkeypatch, kill)
    with pytest.raises(SystemExit):
        heartbeat(spec, EVENING)
    heartbeat(spec, EVENING + timedelta(minutes=5))
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    assert bodies(state) == ["• nag 1: A [r1]"]
    items = json.loads((state / "state/nag-todo.json").read_text())["items"]
    assert items["A"]["nagCount"] == 1


def test_a_message_queued_before_quiet_hours_and_not_yet_delivered_waits_for_their_end(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run at 21:50 queues the message and is killed before the channel takes it; the
    heartbeat at 23:00 (quiet) leaves it queued; the first run after 07:00 delivers it."""
    drop(state, {"source": "disk", "timestamp": "x", "message": "disk 91% full"})
    monkeypatch.setattr(coordinator, "_deliver", lambda *_args: {"delivered": 0})
    heartbeat(spec, EVENING - timedelta(hours=1, minutes=10))  # 21:50, not quiet: queued
    monkeypatch.undo()
    assert list((state / "outbox").glob("*.json"))
    assert heartbeat(spec, EVENING)["waiting"] == 1  # 23:00, quiet
    assert bodies(state) == []
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    assert bodies(state) == ["• disk 91% full [r1]"]


def test_a_file_that_arrives_during_quiet_hours_is_news_in_the_morning(
    spec: dict[str, Any], state: Path
) -> None:
    """The result arrives at 23:05: the "satisfied" alert is held, and the instance settles
    meanwhile; the morning message still says so."""
    arm = {"source": "vigil", "timestamp": "x", "kind": "arm", "watch": "result", "key": "r1"}
    drop(state, arm)
    heartbeat(spec, EVENING)
    (state / "r1.md").write_text("the research\n")
    for minutes in (5, 65, 125):
        heartbeat(spec, EVENING + timedelta(minutes=minutes))
    assert bodies(state) == []
    heartbeat(spec, EVENING + timedelta(hours=8, minutes=15))
    [morning] = bodies(state)
    assert "r1: satisfied" in morning


@pytest.mark.parametrize("kill", [coordinator.HELD, "watch-result.json", "done"])
def test_a_file_that_arrives_before_the_rerun_of_a_killed_run_is_told(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch, kill: str
) -> None:
    """The killed run queued its message (the disk alert) for its claim; the rerun of that
    claim composes the same message id, now with "r1: satisfied" too, since the file arrived
    in between. The message already queued does not carry it, so it goes in one of its own."""
    day = EVENING + timedelta(hours=10)  # 09:00 in New York
    arm = {"source": "vigil", "timestamp": "x", "kind": "arm", "watch": "result", "key": "r1"}
    drop(state, arm)
    drop(state, {"source": "disk", "timestamp": "x", "message": "disk 91% full"})
    dies_writing(monkeypatch, kill)
    with pytest.raises(SystemExit):
        heartbeat(spec, day)
    (state / "r1.md").write_text("the research\n")
    heartbeat(spec, day + timedelta(minutes=5))
    heartbeat(spec, day + timedelta(minutes=10))
    lines = [line for body in bodies(state) for line in body.splitlines()]
    assert lines.count("• disk 91% full [r1]") == 1
    assert len([line for line in lines if "r1: satisfied" in line]) == 1


DAY = EVENING + timedelta(hours=10)  # 09:00 in New York: not quiet
DISK = {"source": "disk", "timestamp": "x", "message": "disk 91% full"}


def arm(key: str) -> dict[str, Any]:
    return {"source": "vigil", "timestamp": "x", "kind": "arm", "watch": "result", "key": key}


def lines(state: Path) -> list[str]:
    return [line for body in bodies(state) for line in body.splitlines()]


def test_two_files_arriving_across_two_killed_reruns_are_each_told_once(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 queues the disk message and dies; r1 arrives; rerun 1 queues r1 in a rest message
    and dies; r2 arrives; rerun 2's rest is {r1, r2}: a new id, so r1 is told again."""
    drop(state, arm("r1"))
    drop(state, arm("r2"))
    drop(state, DISK)
    dies_writing(monkeypatch, coordinator.HELD)
    with pytest.raises(SystemExit):
        heartbeat(spec, DAY)
    (state / "r1.md").write_text("one\n")
    dies_writing(monkeypatch, coordinator.HELD)
    with pytest.raises(SystemExit):
        heartbeat(spec, DAY + timedelta(minutes=1))
    (state / "r2.md").write_text("two\n")
    heartbeat(spec, DAY + timedelta(minutes=2))
    heartbeat(spec, DAY + timedelta(minutes=3))
    said = lines(state)
    assert said.count("• disk 91% full [r1]") == 1
    assert len([x for x in said if "r2: satisfied" in x]) == 1
    assert len([x for x in said if "r1: satisfied" in x]) == 1, said


def test_a_held_nag_released_by_a_run_killed_before_the_nag_state_counts_once(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The morning run queues 'nag 1: A', writes held.json (alerts [], queued {nag 1 A}) and
    dies before nag-todo.json. Nothing raises nag 1 A in the rerun, which rewrites held.json
    with an empty `queued`: the next todo finding raises nag 1 A again and it is told twice."""
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}]})
    heartbeat(spec, EVENING)  # held
    morning = EVENING + timedelta(hours=8, minutes=15)
    dies_writing(monkeypatch, "nag-todo.json")
    with pytest.raises(SystemExit):
        heartbeat(spec, morning)
    heartbeat(spec, morning + timedelta(minutes=1))  # the rerun (a heartbeat)
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}]})
    heartbeat(spec, morning + timedelta(hours=1))
    said = lines(state)
    assert said.count("• nag 1: A [r1]") == 1, said
    items = json.loads((state / "state/nag-todo.json").read_text())["items"]
    assert items["A"]["nagCount"] == 2


def test_a_rerun_over_a_message_queued_before_keys_were_kept_still_tells_the_file(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrade between the kill and the rerun: the queued message has `named` but no `keys`.
    It is taken to carry 'r1: satisfied' too, the watch instance is settled by it, and the
    file's arrival is never told."""
    drop(state, arm("r1"))
    drop(state, DISK)
    dies_writing(monkeypatch, coordinator.HELD)
    with pytest.raises(SystemExit):
        heartbeat(spec, DAY)
    for path in (state / "outbox").glob("*.json"):
        entry = json.loads(path.read_text())
        del entry["message"]["keys"]
        path.write_text(json.dumps(entry))
    (state / "r1.md").write_text("one\n")
    heartbeat(spec, DAY + timedelta(minutes=5))
    heartbeat(spec, DAY + timedelta(minutes=10))
    said = lines(state)
    assert len([x for x in said if "r1: satisfied" in x]) == 1, said


def test_quiet_heartbeats_with_a_held_nag_do_not_rewrite_the_nag_state(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changes overnight, yet every heartbeat now loads nag-todo.json (to see whether
    a held nag was resolved) and _save_rule_states writes it back."""
    drop(state, {"source": "todo", "timestamp": "x", "overdue": [{"id": "A"}]})
    heartbeat(spec, EVENING)  # held
    writes: list[str] = []
    real = coordinator.write_state

    def counting(state_dir: str, name: str, data: dict[str, object]) -> None:
        writes.append(name)
        real(state_dir, name, data)

    monkeypatch.setattr(coordinator, "write_state", counting)
    for hour in range(1, 6):
        heartbeat(spec, EVENING + timedelta(hours=hour))
    assert "nag-todo.json" not in writes, writes


def test_a_killed_morning_release_followed_by_a_finding_sends_the_held_alert_once(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 07:15 heartbeat queues the held disk alert (id from the occasion) and dies before
    held.json; the next run is started by a new finding: its claim's message carries the
    still-held disk alert again, under the claim's id."""
    drop(state, DISK)
    heartbeat(spec, EVENING)  # held
    morning = EVENING + timedelta(hours=8, minutes=15)
    dies_writing(monkeypatch, coordinator.HELD)
    with pytest.raises(SystemExit):
        heartbeat(spec, morning)
    drop(state, {"source": "disk", "timestamp": "x", "message": "disk 95% full"})
    heartbeat(spec, morning + timedelta(minutes=1))
    heartbeat(spec, morning + timedelta(minutes=2))
    said = lines(state)
    assert said.count("• disk 95% full [r2]") == 1
    assert said.count("• disk 91% full [r1]") == 1, said


def test_a_killed_morning_release_and_a_file_arriving_before_the_rerun(
    spec: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No claim at all: the rerun's alerts are the held one plus 'r1: satisfied', so its
    occasion id (which hashes the keys) differs and the held alert goes out twice."""
    drop(state, DISK)
    heartbeat(spec, EVENING)  # disk held
    drop(state, arm("r1"))
    heartbeat(spec, EVENING + timedelta(hours=7, minutes=58))  # 06:58: armed for 10 min
    morning = EVENING + timedelta(hours=8, minutes=1)  # 07:01
    dies_writing(monkeypatch, coordinator.HELD)
    with pytest.raises(SystemExit):
        heartbeat(spec, morning)
    (state / "r1.md").write_text("one\n")
    heartbeat(spec, morning + timedelta(minutes=1))
    heartbeat(spec, morning + timedelta(minutes=2))
    said = lines(state)
    assert said.count("• disk 91% full [r1]") == 1, said

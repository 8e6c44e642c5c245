"""Delivery: the outbox, the ledger, retries with backoff, dead letters, file and command
channels. Time is injected: every run gets its `now`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.delivery import ledger as ledger_module
from runner.delivery.message import Message
from runner.delivery.outbox import deliver_due, enqueue, outbox_status
from runner.fsatomic import locked
from tests.runner_support import ROOT

T0 = datetime(2026, 2, 2, 9, 0, 0, tzinfo=UTC)


def coordinator_spec(channels: dict[str, dict[str, Any]], **delivery: Any) -> dict[str, Any]:
    """The compiled bruba coordinator spec with these channels and delivery settings."""
    spec: dict[str, Any] = json.loads((ROOT / "units/bruba/specs/coordinator.json").read_text())
    spec["channels"] = {name: channel_spec(**fields) for name, fields in channels.items()}
    spec["coordinator"]["delivery"].update(delivery)
    return spec


def channel_spec(**fields: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "apprise": None,
        "apprise_secret": None,
        "command": None,
        "file": None,
        "timeout": 30,
    }
    channel.update(fields)
    return channel


def message(message_id: str = "m1", channel: str = "sink", **fields: Any) -> Message:
    values: dict[str, Any] = {
        "title": "Bruba: 2 new",
        "body": "• first\n• second",
        "urgent": False,
        "created": "2026-02-02T09:00:00Z",
        "sources": ["reminder-check", "calendar-prep"],
    }
    values.update(fields)
    return Message(id=message_id, channel=channel, **values)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def queued(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "outbox").glob("*.json"))


def dead(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "outbox" / "dead").glob("*.json"))


def deliver(spec: dict[str, Any], state: Path, now: datetime) -> Any:
    return deliver_due(spec, state, now, None)


# --- file channel, idempotency, crash between send and ledger ---------------------------------


def test_file_channel_delivers_one_json_line(tmp_path: Path) -> None:
    sink = tmp_path / "deep" / "er" / "deliveries.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message())
    assert queued(state) == ["m1.json"]

    report = deliver(spec, state, T0)

    assert (report.delivered, report.retrying, report.dead, report.skipped) == (1, 0, 0, 0)
    assert report.next_retry is None
    assert lines(sink) == [
        {
            "id": "m1",
            "channel": "sink",
            "title": "Bruba: 2 new",
            "body": "• first\n• second",
            "urgent": False,
            "created": "2026-02-02T09:00:00Z",
            "sources": ["reminder-check", "calendar-prep"],
            "delivered": "2026-02-02T09:00:00Z",
        }
    ]
    assert queued(state) == []
    text = (state / "state" / "delivered.json").read_text()
    ledger = json.loads(text)
    assert ledger["delivered"]["m1"]["at"] == "2026-02-02T09:00:00Z"
    assert text.count("\n") == 1  # compact: rewritten at every delivery, a month of them


def test_file_channel_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = coordinator_spec({"sink": {"file": "~/notes/deliveries.jsonl"}})
    enqueue(tmp_path / "state", message())
    assert deliver(spec, tmp_path / "state", T0).delivered == 1
    assert len(lines(tmp_path / "home" / "notes" / "deliveries.jsonl")) == 1


def test_the_same_id_queued_twice_or_after_delivery_is_delivered_once(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message())
    enqueue(state, message(title="changed, same id"))
    assert deliver(spec, state, T0).delivered == 1
    enqueue(state, message())  # a coordinator rerun after a crash queues the same id again
    assert queued(state) == []
    assert deliver(spec, state, T0 + timedelta(minutes=1)).delivered == 0
    assert [line["title"] for line in lines(sink)] == ["Bruba: 2 new"]


def test_a_crash_after_sending_gives_at_most_one_duplicate_and_no_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message("m1"))
    enqueue(state, message("m2"))
    real_save = ledger_module.DeliveryLedger.save
    crashes = []

    def crash_once(self: ledger_module.DeliveryLedger) -> None:
        if not crashes:
            crashes.append(1)
            raise OSError("simulated crash between sending and recording")
        real_save(self)

    monkeypatch.setattr(ledger_module.DeliveryLedger, "save", crash_once)
    with pytest.raises(OSError, match="simulated crash"):
        deliver(spec, state, T0)
    assert len(lines(sink)) == 1  # sent, but not recorded
    assert len(queued(state)) == 2  # nothing was forgotten

    for minute in (1, 2, 3):
        deliver(spec, state, T0 + timedelta(minutes=minute))

    ids = [line["id"] for line in lines(sink)]
    assert sorted(set(ids)) == ["m1", "m2"]  # no loss
    # A file channel marks where the line goes before appending it: the next run finds m1
    # there and records it instead of appending it again, so not even one duplicate.
    assert ids == ["m1", "m2"]
    assert queued(state) == []


def test_a_line_a_dead_run_appended_is_recorded_once_per_message(tmp_path: Path) -> None:
    """Two messages whose appends a killed run completed: each is found at its mark and
    recorded, none appended again; a mark whose line is not there is sent."""
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    for mid in ("m1", "m2", "m3"):
        enqueue(state, message(mid))
    copies = {p.name: p.read_text() for p in (state / "outbox").glob("*.json")}
    assert deliver(spec, state, T0).delivered == 3
    offsets = {line["id"]: n for n, line in enumerate(lines(sink))}
    text = sink.read_text().splitlines(keepends=True)
    starts = {mid: sum(len(t.encode()) for t in text[:n]) for mid, n in offsets.items()}
    (state / "state" / "delivered.json").unlink()  # the ledger write never happened
    for name, content in copies.items():
        entry = json.loads(content)
        mid = entry["message"]["id"]
        entry["sending"] = {"at": "2026-02-02T09:00:00Z", "offset": starts[mid]}
        if mid == "m3":
            entry["sending"]["offset"] = sink.stat().st_size  # died before appending
        (state / "outbox" / name).write_text(json.dumps(entry))
    report = deliver(spec, state, T0 + timedelta(minutes=1))
    assert (report.skipped, report.delivered) == (2, 1)
    assert [line["id"] for line in lines(sink)] == ["m1", "m2", "m3", "m3"]
    assert queued(state) == []


def test_ids_already_in_the_ledger_are_skipped_and_unqueued(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message())
    deliver(spec, state, T0)
    # The queue file came back (a crash between recording and removing it).
    (state / "outbox").mkdir(exist_ok=True)
    entry = {"message": message().to_json(), "queued": "2026-02-02T09:00:00Z", "attempts": 0}
    (state / "outbox" / "m1.json").write_text(json.dumps(entry))
    report = deliver(spec, state, T0 + timedelta(minutes=1))
    assert (report.delivered, report.skipped) == (0, 1)
    assert queued(state) == []
    assert len(lines(sink)) == 1


def test_the_ledger_forgets_deliveries_after_30_days(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message("old"))
    deliver(spec, state, T0)
    enqueue(state, message("new"))
    deliver(spec, state, T0 + timedelta(days=31))
    ledger = json.loads((state / "state" / "delivered.json").read_text())
    assert sorted(ledger["delivered"]) == ["new"]


def test_an_empty_outbox_does_nothing(tmp_path: Path) -> None:
    report = deliver(coordinator_spec({}), tmp_path / "state", T0)
    assert (report.delivered, report.retrying, report.dead, report.skipped) == (0, 0, 0, 0)
    assert not (tmp_path / "state").exists()


# --- retries, backoff, recovery ----------------------------------------------------------------

FLAKY = """
n=$(cat "$1/failures-left")
echo "$2" >> "$1/attempts"
if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$1/failures-left"; echo "down ($n)" >&2; exit 7; fi
echo "$2" >> "$1/received"
"""


def flaky_channel(directory: Path, failures: int) -> dict[str, Any]:
    """A command channel that fails `failures` times, then accepts."""
    (directory / "failures-left").write_text(f"{failures}\n")
    return {"command": ["/bin/sh", "-c", FLAKY, "flaky", str(directory), "{id}"]}


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_retries_wait_exactly_the_configured_backoff(tmp_path: Path) -> None:
    spec = coordinator_spec(
        {"agent": flaky_channel(tmp_path, 99)}, attempts=6, backoff=30, max_backoff=100
    )
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    expected_waits = [30, 60, 100, 100]  # 30 * 2**(n-1), capped at max_backoff
    now = T0
    for attempt, wait in enumerate(expected_waits, start=1):
        report = deliver(spec, state, now)
        assert report.retrying == 1
        assert report.next_retry == now + timedelta(seconds=wait)
        assert count_lines(tmp_path / "attempts") == attempt
        early = deliver(spec, state, now + timedelta(seconds=wait - 1))
        assert (early.waiting, early.retrying) == (1, 0)  # not due: no attempt
        assert early.next_retry == now + timedelta(seconds=wait)
        assert count_lines(tmp_path / "attempts") == attempt
        now += timedelta(seconds=wait)
    [row] = outbox_status(state)
    assert row["state"] == "retrying"
    assert row["attempts"] == 4
    assert row["exit_status"] == 7
    assert row["last_error"].startswith("/bin/sh exited with status 7: down (")
    assert row["next_attempt"] == "2026-02-02T09:04:50Z"


def test_a_channel_that_fails_three_times_then_recovers_delivers_exactly_once(
    tmp_path: Path,
) -> None:
    spec = coordinator_spec({"agent": flaky_channel(tmp_path, 3)}, attempts=5, backoff=10)
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    now = T0
    for _ in range(8):
        report = deliver(spec, state, now)
        now = report.next_retry or now + timedelta(minutes=5)
    assert count_lines(tmp_path / "attempts") == 4
    assert (tmp_path / "received").read_text() == "m1\n"
    assert queued(state) == [] and dead(state) == []
    ledger = json.loads((state / "state" / "delivered.json").read_text())
    assert ledger["delivered"]["m1"]["exit_status"] == 0


def test_one_broken_channel_does_not_stop_the_others(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec(
        {"sink": {"file": str(sink)}, "broken": {"command": ["/nonexistent/agent", "{message}"]}}
    )
    state = tmp_path / "state"
    enqueue(state, message("a", channel="broken"))
    enqueue(state, message("b", channel="sink"))
    report = deliver(spec, state, T0)
    assert (report.delivered, report.retrying) == (1, 1)
    assert [line["id"] for line in lines(sink)] == ["b"]
    [row] = outbox_status(state)
    assert row["last_error"].startswith("cannot start /nonexistent/agent: No such file")


# --- dead letters ------------------------------------------------------------------------------


def test_dead_letter_after_the_last_attempt_alerts_the_fallback_once(tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    spec = coordinator_spec(
        {"agent": {"command": ["/bin/false"]}, "ops": {"file": str(fallback)}},
        attempts=3,
        backoff=10,
        fallback="ops",
    )
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    now = T0
    reports = []
    for _ in range(3):
        reports.append(deliver(spec, state, now))
        now += timedelta(minutes=10)
    assert [r.retrying for r in reports] == [1, 1, 0]
    assert reports[-1].dead == 1
    assert reports[-1].delivered == 1  # the alert went out in the same run
    assert dead(state) == ["m1.json"]
    assert queued(state) == []
    [alert] = lines(fallback)
    assert alert["id"] == "dead-m1"
    assert alert["urgent"] is True
    assert "3 attempt(s) failed" in alert["body"] and "Bruba: 2 new" in alert["body"]

    for _ in range(3):  # later runs, and the coordinator queueing the same id again
        enqueue(state, message(channel="agent"))
        deliver(spec, state, now)
        now += timedelta(hours=1)
    assert len(lines(fallback)) == 1
    [row] = outbox_status(state)
    assert (row["state"], row["attempts"], row["next_attempt"]) == ("dead", 3, None)


def test_dead_letter_without_fallback_goes_to_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/false"]}}, attempts=1)
    state = tmp_path / "state"
    enqueue(state, message(channel="agent", body="the body text"))
    assert deliver(spec, state, T0).dead == 1
    err = capsys.readouterr().err
    assert "dead-lettered after 1 attempt(s)" in err
    assert "undelivered (no fallback channel)" in err and "the body text" in err
    assert dead(state) == ["m1.json"]


def test_a_failing_fallback_does_not_alert_about_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = coordinator_spec(
        {"agent": {"command": ["/bin/false"]}, "ops": {"command": ["/bin/false"]}},
        attempts=1,
        fallback="ops",
    )
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    report = deliver(spec, state, T0)
    assert report.dead == 2
    assert dead(state) == ["dead-m1.json", "m1.json"]
    assert queued(state) == []
    assert "undelivered" not in capsys.readouterr().err  # the alert's loss is only journalled


def test_a_message_for_an_unknown_channel_is_dead_at_once(tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    spec = coordinator_spec({"ops": {"file": str(fallback)}}, attempts=5, fallback="ops")
    state = tmp_path / "state"
    enqueue(state, message(channel="gone"))
    assert deliver(spec, state, T0).dead == 1
    [alert] = lines(fallback)
    assert "no channel named 'gone'" in alert["body"]


def test_enqueue_returns_what_the_message_named_and_carried_when_first_queued(
    tmp_path: Path,
) -> None:
    """A rerun composing the same id learns what the first message named and carried, from
    the outbox while it waits and from the ledger once delivered (see coordinator._enqueue)."""
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    first = message(named=["a"], keys=["a", "b"])
    assert enqueue(state, first) == (["a"], ["a", "b"])
    assert enqueue(state, message(named=["x"], keys=["x"])) == (["a"], ["a", "b"])
    deliver(spec, state, T0)
    assert enqueue(state, message(named=["x"], keys=["x"])) == (["a"], ["a", "b"])
    assert enqueue(state, message("m2")) == (None, None)  # new, and says nothing of either
    assert enqueue(state, message("m2", named=["y"])) == (None, None)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("named", ["a", 1], "message.named: expected a list of strings or null"),
        ("keys", ["a", 1], "message.keys: expected a list of strings or null"),
        ("body", None, "message.body: expected a string"),
        ("sources", "ops", "message.sources: expected a list of strings"),
        ("evidence", [1], "message.evidence: expected an object or null"),
        ("count", True, "message.count: expected a whole number or null"),
        ("count", "3", "message.count: expected a whole number or null"),
        (None, "a string", "message: expected an object"),
        ("entry", [1, 2], "expected an object"),  # the whole file is a list
    ],
)
def test_a_queue_file_of_another_shape_is_set_aside_saying_what_is_wrong(
    tmp_path: Path, field: str | None, value: Any, problem: str
) -> None:
    fallback = tmp_path / "fallback.jsonl"
    spec = coordinator_spec({"ops": {"file": str(fallback)}}, fallback="ops")
    state = tmp_path / "state"
    enqueue(state, message(channel="ops"))
    [path] = (state / "outbox").glob("*.json")
    entry = json.loads(path.read_text())
    if field == "entry":
        entry = value
    elif field is None:
        entry["message"] = value
    else:
        entry["message"][field] = value
    path.write_text(json.dumps(entry))
    assert deliver(spec, state, T0).dead == 1
    assert f"not a readable message ({problem})" in lines(fallback)[0]["body"]


def test_an_unreadable_queue_file_is_moved_aside_not_dropped(tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    spec = coordinator_spec({"ops": {"file": str(fallback)}}, fallback="ops")
    state = tmp_path / "state"
    (state / "outbox").mkdir(parents=True)
    (state / "outbox" / "broken.json").write_text("{not json")
    unreadable = {"file": "broken.json", "id": "broken", "state": "unreadable"}
    assert outbox_status(state) == [unreadable]  # what `vigil outbox` shows
    assert deliver(spec, state, T0).dead == 1
    assert dead(state) == ["broken.json"]
    assert (state / "outbox" / "dead" / "broken.json").read_text() == "{not json"
    body = lines(fallback)[0]["body"]
    assert "unreadable queue file broken.json" in body
    assert "not a readable message (Expecting property name enclosed in double quotes" in body


# --- command channel ---------------------------------------------------------------------------

RECORD_ARGV = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"


def test_command_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    template = [
        sys.executable,
        "-c",
        RECORD_ARGV,
        str(out),
        "{message}",
        "--title={title}",
        "{id}",
        "{channel}",
        "{source}",
        "{count}",
        "{evidence_file}",
        "{{literal}} {{id}}",
    ]
    spec = coordinator_spec({"agent": {"command": template}})
    state = tmp_path / "state"
    evidence = {"findings": [{"source": "reminder-check", "overdue": [{"id": 7}]}]}
    enqueue(state, message(channel="agent", evidence=evidence))
    assert deliver(spec, state, T0).delivered == 1
    argv = json.loads(out.read_text())
    assert argv[:7] == [
        "Bruba: 2 new\n• first\n• second",
        "--title=Bruba: 2 new",
        "m1",
        "agent",
        "reminder-check,calendar-prep",
        "2",
        argv[6],
    ]
    assert argv[7] == "{literal} {id}"
    evidence_file = Path(argv[6])
    assert evidence_file.parent == state / "tmp"
    assert json.loads(evidence_file.read_text()) == evidence


def test_command_count_comes_from_the_message_when_given(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    spec = coordinator_spec(
        {"agent": {"command": [sys.executable, "-c", RECORD_ARGV, str(out), "{count}"]}}
    )
    enqueue(tmp_path / "state", message(channel="agent", count=9))
    deliver(spec, tmp_path / "state", T0)
    assert json.loads(out.read_text()) == ["9"]


@pytest.mark.parametrize(
    "argument",
    ["{message.__class__}", "{title[0]}", "{0}", "{}", "{nope}", "{title!r}", "{title:>9}", "{"],
)
def test_command_rejects_anything_but_plain_placeholders(tmp_path: Path, argument: str) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/echo", argument]}})
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    report = deliver(spec, state, T0)
    assert report.retrying == 1
    [row] = outbox_status(state)
    assert row["last_error"].startswith(f"argument {argument!r}")


def test_command_timeout_is_a_failed_attempt(tmp_path: Path) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/sleep", "30"], "timeout": 0.3}})
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    started = datetime.now(UTC)
    assert deliver(spec, state, T0).retrying == 1
    assert (datetime.now(UTC) - started).total_seconds() < 5
    [row] = outbox_status(state)
    assert row["last_error"] == "/bin/sleep timed out after 0.3s"


def test_command_failure_keeps_the_stderr_tail_and_exit_status(tmp_path: Path) -> None:
    script = "echo progress; echo 'agent rejected the hand-off' >&2; exit 3"
    spec = coordinator_spec({"agent": {"command": ["/bin/sh", "-c", script]}})
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    deliver(spec, state, T0)
    [row] = outbox_status(state)
    assert row["last_error"] == "/bin/sh exited with status 3: agent rejected the hand-off"
    assert row["exit_status"] == 3


# --- status and import hygiene -----------------------------------------------------------------


def test_outbox_status_lists_queued_retrying_and_dead(tmp_path: Path) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/false"]}}, attempts=2, backoff=60)
    state = tmp_path / "state"
    enqueue(state, message("a", channel="agent"))
    deliver(spec, state, T0)
    deliver(spec, state, T0 + timedelta(minutes=1))  # a is dead now
    enqueue(state, message("b", channel="agent"))
    deliver(spec, state, T0 + timedelta(minutes=2))  # b failed once
    enqueue(state, message("c", channel="agent"))
    states = {row["id"]: (row["state"], row["attempts"]) for row in outbox_status(state)}
    assert states == {"a": ("dead", 2), "b": ("retrying", 1), "c": ("queued", 0)}


def test_outbox_status_shows_a_message_whose_send_began_and_never_ended_as_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed between appending a message and recording it leaves a `sending` mark: the
    outbox view says so, and the next run records the line it finds instead of sending again."""
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message("m1"))
    enqueue(state, message("m2"))

    def killed(_self: ledger_module.DeliveryLedger) -> None:
        raise OSError("simulated kill between appending and recording")

    with monkeypatch.context() as patched:
        patched.setattr(ledger_module.DeliveryLedger, "save", killed)
        with pytest.raises(OSError, match="simulated kill"):
            deliver(spec, state, T0)
    rows = {row["id"]: row for row in outbox_status(state)}
    assert {mid: row["state"] for mid, row in rows.items()} == {"m1": "sending", "m2": "queued"}
    assert rows["m1"]["attempts"] == 0
    assert deliver(spec, state, T0 + timedelta(minutes=1)).counts()["skipped"] == 1
    assert outbox_status(state) == []
    assert [line["id"] for line in lines(sink)] == ["m1", "m2"]


def test_a_dead_letter_moved_back_without_its_verdict_is_sent_again(tmp_path: Path) -> None:
    """The README's hand retry: once the channel works, the file goes back into outbox/
    without `dead` and `attempts`, and the next run delivers it."""
    sink = tmp_path / "sink.jsonl"
    broken = coordinator_spec({"sink": {"command": ["/bin/false"]}}, attempts=1)
    state = tmp_path / "state"
    enqueue(state, message("m1"))
    assert deliver(broken, state, T0).dead == 1
    [path] = (state / "outbox" / "dead").glob("*.json")
    entry = json.loads(path.read_text())
    for verdict in ("dead", "attempts"):
        del entry[verdict]
    (state / "outbox" / path.name).write_text(json.dumps(entry))
    path.unlink()
    fixed = coordinator_spec({"sink": {"file": str(sink)}}, attempts=1)
    assert deliver(fixed, state, T0 + timedelta(hours=1)).delivered == 1
    assert [line["id"] for line in lines(sink)] == ["m1"]
    assert dead(state) == [] and queued(state) == []


def test_a_message_marked_dead_by_a_run_that_died_before_moving_it_stays_dead(
    tmp_path: Path,
) -> None:
    """Its fate was decided (and its alert may be out): the next run finishes the move, even
    when its channel is back in the config since."""
    sink, fallback = tmp_path / "sink.jsonl", tmp_path / "fallback.jsonl"
    channels = {"sink": {"file": str(sink)}, "ops": {"file": str(fallback)}}
    spec = coordinator_spec(channels, fallback="ops")
    state = tmp_path / "state"
    enqueue(state, message("m1"))
    [path] = (state / "outbox").glob("*.json")
    entry = json.loads(path.read_text())
    entry.update(attempts=1, dead="2026-02-02T08:59:00Z", last_error="no channel named 'sink'")
    path.write_text(json.dumps(entry))
    [row] = outbox_status(state)
    assert (row["state"], row["next_attempt"]) == ("dead", None)
    assert deliver(spec, state, T0).dead == 1
    assert dead(state) == [path.name]
    assert not sink.exists()
    assert [line["id"] for line in lines(fallback)] == ["dead-m1"]


def test_importing_delivery_does_not_import_apprise() -> None:
    code = (
        "import sys, runner.delivery.outbox, runner.delivery.channels, runner.delivery.ledger; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apprise', 'requests')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_one_delivery_run_at_a_time(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message())
    reports: list[Any] = []
    with locked(str(state / "outbox" / ".lock")):  # another run holds the outbox
        worker = threading.Thread(target=lambda: reports.append(deliver(spec, state, T0)))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and not sink.exists()
    worker.join(5)
    assert reports[0].delivered == 1


def test_without_apprise_installed_an_apprise_message_waits_for_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise raises ImportError
    spec = coordinator_spec({"push": {"apprise": "json://127.0.0.1:9/"}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    assert deliver(spec, state, T0).retrying == 1
    [row] = outbox_status(state)
    assert row["last_error"].startswith("an apprise channel needs the apprise package")
    assert "-m pip install 'apprise" in row["last_error"]


def test_a_message_id_unfit_for_a_file_name_is_stored_under_its_hash(tmp_path: Path) -> None:
    from hashlib import sha256

    from runner.delivery.outbox import file_name

    assert file_name("m-1_Y") == "m-1_Y.json"
    for unfit in ("../etc/passwd", "a.b", "é", "x" * 129, ""):
        expected = f"id-{sha256(unfit.encode('utf-8')).hexdigest()[:40]}.json"
        assert file_name(unfit) == expected
    state = tmp_path / "state"
    enqueue(state, message("a/b"))
    assert [p.name for p in (state / "outbox").glob("*.json")] == [file_name("a/b")]


def test_a_queue_file_is_plain_readable_json_with_its_bookkeeping(tmp_path: Path) -> None:
    """What `cat outbox/<id>.json` shows: sorted keys, one-space indent, text as written."""
    state = tmp_path / "state"
    enqueue(state, message(body="• café ☕"))
    [path] = (state / "outbox").glob("*.json")
    text = path.read_text(encoding="utf-8")
    entry = json.loads(text)
    assert text == json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    assert "café ☕" in text
    assert {k: v for k, v in entry.items() if k != "message"} == {
        "queued": entry["queued"],
        "attempts": 0,
        "next_attempt": None,
        "last_attempt": None,
        "last_error": None,
        "exit_status": None,
    }


def test_only_json_files_not_a_writers_dot_files_are_the_queue(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    state = tmp_path / "state"
    enqueue(state, message())
    outbox = state / "outbox"
    (outbox / "notes.txt").write_text("kept by hand")
    (outbox / ".m9.json").write_text("{half written")
    assert [row["file"] for row in outbox_status(state)] == ["m1.json"]
    assert deliver(spec, state, T0).counts()["delivered"] == 1
    left = sorted(p.name for p in outbox.iterdir() if p.is_file())
    assert [name for name in left if name != ".lock"] == [".m9.json", "notes.txt"]


def test_without_delivery_settings_five_attempts_from_30_s_doubling_to_an_hour() -> None:
    from runner.delivery.outbox import RetryPolicy

    policy = RetryPolicy.from_spec({"coordinator": {}})
    assert (policy.attempts, policy.backoff, policy.max_backoff, policy.fallback) == (
        5,
        30.0,
        3600.0,
        None,
    )
    assert [policy.delay(n) for n in (1, 2, 3, 7, 8)] == [30.0, 60.0, 120.0, 1920.0, 3600.0]


def test_ids_at_the_edges_of_a_safe_file_name() -> None:
    from runner.delivery.outbox import SAFE_ID_CHARS, file_name

    every = "".join(sorted(SAFE_ID_CHARS))
    for safe in ("a", "x" * 128, every):
        assert file_name(safe) == f"{safe}.json"


def test_a_run_counts_each_message_it_skips_holds_retries_and_sets_aside(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}, "agent": {"command": ["/bin/false"]}})
    state = tmp_path / "state"
    outbox = state / "outbox"
    for mid in ("s1", "s2"):
        enqueue(state, message(mid))
    copies = {p.name: p.read_text() for p in outbox.glob("*.json")}
    deliver(spec, state, T0)
    for name, content in copies.items():  # queued again after the ledger has them
        (outbox / name).write_text(content)
    for mid in ("w1", "w2"):
        enqueue(state, message(mid))
        entry = json.loads((outbox / f"{mid}.json").read_text())
        entry.update(attempts=1, next_attempt="2026-02-02T10:00:00Z")
        (outbox / f"{mid}.json").write_text(json.dumps(entry))
    for mid in ("r1", "r2"):
        enqueue(state, message(mid, channel="agent"))
    for name in ("x1.json", "x2.json"):
        (outbox / name).write_text("[]")
    report = deliver(spec, state, T0 + timedelta(minutes=1))
    assert report.counts() == {
        "delivered": 0,
        "retrying": 2,
        "dead": 2,
        "skipped": 2,
        "waiting": 2,
    }


def test_a_message_past_its_attempts_is_dead_without_another_try(tmp_path: Path) -> None:
    """`attempts` lowered since the last run: a message that has had them all is not sent."""
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}}, attempts=2)
    state = tmp_path / "state"
    enqueue(state, message())
    entry = json.loads((state / "outbox" / "m1.json").read_text())
    entry["attempts"] = 2
    (state / "outbox" / "m1.json").write_text(json.dumps(entry))
    assert deliver(spec, state, T0).dead == 1
    assert not sink.exists() and dead(state) == ["m1.json"]


def test_a_retry_is_due_on_the_whole_second_after_its_backoff(tmp_path: Path) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/false"]}}, backoff=30)
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    report = deliver(spec, state, T0 + timedelta(microseconds=500_000))
    assert report.next_retry == T0 + timedelta(seconds=31)
    enqueue(state, message("m2", channel="agent"))
    deliver(spec, state, T0 + timedelta(seconds=40))  # on the second: no rounding
    rows = {row["id"]: row for row in outbox_status(state)}
    assert rows["m2"]["next_attempt"] == "2026-02-02T09:01:10Z"


@pytest.mark.parametrize("fallback", ["agent", "nowhere"])
def test_a_fallback_that_cannot_carry_the_alert_leaves_it_to_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fallback: str
) -> None:
    spec = coordinator_spec({"agent": {"command": ["/bin/false"]}}, attempts=1, fallback=fallback)
    state = tmp_path / "state"
    enqueue(state, message(channel="agent", body="the body text"))
    assert deliver(spec, state, T0).dead == 1
    err = capsys.readouterr().err
    assert f"undelivered (fallback {fallback!r} unusable): [agent] Bruba: 2 new" in err
    assert dead(state) == ["m1.json"]


def test_the_dead_letter_alert_names_the_config_and_the_message(tmp_path: Path) -> None:
    """Read from the alert's own queue file: the fallback fails too, so it is kept in dead/."""
    spec = coordinator_spec(
        {"agent": {"command": ["/bin/false"]}, "ops": {"command": ["/bin/false"]}},
        attempts=1,
        fallback="ops",
    )
    state = tmp_path / "state"

    def alert_of(mid: str) -> dict[str, Any]:
        entry = json.loads((state / "outbox" / "dead" / f"dead-{mid}.json").read_text())
        return dict(entry["message"])

    enqueue(state, message(channel="agent"))
    deliver(spec, state, T0)
    alert = alert_of("m1")
    assert alert["title"] == "bruba: a message could not be delivered"
    assert alert["evidence"] == {"dead_letter": {"id": "m1", "channel": "agent"}}
    enqueue(state, message("m2", channel="agent"))
    deliver({**spec, "config": None}, state, T0)
    assert alert_of("m2")["title"] == "vigil: a message could not be delivered"


def test_the_outbox_is_shown_and_delivered_oldest_queued_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}, "agent": {"command": ["/bin/false"]}})
    state = tmp_path / "state"
    for mid, channel, second in (
        ("b-first", "sink", 0),
        ("a-second", "sink", 5),
        ("c-retry", "agent", 9),
    ):
        monkeypatch.setenv("VIGIL_NOW", f"2026-02-02T09:00:0{second}Z")
        enqueue(state, message(mid, channel=channel))
    monkeypatch.delenv("VIGIL_NOW")
    assert [row["id"] for row in outbox_status(state)] == ["b-first", "a-second", "c-retry"]
    deliver(spec, state, T0 + timedelta(minutes=1))
    assert [line["id"] for line in lines(sink)] == ["b-first", "a-second"]
    [row] = outbox_status(state)
    assert row == {
        "file": "c-retry.json",
        "id": "c-retry",
        "channel": "agent",
        "title": "Bruba: 2 new",
        "created": "2026-02-02T09:00:00Z",
        "queued": "2026-02-02T09:00:09Z",
        "state": "retrying",
        "attempts": 1,
        "last_error": row["last_error"],
        "last_attempt": "2026-02-02T09:01:00Z",
        "next_attempt": "2026-02-02T09:01:30Z",
        "exit_status": 1,
    }


def test_a_failing_commands_output_never_carries_a_credential_into_the_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-test-4f9a1c2e7b3d5f60"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "agent-token").write_text(secret + "\n")
    script = f"echo 'auth failed for {secret}' >&2; exit 3"
    spec = coordinator_spec({"agent": {"command": ["/bin/sh", "-c", script]}})
    state = tmp_path / "state"
    enqueue(state, message(channel="agent"))
    assert deliver_due(spec, state, T0, credentials).retrying == 1
    [row] = outbox_status(state)
    assert "auth failed for" in row["last_error"] and secret not in row["last_error"]
    journal = capsys.readouterr().err
    assert "message m1 to agent: attempt 1 of 5 failed: " in journal
    assert secret not in journal and secret not in (state / "outbox" / "m1.json").read_text()


def test_the_alert_about_an_unreadable_queue_file_says_which_and_why(tmp_path: Path) -> None:
    spec = coordinator_spec(
        {"ops": {"command": ["/bin/false"]}}, attempts=1, fallback="ops"
    )  # the fallback fails too: the alert is kept in dead/ to be read whole
    state = tmp_path / "state"
    (state / "outbox").mkdir(parents=True)
    (state / "outbox" / "broken.json").write_text("[]")
    deliver(spec, state, T0)
    entry = json.loads((state / "outbox" / "dead" / "dead-broken.json").read_text())
    alert = entry["message"]
    assert alert["body"] == (
        "To ?: the queue file is not a readable message (expected an object)."
        " It is kept in outbox/dead/.\n\nunreadable queue file broken.json"
    )
    assert alert["evidence"] == {"dead_letter": {"id": "broken", "channel": "?"}}


def test_messages_held_by_quiet_hours_are_each_counted_as_waiting(tmp_path: Path) -> None:
    sink = tmp_path / "sink.jsonl"
    spec = coordinator_spec({"sink": {"file": str(sink)}})
    spec["coordinator"]["quiet_hours"] = {"start": "08:00", "end": "10:00", "timezone": "UTC"}
    state = tmp_path / "state"
    for mid in ("q1", "q2"):
        enqueue(state, message(mid))
    report = deliver(spec, state, T0)
    assert (report.waiting, report.delivered) == (2, 0) and not sink.exists()

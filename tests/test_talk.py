"""Answering back, in the coordinator: codes in messages, replies, snoozes, silences, inhibit
rules, maintenance windows, deduplicated conditions, recovery lines and flapping. The real
coordinator runs in-process at chosen moments, findings through the inbox, messages through the
outbox to a file channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

MONDAY_9AM = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def reminders(*items: tuple[str, str]) -> dict[str, Any]:
    return {
        "source": "reminder-check",
        "timestamp": "2026-02-02T14:00:00Z",
        "overdue": [{"id": key, "title": title, "days_overdue": 1} for key, title in items],
    }


def reply(text: str, number: int = 1, via: str = "phone") -> dict[str, Any]:
    return {
        "source": "vigil",
        "kind": "reply",
        "id": f"reply-{via}-{number}",
        "via": via,
        "from": "123",
        "text": text,
        "timestamp": "2026-02-02T14:00:00Z",
    }


def failure(job: str, n: int) -> dict[str, Any]:
    return {
        "source": "vigil",
        "kind": "failure",
        "job": job,
        "id": f"failure-{job}-{n}",
        "message": f"bruba-{job} failed (exit-code, status 1)",
        "urgent": True,
        "priority": 100,
    }


def recovered(job: str, n: int) -> dict[str, Any]:
    return {"source": "vigil", "kind": "recovered", "job": job, "id": f"recovered-{job}-{n}"}


def bodies(state: Path) -> list[str]:
    return [m["body"] for m in delivered(state)]


def step(spec: dict[str, Any], state: Path, now: datetime, *findings: dict[str, Any]) -> list[str]:
    """Drop the findings, run the coordinator at `now`; what it delivered in that run."""
    before = len(bodies(state))
    for finding in findings:
        drop(state, {"timestamp": now.isoformat(), **finding})
    heartbeat(spec, now)
    return bodies(state)[before:]


def test_every_item_carries_its_code_and_keeps_it(state: Path) -> None:
    spec = bruba_spec(state)
    first = step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent"), ("B", "Call mum")))
    assert first == ["• Reminder: Pay rent is overdue [r1]\n• Reminder: Call mum is overdue [r2]"]
    later = MONDAY_9AM + timedelta(hours=20)
    again = step(spec, state, later, reminders(("B", "Call mum"), ("C", "Water plants")))
    # A is resolved (gone from the report): r1 is closed, and not given again for a day.
    assert again == ["• Reminder: Water plants is overdue [r3]"]
    refs = json.loads((state / "state/refs.json").read_text())["refs"]
    assert refs["r1"]["closed"] and refs["r1"]["why"] == "resolved"
    assert refs["r2"]["subject"] == "nag:reminders:B" and not refs["r2"].get("closed")


def test_done_resolves_the_nag_item_and_the_next_heartbeat_does_not_nag_it(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    answer = step(spec, state, MONDAY_9AM + timedelta(minutes=5), reply("done r1"))
    assert answer == ["• r1 done: Reminder: Pay rent is overdue"]
    for day in range(1, 10):  # the detector still reports it: no nag
        later = MONDAY_9AM + timedelta(days=day)
        assert step(spec, state, later, reminders(("A", "Pay rent"))) == []
    items = json.loads((state / "state/nag-reminders.json").read_text())["items"]
    assert items["A"]["status"] == "stopped" and items["A"]["acknowledged"]


def test_a_reply_written_twice_is_applied_once(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    first = step(spec, state, MONDAY_9AM + timedelta(minutes=1), reply("snooze r1 2h", 7))
    again = step(spec, state, MONDAY_9AM + timedelta(minutes=2), reply("snooze r1 2h", 7))
    assert len(first) == 1 and again == []
    refs = json.loads((state / "state/refs.json").read_text())["refs"]
    assert refs["r1"]["snoozed"] == "2026-02-02T16:01:00Z"  # from the first, not the second


def test_snooze_says_it_again_after_two_hours_and_not_before(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    answer = step(spec, state, MONDAY_9AM, reply("snooze r1 2h"))
    assert answer == ["• r1 snoozed until Mon 2 Feb 11:00 EST: Reminder: Pay rent is overdue"]
    for minutes in (15, 60, 119):
        assert step(spec, state, MONDAY_9AM + timedelta(minutes=minutes)) == []
    fired = step(spec, state, MONDAY_9AM + timedelta(minutes=121))
    assert fired == ["• (snoozed) Reminder: Pay rent is overdue [r1]"]
    assert step(spec, state, MONDAY_9AM + timedelta(minutes=136)) == []  # once
    silenced = json.loads((state / "state/held.json").read_text())
    assert silenced["alerts"] == []


def test_snooze_across_the_clock_change_ends_at_the_wall_time_meant(state: Path) -> None:
    spec = bruba_spec(state)
    saturday = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # 18:00 EST; clocks go forward overnight
    step(spec, state, saturday, reminders(("A", "Pay rent")))
    step(spec, state, saturday, reply("snooze r1 tomorrow 9:00"))
    assert step(spec, state, datetime(2026, 3, 8, 12, 59, tzinfo=UTC)) == []  # 08:59 EDT
    assert step(spec, state, datetime(2026, 3, 8, 13, 0, tzinfo=UTC)) != []  # 09:00 EDT


def test_unknown_and_closed_replies_get_one_short_answer_and_change_nothing(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    before = (state / "state/nag-reminders.json").read_text()
    [answer] = step(spec, state, MONDAY_9AM, reply("please stop nagging", 1))
    assert "'please' is not something vigil does" in answer
    [answer] = step(spec, state, MONDAY_9AM, reply("done r9", 2))
    assert answer == "• r9: no such item"
    [answer] = step(spec, state, MONDAY_9AM, reply("done r1 tomorrow", 3))
    assert answer == "• understood done r1, not 'tomorrow': nothing done"
    assert (state / "state/nag-reminders.json").read_text() == before
    step(spec, state, MONDAY_9AM, reply("done r1", 4))
    [answer] = step(spec, state, MONDAY_9AM, reply("done r1", 5))
    assert answer.startswith("• r1 is closed already (done)")


def test_stop_never_nags_the_item_again_even_after_it_comes_back(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    step(spec, state, MONDAY_9AM, reply("stop r1"))
    step(spec, state, MONDAY_9AM + timedelta(days=1), reminders(("B", "Other")))  # A goes away
    for day in range(2, 12):  # ... and comes back
        sent = step(spec, state, MONDAY_9AM + timedelta(days=day), reminders(("A", "Pay rent")))
        assert not any("Pay rent" in body for body in sent)


def test_status_lists_what_is_open(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent"), ("B", "Call mum")))
    step(spec, state, MONDAY_9AM, reply("snooze r2 tomorrow", 1))
    [answer] = step(spec, state, MONDAY_9AM, reply("status", 2))
    assert answer.splitlines() == [
        "• [r1] Reminder: Pay rent is overdue",
        "[r2] Reminder: Call mum is overdue (snoozed until Tue 3 Feb 09:00 EST)",
    ]


def test_mute_silences_a_nag_rule_for_a_while_and_records_what_it_held_back(state: Path) -> None:
    spec = bruba_spec(state)
    [answer] = step(spec, state, MONDAY_9AM, reply("mute reminders 3h"))
    assert answer.startswith("• muted reminders until Mon 2 Feb 12:00 EST")
    assert step(spec, state, MONDAY_9AM + timedelta(hours=1), reminders(("A", "Pay rent"))) == []
    record = json.loads((state / "state/silenced.json").read_text())["entries"]
    assert [(e["action"], e["text"]) for e in record] == [
        ("dropped", "Reminder: Pay rent is overdue")
    ]
    assert record[0]["by"].startswith("silence:s")
    items = json.loads((state / "state/nag-reminders.json").read_text())["items"]
    assert items["A"]["nagCount"] == 0  # never told: the ladder has not moved
    later = step(spec, state, MONDAY_9AM + timedelta(hours=3), reminders(("A", "Pay rent")))
    assert later == ["• Reminder: Pay rent is overdue [r1]"]


def test_silences_from_the_command_line_and_their_expiry(state: Path) -> None:
    spec = bruba_spec(state)
    silence = {
        "id": "s1a2b",
        "matchers": {"source": ["reminder-check"]},
        "starts": "2026-02-02T14:00:00Z",
        "ends": "2026-02-03T14:00:00Z",
        "comment": "on holiday",
        "by": "cli",
    }
    step(spec, state, MONDAY_9AM, {"source": "vigil", "kind": "silence-add", "silence": silence})
    assert step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent"))) == []
    expire = {"source": "vigil", "kind": "silence-expire", "silence_id": "s1a2b"}
    step(spec, state, MONDAY_9AM + timedelta(hours=1), expire)
    sent = step(spec, state, MONDAY_9AM + timedelta(hours=1), reminders(("A", "Pay rent")))
    assert sent == ["• Reminder: Pay rent is overdue [r1]"]
    [kept] = json.loads((state / "state/silences.json").read_text())["silences"]
    assert kept["expired"] == "2026-02-02T15:00:00Z" and kept["matched"] == 1
    # Pruned some days after it ended, by a run with something to say.
    step(spec, state, MONDAY_9AM + timedelta(days=6), reminders(("Z", "New")))
    assert json.loads((state / "state/silences.json").read_text())["silences"] == []


def with_rules(state: Path, **extra: Any) -> dict[str, Any]:
    spec = bruba_spec(state)
    spec.update(extra)
    return spec


GATEWAY_DOWN = {
    "gateway-down": {
        "while": {"job": ["gateway-check"], "kind": ["failure"]},
        "hold": {"kind": ["failure"], "job": ["reminder-check", "calendar-prep"]},
        "drop": False,
    }
}


def test_an_inhibited_failure_goes_out_once_the_gateway_recovers(state: Path) -> None:
    spec = with_rules(state, inhibit=GATEWAY_DOWN)
    spec["jobs"].append("gateway-check")
    gateway = step(spec, state, MONDAY_9AM, failure("gateway-check", 1))
    assert gateway == ["• bruba-gateway-check failed (exit-code, status 1) [r1]"]
    held = step(spec, state, MONDAY_9AM + timedelta(minutes=5), failure("reminder-check", 1))
    assert held == []
    assert step(spec, state, MONDAY_9AM + timedelta(minutes=20)) == []  # still down
    released = step(spec, state, MONDAY_9AM + timedelta(minutes=30), recovered("gateway-check", 1))
    assert released == [  # bruba says when a failing job recovers (notify_recovered)
        "• bruba-reminder-check failed (exit-code, status 1) [r2]\n"
        "• gateway-check recovered: it ran fine again (since Mon 2 Feb 09:00 EST) [r1]"
    ]
    record = json.loads((state / "state/silenced.json").read_text())["entries"]
    assert [(e["by"], e["action"]) for e in record] == [("inhibit:gateway-down", "held")]


def test_an_inhibit_rule_that_drops_records_why(state: Path) -> None:
    rules = {"gateway-down": {**GATEWAY_DOWN["gateway-down"], "drop": True}}
    spec = with_rules(state, inhibit=rules)
    step(spec, state, MONDAY_9AM, failure("gateway-check", 1))
    step(spec, state, MONDAY_9AM, failure("reminder-check", 1))
    after = step(spec, state, MONDAY_9AM + timedelta(hours=1), recovered("gateway-check", 1))
    assert [line for line in after if "reminder-check" in line] == []
    record = json.loads((state / "state/silenced.json").read_text())["entries"]
    assert [(e["by"], e["action"]) for e in record] == [("inhibit:gateway-down", "dropped")]


def test_a_maintenance_window_holds_its_jobs_alerts_until_it_ends(state: Path) -> None:
    window = {
        "backup": {
            "match": {"job": ["reminder-check"]},
            "start": "08:30",
            "end": "10:00",
            "days": [0],  # Mondays
            "timezone": None,
            "drop": False,
        }
    }
    spec = with_rules(state, maintenance=window)
    assert step(spec, state, MONDAY_9AM, failure("reminder-check", 1)) == []
    assert step(spec, state, MONDAY_9AM, failure("calendar-prep", 1)) != []  # not its job
    released = step(spec, state, MONDAY_9AM + timedelta(hours=1))
    assert released == ["• bruba-reminder-check failed (exit-code, status 1) [r2]"]
    tuesday = MONDAY_9AM + timedelta(days=1)  # not a day of the window
    assert step(spec, state, tuesday, failure("reminder-check", 2)) != []


def test_a_recovered_job_sends_one_resolved_line(state: Path) -> None:
    spec = bruba_spec(state)
    spec["coordinator"]["notify_recovered"] = True
    step(spec, state, MONDAY_9AM, failure("reminder-check", 1))
    step(spec, state, MONDAY_9AM + timedelta(hours=5), failure("reminder-check", 2))
    sent = step(spec, state, MONDAY_9AM + timedelta(hours=9), recovered("reminder-check", 1))
    assert sent == [
        "• reminder-check recovered: it ran fine again (since Mon 2 Feb 09:00 EST) [r1]"
    ]
    again = step(spec, state, MONDAY_9AM + timedelta(hours=10), recovered("reminder-check", 2))
    assert again == []


def test_ten_flaps_in_an_hour_give_one_resolved_line(state: Path) -> None:
    spec = bruba_spec(state)
    spec["coordinator"]["notify_recovered"] = True
    sent: list[str] = []
    for n in range(10):
        at = MONDAY_9AM + timedelta(minutes=6 * n)
        sent += step(spec, state, at, failure("reminder-check", n))
        sent += step(spec, state, at + timedelta(minutes=3), recovered("reminder-check", n))
    lines = [line for body in sent for line in body.splitlines()]
    assert len([line for line in lines if "recovered" in line]) == 1
    assert len([line for line in lines if "failed" in line]) == 1
    assert len([line for line in lines if "flapping" in line]) == 1
    steady = MONDAY_9AM + timedelta(hours=3)  # an hour without a change: news again
    assert step(spec, state, steady, failure("reminder-check", 99)) != []


def test_a_deduplicated_condition_is_one_item_until_it_is_resolved(state: Path) -> None:
    spec = bruba_spec(state)
    spec["coordinator"]["sources"]["disk"] = {
        "external": True, "cap": None, "priority": 0, "to": None, "urgent": False,
        "dedup_key": "{host}:{mount}", "notify_recovered": True,
    }  # fmt: skip
    full = {"source": "disk", "host": "nas", "mount": "/srv", "message": "nas /srv 91% full"}
    first = step(spec, state, MONDAY_9AM, full)
    assert first == ["• nas /srv 91% full [r1]"]
    for hour in range(1, 6):
        assert step(spec, state, MONDAY_9AM + timedelta(hours=hour), full) == []
    cleared = step(spec, state, MONDAY_9AM + timedelta(hours=7), {**full, "resolved": True})
    assert cleared == ["• disk: nas:/srv is resolved (since Mon 2 Feb 09:00 EST) [r1]"]
    refs = json.loads((state / "state/refs.json").read_text())["refs"]
    assert refs["r1"]["repeats"] == 5


def test_a_run_killed_before_it_wrote_the_codes_keeps_them(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the message and held.json, before refs.json: the code told stays the
    item's (the next run adopts it from held.json), and is not given to another item."""
    from runner.talk.state import Talk

    spec = bruba_spec(state)
    save = Talk.save

    def killed(*_args: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(Talk, "save", killed)
    with pytest.raises(SystemExit):
        step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    monkeypatch.setattr(Talk, "save", save)
    assert bodies(state) == [] and not (state / "state/refs.json").exists()
    heartbeat(spec, MONDAY_9AM)  # the rerun of the claim: the message goes out once
    assert bodies(state) == ["• Reminder: Pay rent is overdue [r1]"]
    later = step(
        spec,
        state,
        MONDAY_9AM + timedelta(hours=1),
        reminders(("A", "Pay rent"), ("B", "Call mum")),
    )
    assert later == ["• Reminder: Call mum is overdue [r2]"]
    [answer] = step(spec, state, MONDAY_9AM + timedelta(hours=2), reply("done r1"))
    assert answer == "• r1 done: Reminder: Pay rent is overdue"


def test_a_bad_time_in_a_reply_is_answered_and_the_rest_is_delivered(state: Path) -> None:
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    for n, text in enumerate(("snooze r1 tmrw", "snooze r1 99999999d", "mute reminders yesterday",
                              "snooze r1 2026-13-45 9:00", "snooze r1 today 8:00"), 1):  # fmt: skip
        failed = failure("calendar-prep", n)
        sent = step(spec, state, MONDAY_9AM + timedelta(minutes=n), reply(text, n), failed)
        lines = sent[0].splitlines()
        assert len(lines) == 2 and "nothing done" in lines[1 - lines.index(next(
            line for line in lines if "calendar-prep failed" in line))], lines  # fmt: skip
    refs = json.loads((state / "state/refs.json").read_text())["refs"]
    assert "snoozed" not in refs["r1"]
    assert not (state / "state/silences.json").exists()


def test_a_snoozed_failure_that_recovers_is_not_said_again(state: Path) -> None:
    spec = with_rules(state, inhibit=GATEWAY_DOWN)
    step(spec, state, MONDAY_9AM, failure("gateway-check", 1))
    step(spec, state, MONDAY_9AM, reply("snooze r1 2h"))
    for n in range(2, 8):  # it keeps failing through the snooze: one line when it ends, not six
        step(spec, state, MONDAY_9AM + timedelta(minutes=15 * n), failure("gateway-check", n))
    held = json.loads((state / "state/held.json").read_text())["alerts"]
    assert len(held) == 1
    step(spec, state, MONDAY_9AM + timedelta(minutes=100), failure("reminder-check", 1))
    sent = step(spec, state, MONDAY_9AM + timedelta(minutes=110), recovered("gateway-check", 1))
    assert sent == [  # the reminder-check failure, held while the gateway failed; the recovery
        "• bruba-reminder-check failed (exit-code, status 1) [r2]\n"
        "• gateway-check recovered: it ran fine again (since Mon 2 Feb 09:00 EST) [r1]"
    ]
    assert step(spec, state, MONDAY_9AM + timedelta(hours=3)) == []  # the snooze's end: nothing


def test_a_failure_and_its_recovery_in_one_run_say_nothing(state: Path) -> None:
    spec = with_rules(state, inhibit=GATEWAY_DOWN)
    stamp = {"timestamp": MONDAY_9AM.isoformat()}
    drop(state, {**failure("gateway-check", 1), **stamp}, "vigil-1.json")  # in this order
    drop(state, {**recovered("gateway-check", 1), **stamp}, "vigil-2.json")
    heartbeat(spec, MONDAY_9AM)
    assert bodies(state) == []
    assert step(spec, state, MONDAY_9AM, failure("reminder-check", 1)) != []  # nothing inhibits
    drop(state, {**recovered("gateway-check", 2), **stamp}, "vigil-3.json")  # the other order:
    drop(state, {**failure("gateway-check", 2), **stamp}, "vigil-4.json")  # failing again
    heartbeat(spec, MONDAY_9AM + timedelta(minutes=5))
    assert bodies(state)[-1] == "• bruba-gateway-check failed (exit-code, status 1) [r2]"


@pytest.mark.parametrize(
    "refs",
    [
        {
            "version": 1,
            "refs": {"r1": {"subject": "x", "told": "2026-02-02T13:00:00Z", "alert": {}}},
        },
        {"version": 1, "refs": {}, "flaps": []},
        {"version": 1, "refs": {}, "flaps": {"x": {"changes": "abc"}}},
        {"version": 1, "refs": {"rx": {"subject": "x", "told": "2026-02-02T13:00:00Z"}}},
        {"version": 2, "refs": {}},
        ["not", "an", "object"],
    ],
)
def test_codes_of_another_shape_are_set_aside_and_delivery_goes_on(
    state: Path, refs: object
) -> None:
    spec = with_rules(state, inhibit=GATEWAY_DOWN)
    (state / "state").mkdir(parents=True)
    (state / "state/refs.json").write_text(json.dumps(refs))
    sent = step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    assert any("Pay rent is overdue" in body for body in sent), sent
    [answer] = step(spec, state, MONDAY_9AM, reply("status"))
    assert "Pay rent" in answer
    assert list((state / "state/rejected").iterdir())  # the odd file, kept aside


def test_a_mute_applied_again_after_a_kill_makes_one_silence(state: Path) -> None:
    spec = bruba_spec(state)
    [first] = step(spec, state, MONDAY_9AM, reply("mute reminders 3h", 5))
    (state / "state/replies.json").unlink()  # killed before the reply's id was kept
    [again] = step(spec, state, MONDAY_9AM, reply("mute reminders 3h", 5))
    assert again == first
    silences = json.loads((state / "state/silences.json").read_text())["silences"]
    assert len(silences) == 1 and silences[0]["reply"] == "reply-phone-5"


ABSENCE = """\
name: ab
timezone: America/New_York
state_dir: {state}
channels: {sink: {file: "{state}/sink.jsonl"}}
watches:
  nightly:
    absence: {source: backup, for: 26h}
coordinator:
  deliver_to: [sink]
  notify_recovered: true
  sources: {backup: {external: true}}
"""


def test_a_watch_satisfied_late_says_so_once(vigil, tmp_path: Path) -> None:
    from tests.coordinator_support import compiled_spec

    spec = compiled_spec(vigil, tmp_path, ABSENCE)
    state = tmp_path / "state"
    done = {"source": "backup", "message": "backup done"}
    step(spec, state, MONDAY_9AM, done)  # the watch counts from here
    heartbeat(spec, MONDAY_9AM + timedelta(hours=27))
    sink = [m["body"] for m in delivered(state, "sink")]
    assert sink[-1] == (
        "• nightly: nothing from backup (last finding 2026-02-02T14:00:00Z, 27 h ago) [r2]"
    )
    drop(state, {**done, "timestamp": MONDAY_9AM.isoformat()})
    heartbeat(spec, MONDAY_9AM + timedelta(hours=30))
    late = [m["body"] for m in delivered(state, "sink")][2:]
    assert late == ["• nightly: satisfied late, over now [r2]\n• backup done [r1]"]
    drop(state, {**done, "timestamp": MONDAY_9AM.isoformat()})
    heartbeat(spec, MONDAY_9AM + timedelta(hours=31))
    assert [m["body"] for m in delivered(state, "sink")][4:] == []  # once


def disk_spec(state: Path) -> dict[str, Any]:
    spec = bruba_spec(state)
    spec["coordinator"]["sources"]["disk"] = {
        "external": True, "cap": None, "priority": 0, "to": None, "urgent": False,
        "dedup_key": "{host}:{mount}", "notify_recovered": True,
    }  # fmt: skip
    return spec


FULL = {"source": "disk", "host": "nas", "mount": "/srv", "message": "nas /srv 91% full"}


def test_a_condition_reported_for_weeks_stays_one_item(state: Path) -> None:
    spec = disk_spec(state)
    said = [step(spec, state, MONDAY_9AM + timedelta(days=day), FULL) for day in range(16)]
    assert said[0] == ["• nas /srv 91% full [r1]"] and not any(said[1:])


@pytest.mark.parametrize(("verb", "again"), [("done", True), ("stop", False)])
def test_a_condition_acknowledged_is_quiet_until_resolved_stopped_for_good(
    state: Path, verb: str, again: bool
) -> None:
    spec = disk_spec(state)
    step(spec, state, MONDAY_9AM, FULL)
    [answer] = step(spec, state, MONDAY_9AM, reply(f"{verb} r1"))
    assert answer.startswith("• r1 acknowledged: quiet until it is resolved" if again
                             else "• r1 stopped: never again")  # fmt: skip
    assert step(spec, state, MONDAY_9AM + timedelta(hours=5), FULL) == []
    resolved = step(spec, state, MONDAY_9AM + timedelta(hours=6), {**FULL, "resolved": True})
    assert resolved == ["• disk: nas:/srv is resolved (since Mon 2 Feb 09:00 EST) [r1]"]
    back = step(spec, state, MONDAY_9AM + timedelta(days=1), FULL)
    assert back == (["• nas /srv 91% full [r2]"] if again else [])


@pytest.mark.parametrize("told", [[], "x", {"r9": {}}, {"r9": {"text": 1}}, {"x": {}}])
def test_a_held_file_whose_told_codes_are_of_another_shape_stops_nothing(
    state: Path, told: object
) -> None:
    spec = bruba_spec(state)
    (state / "state").mkdir(parents=True)
    held = {"version": 1, "alerts": [], "occasion": "abc", "queued": {}, "told": told}
    (state / "state/held.json").write_text(json.dumps(held))
    for hour in range(3):
        sent = step(spec, state, MONDAY_9AM + timedelta(hours=hour), failure("calendar-prep", hour))
        assert len(sent) == 1, sent


def test_on_a_fleet_what_the_person_asks_is_not_applied_yet(state: Path) -> None:
    """Any host may write into its inbox: one machine must not silence the others' alerts."""
    spec = bruba_spec(state)
    step(spec, state, MONDAY_9AM, reminders(("A", "Pay rent")))
    spec["fleet"] = {"host": "laptop"}
    assert step(spec, state, MONDAY_9AM, reply("mute all 3h")) == []
    assert not (state / "state/silences.json").exists()

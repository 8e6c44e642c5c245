"""The watch rules on their own (runner/rules/watches.py), in-process: the alert an instance
raises (text, routes, priority, key, evidence), match conditions, and transitions. The
coordinator's use of them is in test_watches.py; under a real manager in
test_watches_systemd.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.alerts import DEFAULT_ROUTE
from runner.rules.watches import (
    alert,
    check_absence,
    follow_up,
    instances,
    matches,
    on_ack,
    on_deadline_result,
    on_match,
    on_source_seen,
    remember_messages,
    settle,
    transition,
)
from runner.rules.watchstate import NEXT, IllegalTransition, WatchState

NOW = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)
MAIL = {"source": "mail", "items": "messages", "key": "id"}


def fired(evidence: Any = None, **extra: Any) -> dict[str, Any]:
    instance: dict[str, Any] = {"state": "fired", **extra}
    if evidence is not None:
        instance["evidence"] = evidence
    return instance


def test_an_alert_says_what_its_template_asks_and_counts_its_repeats() -> None:
    watch = {
        "match": MAIL,
        "message": "{watch}|{key}|{state}|{evidence}|{deadline}|{source}",
    }
    instance = fired({"text": "subject=outage"}, deadline="2027-03-01T15:00:00Z", alerts=2)
    first = alert("urgent-mail", watch, "m1", instance, NOW)
    assert first.text == "urgent-mail|m1|fired|subject=outage|2027-03-01T15:00:00Z|mail"
    assert first.key == "watch:urgent-mail:m1:fired:3"  # the third alert of the instance
    assert first.subject == "watch:urgent-mail:m1"
    assert (instance["alerts"], instance["lastAlert"]) == (3, "2027-03-01T14:00:00Z")
    assert first.evidence == {
        "watch": "urgent-mail",
        "key": "m1",
        "state": "fired",
        "evidence": {"text": "subject=outage"},
    }
    assert first.source == "vigil"
    bare = alert("w", {"absence": {"source": "pulse"}}, "silence", fired("2 days"), NOW)
    assert bare.text == "w: nothing from pulse (2 days)"  # evidence that is not an object
    assert bare.key == "watch:w:silence:fired:1"
    blank = alert("w", {"match": MAIL, "message": "[{deadline}][{source}]"}, "k", fired(), NOW)
    assert blank.text == "[][mail]"
    no_source = alert(
        "w", {"deadline": {"at": "09:00"}, "message": "[{source}]"}, "k", fired(), NOW
    )
    assert no_source.text == "[]"


def test_an_urgent_watch_alerts_urgently_and_first() -> None:
    calm = alert("w", {"match": MAIL}, "k", fired(), NOW)
    loud = alert("w", {"match": MAIL, "urgent": True}, "k", fired(), NOW)
    assert (calm.urgent, calm.priority) == (False, 50)
    assert (loud.urgent, loud.priority) == (True, 100)


def test_routes_notify_hand_off_and_escalation() -> None:
    assert alert("w", {"match": MAIL}, "k", fired(), NOW).to is None  # deliver_to
    notify = {"match": MAIL, "notify": ["pager"]}
    assert alert("w", notify, "k", fired(), NOW).to == ["pager"]
    handoff = {"match": MAIL, "handoff": "agent"}
    assert alert("w", handoff, "k", fired(), NOW).to == [DEFAULT_ROUTE, "agent"]
    both = {**notify, "handoff": "agent"}
    assert alert("w", both, "k", fired(), NOW).to == ["pager", "agent"]
    escalating = {**both, "escalate": {"after": 3600, "to": ["phone"]}}
    up = alert("w", escalating, "k", fired(), NOW, escalation=True)
    assert up.to == ["phone"]  # the escalation goes only where it is told
    assert up.text.startswith("escalated, not acknowledged: ")
    assert up.key == "watch:w:k:fired:1:esc" and up.subject == "watch:w:k:esc"
    again = alert("w", escalating, "k", fired(), NOW)
    assert again.key == "watch:w:k:fired:1" and again.subject == "watch:w:k"


@pytest.mark.parametrize(
    ("test", "hits"),
    [
        ({"field": "subject", "equals": "outage"}, ["a"]),
        ({"field": "subject", "not_equals": "outage"}, ["b", "c", "d"]),
        ({"field": "subject", "contains": "out"}, ["a"]),
        ({"field": "tags", "contains": "vip"}, ["b"]),
        ({"field": "subject", "regex": "(?i)^HELLO"}, ["c"]),
        ({"field": "size", "gt": 10}, ["c"]),
        ({"field": "size", "gte": 10}, ["b", "c"]),
        ({"field": "size", "lt": 10}, ["a"]),
        ({"field": "size", "lte": 10}, ["a", "b"]),
        # A compiled spec holds every bound as a number of JSON's one kind (`gte: 10` is 10.0):
        # a whole-number item compares with it as a number, not as "not comparable".
        ({"field": "size", "gt": 10.0}, ["c"]),
        ({"field": "size", "gte": 10.0}, ["b", "c"]),
        ({"field": "size", "lt": 10.0}, ["a"]),
        ({"field": "size", "lte": 10.0}, ["a", "b"]),
        ({"field": "flag", "gt": 0}, []),  # a boolean is not a number
        ({"field": "from.name", "equals": "Ana"}, ["d"]),  # a dotted path
    ],
)
def test_each_kind_of_condition(test: dict[str, Any], hits: list[str]) -> None:
    finding = {
        "source": "mail",
        "messages": [
            {"id": "a", "subject": "outage", "size": 5, "flag": True},
            {"id": "b", "subject": "news", "size": 10, "tags": ["vip"]},
            {"id": "c", "subject": "hello there", "size": 11},
            {"id": "d", "subject": "re", "from": {"name": "Ana"}},
        ],
    }
    found = matches({**MAIL, "all": [test]}, finding)
    assert [key for key, _ in found] == hits


def test_a_test_without_an_operator_holds_for_nothing() -> None:
    """Validation requires an operator; a hand-written spec without one matches no item
    rather than every item."""
    finding = {"source": "mail", "messages": [{"id": "a", "size": 5}]}
    assert matches({**MAIL, "all": [{"field": "size"}]}, finding) == []


def test_settled_once_every_message_is_delivered_whatever_comes_before() -> None:
    """An instance still armed (no message yet) does not stop the ones after it from being
    settled; the hand-off's exit status is kept."""
    state: dict[str, Any] = {
        "instances": {
            "armed": {"state": "armed"},
            "fired-no-message": {"state": "fired"},
            "half": fired(messages={"default": "m1", "agent": "m2"}),
            "done": fired({"text": "outage"}, messages={"default": "m3", "agent": "m4"}),
        }
    }
    sent = {"at": "2027-03-01T13:59:00Z"}
    ledger = {"m1": {**sent, "exit_status": None}, "m3": sent, "m4": {**sent, "exit_status": 0}}
    settle("w", {"match": MAIL, "handoff": "agent"}, state, ledger, NOW)
    found = state["instances"]
    assert [found[k]["state"] for k in found] == ["armed", "fired", "fired", "delivered"]
    assert found["done"]["handoff"] == {"channel": "agent", "exit_status": 0, "accepted": True}
    assert found["done"]["history"][-1]["evidence"] == {"text": "outage"}  # what was delivered
    assert "handoff" not in found["half"]  # the agent has not had it yet


def test_all_and_any_together_and_what_is_not_matched() -> None:
    finding = {
        "source": "mail",
        "messages": [
            {"id": "a", "subject": "outage", "size": 50},
            {"id": "b", "subject": "outage", "size": 5},
            {"id": "c", "subject": "hello", "size": 50},
            "not an object",
        ],
    }
    condition = {
        **MAIL,
        "all": [{"field": "subject", "equals": "outage"}],
        "any": [{"field": "size", "gt": 20}, {"field": "size", "lt": 1}],
    }
    assert [key for key, _ in matches(condition, finding)] == ["a"]
    assert matches(condition, {**finding, "source": "other"}) == []
    everything = matches(MAIL, finding)  # no conditions: every object item
    assert [key for key, _ in everything] == ["a", "b", "c"]


def test_an_item_without_its_key_is_named_by_the_finding_id_or_its_content() -> None:
    condition = {"source": "mail", "items": "messages", "key": "id"}
    with_id = {"source": "mail", "id": "f1", "messages": [{"subject": "x"}]}
    assert [key for key, _ in matches(condition, with_id)] == ["f1"]
    without = {"source": "mail", "messages": [{"subject": "x"}]}
    [(digest, _)] = matches(condition, without)
    assert len(digest) == 12 and digest == matches(condition, without)[0][0]  # stable
    whole = {"source": "mail", "subject": "the finding itself", "id": "f2"}
    assert [key for key, _ in matches({"source": "mail"}, whole)] == ["f2"]


def test_a_match_fires_once_per_key_with_the_items_fields_as_evidence() -> None:
    watch = {"match": {**MAIL, "all": [{"field": "subject", "contains": "outage"}]}}
    finding = {
        "source": "mail",
        "timestamp": "2027-03-01T13:59:00Z",
        "messages": [{"id": "m1", "subject": "outage", "size": 3, "nested": {"x": 1}}],
    }
    state: dict[str, Any] = {}
    [first] = on_match("w", watch, state, finding, NOW)
    assert first.text == "w: id=m1, subject=outage, size=3"
    instance = state["instances"]["m1"]
    assert instance["state"] == "fired" and instance["armedAt"] == "2027-03-01T14:00:00Z"
    assert instance["evidence"]["finding"] == "2027-03-01T13:59:00Z"
    assert on_match("w", watch, state, finding, NOW) == []  # one item fires once


def test_a_transition_is_kept_with_its_time_and_evidence(capsys: pytest.CaptureFixture) -> None:
    state: dict[str, Any] = {}
    instance = instances(state).setdefault("k", {})
    assert state["version"] == 1
    transition("w", "k", instance, WatchState.ARMED, NOW)
    transition("w", "k", instance, WatchState.FIRED, NOW, {"text": "late, café"})
    assert instance["state"] == "fired" and instance["evidence"] == {"text": "late, café"}
    assert [h["state"] for h in instance["history"]] == ["armed", "fired"]
    assert instance["history"][1]["evidence"] == {"text": "late, café"}
    journal = capsys.readouterr().err.splitlines()
    assert journal == [
        "watch w k: new -> armed",
        'watch w k: armed -> fired {"text": "late, café"}',
    ]


def test_a_move_no_rule_makes_is_refused_and_changes_nothing(
    capsys: pytest.CaptureFixture,
) -> None:
    instance: dict[str, Any] = {"state": "acknowledged", "at": "2027-03-01T13:00:00Z"}
    before = dict(instance)
    with pytest.raises(IllegalTransition) as refused:
        transition("urgent-mail", "m1", instance, WatchState.FIRED, NOW)
    assert str(refused.value) == (
        "watch urgent-mail m1: acknowledged -> fired is not a move a watch instance makes; "
        "from acknowledged it may go to satisfied"
    )
    assert instance == before
    assert capsys.readouterr().err == ""  # nothing in the journal: nothing happened
    with pytest.raises(IllegalTransition, match="new -> delivered is not a move"):
        transition("urgent-mail", "m2", {}, WatchState.DELIVERED, NOW)
    with pytest.raises(IllegalTransition, match="'snoozed' is no state"):
        transition("urgent-mail", "m3", {"state": "snoozed"}, WatchState.FIRED, NOW)


def test_every_state_has_its_moves_and_only_a_fresh_instance_is_armed() -> None:
    assert set(NEXT) == {None, *WatchState}
    assert all(WatchState.ARMED not in onward for state, onward in NEXT.items() if state)


HOUR = timedelta(hours=1)
SILENCE = {"absence": {"source": "backup", "for": 26 * 3600}}


def test_a_silence_fires_once_at_its_limit_and_again_only_after_the_source_spoke() -> None:
    state: dict[str, Any] = {}
    assert check_absence("nightly", SILENCE, state, NOW) == []  # counted from the first run
    assert state["lastSeen"] == "2027-03-01T14:00:00Z" and "instances" not in state
    assert check_absence("nightly", SILENCE, state, NOW + 26 * HOUR - timedelta(seconds=1)) == []
    [first] = check_absence("nightly", SILENCE, state, NOW + 26 * HOUR)  # exactly the limit
    assert (
        first.text == "nightly: nothing from backup (last finding 2027-03-01T14:00:00Z, 26 h ago)"
    )
    assert first.key == "watch:nightly:silence:fired:1"
    silence = state["instances"]["silence"]
    assert silence["deadline"] == "2027-03-02T16:00:00Z"
    assert silence["evidence"]["lastSeen"] == "2027-03-01T14:00:00Z"
    assert check_absence("nightly", SILENCE, state, NOW + 40 * HOUR) == []  # still the same
    on_ack("nightly", state, None, NOW + 41 * HOUR)
    assert check_absence("nightly", SILENCE, state, NOW + 60 * HOUR) == []  # acknowledged
    on_source_seen("nightly", state, NOW + 61 * HOUR)
    assert state["lastSeen"] == "2027-03-04T03:00:00Z"
    assert silence["state"] == "satisfied"
    assert silence["evidence"] == {"text": "the source reported again"}
    assert check_absence("nightly", SILENCE, state, NOW + 86 * HOUR) == []
    [again] = check_absence("nightly", SILENCE, state, NOW + 87 * HOUR)
    assert again.key == "watch:nightly:silence:fired:2"
    assert silence["deadline"] == "2027-03-05T05:00:00Z"


def test_a_source_seen_without_a_silence_only_moves_its_last_finding() -> None:
    state: dict[str, Any] = {"instances": {"silence": {"state": "satisfied"}}}
    on_source_seen("nightly", state, NOW)
    assert state["lastSeen"] == "2027-03-01T14:00:00Z"
    assert state["instances"]["silence"] == {"state": "satisfied"}  # no second transition


def test_deadline_results_fire_or_satisfy_once() -> None:
    watch = {"deadline": {"at": "09:00"}}
    state: dict[str, Any] = {}
    late = {
        "key": "2027-03-01T09:00:00Z",
        "deadline": "09:00 today",
        "evidence": {"text": "no report.md"},
    }
    [fired_alert] = on_deadline_result("report", watch, state, late, NOW)
    assert fired_alert.text == "report: not done by 09:00 today: no report.md"
    assert fired_alert.key == "watch:report:2027-03-01T09:00:00Z:fired:1"
    assert on_deadline_result("report", watch, state, late, NOW + HOUR) == []  # a rerun
    done = {"timestamp": "2027-03-02T09:00:05Z", "satisfied": True, "evidence": {"text": "ok"}}
    assert on_deadline_result("report", watch, state, done, NOW) == []
    # without a key the result's time names the instance, and stands for the deadline
    satisfied = state["instances"]["2027-03-02T09:00:05Z"]
    assert satisfied["state"] == "satisfied" and satisfied["deadline"] == "2027-03-02T09:00:05Z"
    assert satisfied["evidence"] == {"text": "ok"}
    armed = {"instances": {"k": {"state": "armed", "deadline": "x"}}}
    assert len(on_deadline_result("report", watch, armed, {"key": "k"}, NOW)) == 1


def test_ack_of_one_instance_or_all_touches_only_alerting_ones() -> None:
    state: dict[str, Any] = {
        "instances": {
            "a": {"state": "fired"},
            "b": {"state": "delivered"},
            "c": {"state": "expired"},
            "d": {"state": "armed"},
            "e": {"state": "satisfied"},
        }
    }
    on_ack("w", state, "b", NOW)
    found = state["instances"]
    assert [found[k]["state"] for k in "abcde"] == [
        "fired",
        "acknowledged",
        "expired",
        "armed",
        "satisfied",
    ]
    assert found["b"]["evidence"] == {"text": "vigil ack"}
    on_ack("w", state, None, NOW)
    assert [found[k]["state"] for k in "abcde"] == ["acknowledged"] * 3 + ["armed", "satisfied"]


def test_repeats_and_one_escalation_counted_from_when_it_first_fired() -> None:
    watch = {
        "match": MAIL,
        "repeat": 3600,
        "escalate": {"after": 7200, "to": ["phone"]},
        "notify": ["signal"],
    }
    state: dict[str, Any] = {}
    instance = instances(state).setdefault("m1", {})
    transition("w", "m1", instance, WatchState.FIRED, NOW, {"text": "outage"})
    alert("w", watch, "m1", instance, NOW)
    transition("w", "m1", instance, WatchState.DELIVERED, NOW + timedelta(minutes=5))
    assert follow_up("w", watch, state, NOW + HOUR - timedelta(seconds=1)) == []
    [repeat] = follow_up("w", watch, state, NOW + HOUR)
    assert (repeat.key, repeat.to) == ("watch:w:m1:delivered:2", ["signal"])
    assert follow_up("w", watch, state, NOW + 2 * HOUR - timedelta(seconds=1)) == []
    # two hours after it fired, though delivered since: the repeat and the escalation
    repeat, up = follow_up("w", watch, state, NOW + 2 * HOUR)
    assert repeat.key == "watch:w:m1:delivered:3"
    assert (up.key, up.to) == ("watch:w:m1:delivered:4:esc", ["phone"])
    assert instance["escalated"] == "2027-03-01T16:00:00Z"
    assert [a.key for a in follow_up("w", watch, state, NOW + 3 * HOUR)] == [
        "watch:w:m1:delivered:5"
    ]  # escalated once
    on_ack("w", state, "m1", NOW + 3 * HOUR)
    assert follow_up("w", watch, state, NOW + 9 * HOUR) == []


def test_an_instance_without_a_fired_step_escalates_from_its_own_time_unless_delivered() -> None:
    watch = {"match": MAIL, "escalate": {"after": 60, "to": ["phone"]}}
    state = {
        "instances": {
            "old": {"state": "fired", "at": "2027-03-01T13:00:00Z"},
            "done": {"state": "delivered", "at": "2027-03-01T13:00:00Z"},
        }
    }
    assert [a.key for a in follow_up("w", watch, state, NOW)] == ["watch:w:old:fired:1:esc"]


def test_the_messages_that_carried_an_instances_alert_are_remembered() -> None:
    state: dict[str, Any] = {"instances": {"2027-03-01T09:00:00Z": {}, "m1": {}}}
    remember_messages(state, "watch:w:2027-03-01T09:00:00Z:fired:1", {"signal": "id1"})
    remember_messages(state, "watch:w:m1:fired:2:esc", {"phone": "id2"})
    remember_messages(state, "watch:w:m1:fired:3", {"signal": "id3"})
    remember_messages(state, "watch:w:fired:1", {"signal": "id4"})  # no key: nothing
    remember_messages(state, "watch:w:gone:fired:1", {"signal": "id5"})  # no instance
    assert state["instances"] == {
        "2027-03-01T09:00:00Z": {"messages": {"signal": "id1"}},
        "m1": {"messages": {"phone": "id2", "signal": "id3"}},
    }


def test_what_a_match_keeps_as_evidence_and_how_an_unkeyed_item_is_named() -> None:
    """Items that are not objects are skipped wherever they are; an item without a key is
    named by its content whatever the order of its fields; the evidence names the finding by
    its id and sums up the item in at most 300 characters, without source and timestamp."""
    condition = {"source": "mail", "items": "messages", "key": "id"}
    one = matches(condition, {"source": "mail", "messages": ["junk", {"b": 1, "a": 2}]})
    other = matches(condition, {"source": "mail", "messages": [{"a": 2, "b": 1}]})
    assert [k for k, _ in one] == [k for k, _ in other] and len(one) == 1
    watch = {"match": {"source": "mail"}}
    finding = {"source": "mail", "timestamp": "t", "id": "f9", "subject": "x" * 400, "n": 1}
    state: dict[str, Any] = {}
    on_match("w", watch, state, finding, NOW)
    evidence = state["instances"]["f9"]["evidence"]
    assert evidence["finding"] == "f9"
    assert evidence["text"] == ("id=f9, subject=" + "x" * 400)[:300]
    assert len(evidence["text"]) == 300


def test_the_journal_names_the_silence(capsys: pytest.CaptureFixture) -> None:
    state: dict[str, Any] = {"lastSeen": "2027-03-01T14:00:00Z"}
    check_absence("nightly", SILENCE, state, NOW + 30 * HOUR)
    on_source_seen("nightly", state, NOW + 31 * HOUR)
    journal = capsys.readouterr().err.splitlines()
    assert journal[0].startswith("watch nightly silence: new -> fired ")
    assert journal[1].startswith("watch nightly silence: fired -> satisfied ")


def test_follow_ups_skip_quiet_instances_and_escalate_from_when_a_file_watch_expired() -> None:
    watch = {"match": MAIL, "repeat": 60, "escalate": {"after": 3600, "to": ["phone"]}}
    expired_at = "2027-03-01T12:30:00Z"
    state = {
        "instances": {
            "a-armed": {"state": "armed", "lastAlert": "2027-03-01T10:00:00Z"},
            "b-late": {
                "state": "delivered",
                "at": "2027-03-01T13:59:00Z",
                "lastAlert": "2027-03-01T12:30:00Z",
                "history": [{"state": "armed"}, {"state": "expired", "at": expired_at}],
            },
        }
    }
    keys = [a.key for a in follow_up("w", watch, state, NOW)]
    assert keys == ["watch:w:b-late:delivered:1", "watch:w:b-late:delivered:2:esc"]

"""The watch rules on their own (runner/rules/watches.py), in-process: the alert an instance
raises (text, routes, priority, key, evidence), match conditions, and transitions. The
coordinator's use of them is in test_watches.py; under a real manager in
test_watches_systemd.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runner.alerts import DEFAULT_ROUTE
from runner.rules.watches import alert, instances, matches, on_match, settle, transition

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
            "done": fired(messages={"default": "m3", "agent": "m4"}),
        }
    }
    sent = {"at": "2027-03-01T13:59:00Z"}
    ledger = {"m1": {**sent, "exit_status": None}, "m3": sent, "m4": {**sent, "exit_status": 0}}
    settle("w", {"match": MAIL, "handoff": "agent"}, state, ledger, NOW)
    found = state["instances"]
    assert [found[k]["state"] for k in found] == ["armed", "fired", "fired", "delivered"]
    assert found["done"]["handoff"] == {"channel": "agent", "exit_status": 0, "accepted": True}
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
    transition("w", "k", instance, "armed", NOW)
    transition("w", "k", instance, "fired", NOW, {"text": "late"})
    assert instance["state"] == "fired" and instance["evidence"] == {"text": "late"}
    assert [h["state"] for h in instance["history"]] == ["armed", "fired"]
    assert instance["history"][1]["evidence"] == {"text": "late"}
    journal = capsys.readouterr().err.splitlines()
    assert journal == ["watch w k: new -> armed", 'watch w k: armed -> fired {"text": "late"}']

"""The nag rule on its own (runner/rules/nag.py), in-process: what a spec may leave out, which
items it skips, a rule without `items`, and the nag step an alert's key stands for. The
coordinator-level behaviour over days is in test_nag_days.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner.rules.nag import NagRuleSpec, apply_rule, nag_of

NOW = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)
LADDER = [{"min_count": 1, "message": "{key}: {title} ({source})"}]


def rule(**spec: Any) -> NagRuleSpec:
    return NagRuleSpec("todo", {"source": "todo", "items": "overdue", "ladder": LADDER, **spec})


def nag(r: NagRuleSpec, state: dict[str, Any], items: Any, at: datetime = NOW) -> list[str]:
    finding = {"source": "todo", "timestamp": "x", "overdue": items}
    return [alert.text for alert in apply_rule(r, finding, state, at)]


def test_what_a_spec_leaves_out_takes_the_documented_default() -> None:
    """A spec from an older compiler (or written by hand) without key, min_interval,
    resolve_missing or retention."""
    bare = NagRuleSpec("todo", {"source": "todo"})
    assert (bare.key, bare.min_interval, bare.once_per) == ("id", 0, None)
    assert bare.resolve_missing is True
    assert bare.retention == 30 * 86400
    assert bare.calendar == {"once_per": None, "min_interval": None}
    calendar = NagRuleSpec("todo", {"source": "todo", "once_per_calendar": True})
    assert calendar.calendar["once_per"] is True


def test_items_that_are_not_objects_or_lack_a_usable_key_are_skipped_not_the_rest() -> None:
    items = [
        "a bare string",
        {"title": "no id"},
        {"id": {"nested": 1}, "title": "object id"},
        {"id": [1], "title": "list id"},
        {"id": "A", "title": "Call dentist"},
        {"id": 7, "title": "numeric id"},
    ]
    state: dict[str, Any] = {}
    assert nag(rule(), state, items) == ["A: Call dentist (todo)", "7: numeric id (todo)"]
    assert sorted(state["items"]) == ["7", "A"]


def test_a_rule_without_items_nags_about_the_finding_itself() -> None:
    r = NagRuleSpec("disk", {"source": "disk", "key": "host", "ladder": LADDER})
    state: dict[str, Any] = {}
    finding = {"source": "disk", "timestamp": "x", "host": "nas", "title": "disk 91% full"}
    assert [a.text for a in apply_rule(r, finding, state, NOW)] == ["nas: disk 91% full (disk)"]
    assert list(state["items"]) == ["nas"]


def test_resolve_missing_by_default_and_without_items_nothing_is_resolved() -> None:
    state: dict[str, Any] = {}
    nag(rule(), state, [{"id": "A", "title": "a"}, {"id": "B", "title": "b"}])
    nag(rule(), state, [{"id": "B", "title": "b"}], NOW + timedelta(hours=1))
    assert state["items"]["A"]["status"] == "resolved"
    assert state["items"]["B"]["status"] == "active"
    single = NagRuleSpec("disk", {"source": "disk", "key": "host", "ladder": LADDER})
    disk: dict[str, Any] = {}
    for host in ("nas", "pi"):
        apply_rule(single, {"source": "disk", "timestamp": "x", "host": host}, disk, NOW)
    assert disk["items"]["nas"]["status"] == "active"  # one finding per item: none missing


def test_an_older_spec_counts_whole_days_on_the_calendar() -> None:
    """A spec without once_per_calendar: once_per of whole days is calendar days (from 23:00
    to 01:00 the next day is a day), of hours elapsed time."""
    late = datetime(2027, 3, 1, 23, 0, tzinfo=UTC)
    weekly = NagRuleSpec("todo", {"source": "todo", "items": "overdue", "once_per": 86400})
    state: dict[str, Any] = {}
    assert len(nag(weekly, state, [{"id": "A"}], late)) == 1
    state["items"]["A"]["lastNagged"] = late.isoformat()  # told at 23:00
    assert nag(weekly, state, [{"id": "A"}], late + timedelta(minutes=59)) == []
    assert len(nag(weekly, state, [{"id": "A"}], late + timedelta(hours=1))) == 1  # next day
    hourly = NagRuleSpec("todo", {"source": "todo", "items": "overdue", "once_per": 7200})
    state = {"items": {"A": {"firstSeen": late.isoformat(), "nagCount": 1, "status": "active",
                             "lastNagged": late.isoformat()}}}  # fmt: skip
    assert nag(hourly, state, [{"id": "A"}], late + timedelta(minutes=90)) == []
    assert len(nag(hourly, state, [{"id": "A"}], late + timedelta(hours=2))) == 1


@pytest.mark.parametrize(
    ("key", "step"),
    [
        ("nag:todo:A:3", ("todo", "A", 3)),
        ("nag:todo:a:b:12", ("todo", "a:b", 12)),  # an item key may hold colons
        ("nag:todo:A:x", None),  # no count
        ("nag:todo::3", None),  # no item
        ("watch:todo:A:3", None),  # another kind of alert
    ],
)
def test_the_nag_step_an_alert_key_stands_for(key: str, step: tuple | None) -> None:
    found = nag_of(key)
    assert (found.rule, found.item, found.count) == step if step else found is None


def test_a_nag_counts_once_however_often_it_is_told() -> None:
    """A rerun, or a held alert older than a nag since, tells the same step again: the count
    and lastNagged stay as the first telling left them (a later lastNagged would put off the
    next nag)."""
    from runner.rules.nag import NagStep, told

    r = rule(stop_after=2)
    state: dict[str, Any] = {}
    nag(r, state, [{"id": "A", "title": "a"}])
    told(r, state, NagStep("todo", "A", 1), NOW)
    told(r, state, NagStep("todo", "A", 1), NOW + timedelta(hours=5))
    record = state["items"]["A"]
    assert (record["nagCount"], record["lastNagged"]) == (1, "2027-03-01T14:00:00Z")
    told(r, state, NagStep("todo", "A", 2), NOW + timedelta(days=1))
    assert (record["nagCount"], record["status"]) == (2, "stopped")
    told(r, state, NagStep("todo", "B", 1), NOW)  # an item the state no longer has: nothing
    assert list(state["items"]) == ["A"]


def test_resolved_items_are_kept_for_the_retention_and_no_longer() -> None:
    from runner.rules.nag import prune

    r = rule(retention=86400)
    state: dict[str, Any] = {}
    nag(r, state, [{"id": "A"}, {"id": "B"}])
    nag(r, state, [{"id": "B"}], NOW)  # A resolved at NOW
    prune(r, state, NOW + timedelta(days=1))  # exactly the retention: kept
    assert "A" in state["items"]
    prune(r, state, NOW + timedelta(days=1, seconds=1))
    assert sorted(state["items"]) == ["B"]  # active items are never pruned


def test_a_once_per_written_in_hours_is_elapsed_time_even_when_it_is_whole_days() -> None:
    """`once_per: 24h` says hours: 24 elapsed hours, not the next calendar day (`1d`)."""
    late = datetime(2027, 3, 1, 23, 0, tzinfo=UTC)
    spec = {"source": "todo", "items": "overdue", "once_per": 86400, "message": "{key}"}
    state = {"items": {"A": {"firstSeen": late.isoformat(), "nagCount": 1, "status": "active",
                             "lastNagged": late.isoformat()}}}  # fmt: skip
    hours = NagRuleSpec("todo", {**spec, "once_per_calendar": False})
    assert nag(hours, state, [{"id": "A"}], late + timedelta(hours=2)) == []
    assert nag(hours, state, [{"id": "A"}], late + timedelta(hours=24)) == ["A"]
    days = NagRuleSpec("todo", {**spec, "once_per_calendar": True})
    assert nag(days, state, [{"id": "A"}], late + timedelta(hours=2)) == ["A"]


def test_a_stopped_item_stays_stopped_when_it_comes_back_or_the_ladder_grows() -> None:
    """stop_after ends the nags about an item for good: it may disappear and come back, or
    the rule may allow more nags later; the record says `stopped` and nothing is said."""
    from runner.rules.nag import NagStep, told

    r = rule(stop_after=1)
    state: dict[str, Any] = {}
    assert nag(r, state, [{"id": "A", "title": "a"}]) == ["A: a (todo)"]
    told(r, state, NagStep("todo", "A", 1), NOW)
    assert state["items"]["A"]["status"] == "stopped"
    nag(r, state, [], NOW + timedelta(days=1))
    assert state["items"]["A"]["status"] == "resolved"
    assert nag(r, state, [{"id": "A", "title": "a"}], NOW + timedelta(days=2)) == []
    assert state["items"]["A"]["status"] == "stopped"
    assert (
        nag(rule(stop_after=3), state, [{"id": "A", "title": "a"}], NOW + timedelta(days=3)) == []
    )
    assert (state["items"]["A"]["status"], state["items"]["A"]["nagCount"]) == ("stopped", 1)


def test_a_nag_is_urgent_when_its_finding_is_and_is_held_under_its_item() -> None:
    """Held by quiet hours, a later nag about the same item replaces the earlier one (the
    subject is the item), never a nag about another item."""
    finding = {"source": "todo", "timestamp": "x", "urgent": True, "overdue": [{"id": "A"}]}
    [loud] = apply_rule(rule(), finding, {}, NOW)
    [calm] = apply_rule(rule(), {**finding, "urgent": False}, {}, NOW)
    assert (loud.urgent, calm.urgent) == (True, False)
    assert (loud.key, loud.subject, loud.source) == ("nag:todo:A:1", "nag:todo:A", "todo")


def test_a_short_min_interval_allows_a_tenth_of_itself_for_timer_drift() -> None:
    """Under ten minutes the slack is a tenth of the period (a minute above): 5 minutes
    after a nag at 14:00:00, the next may come from 14:04:30."""
    from runner.rules.nag import SLACK

    assert SLACK == 60
    last = NOW.isoformat()
    r = rule(min_interval=300, min_interval_calendar=False)
    for after, due in ((269, False), (270, True)):
        state = {"items": {"A": {"firstSeen": last, "nagCount": 1, "status": "active",
                                 "lastNagged": last}}}  # fmt: skip
        assert (
            bool(nag(r, state, [{"id": "A", "title": "a"}], NOW + timedelta(seconds=after))) == due
        )
    hourly = rule(min_interval=3600, min_interval_calendar=False)
    for after, due in ((3539, False), (3540, True)):
        state = {"items": {"A": {"firstSeen": last, "nagCount": 1, "status": "active",
                                 "lastNagged": last}}}  # fmt: skip
        assert (
            bool(nag(hourly, state, [{"id": "A", "title": "a"}], NOW + timedelta(seconds=after)))
            == due
        )

"""Watches: future conditions, with explicit states kept per instance.

States (rules/watchstate.py): armed -> satisfied (the condition was met in time) or fired (it
was not, or a match happened) / expired (a file watch's time ran out) -> delivered (the alert
reached its channels) -> acknowledged (`vigil ack`). Every transition is checked against the
moves allowed there, kept with its time and evidence in `<state>/state/watch-<name>.json` and
printed to the journal.

Kinds: `match` fires on a finding (or item) meeting the conditions; `absence` fires when a source
has been silent too long; `file` instances are armed by findings or `vigil watch arm` and wait for
a file; `deadline` results come from the watch's own timer (`runner watch`) as control findings.
A fired instance is alerted again every `repeat` until acknowledged, and escalated once after
`escalate.after`.
"""

from __future__ import annotations

import json
import operator
import re
import sys
from datetime import datetime, timedelta

from runner.alerts import DEFAULT_ROUTE, Alert
from runner.clock import iso, parse_iso
from runner.findings import VIGIL_SOURCE
from runner.rules.watchstate import ALERTED, ALERTING, FIRING, WatchState, check_transition
from runner.template import dig, fill

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import ConditionJSON, MatchJSON, WatchJSON

HISTORY_LIMIT = 20
DEFAULT_MESSAGES = {
    "deadline": "{watch}: not done by {deadline}: {evidence}",
    "match": "{watch}: {evidence}",
    "file": "{watch} {key}: {state} ({evidence})",
    "absence": "{watch}: nothing from {source} ({evidence})",
}


def kind_of(watch: WatchJSON) -> str:
    return next(k for k in ("deadline", "match", "file", "absence") if watch.get(k))


def instances(state: dict[str, Any]) -> dict[str, Any]:
    state.setdefault("version", 1)
    found: dict[str, Any] = state.setdefault("instances", {})
    return found


def transition(
    name: str,
    key: str,
    instance: dict[str, Any],
    new: WatchState,
    now: datetime,
    evidence: Any = None,
) -> None:
    """Move the instance to `new`: IllegalTransition if no rule may (watchstate.NEXT)."""
    old = instance.get("state")
    check_transition(name, key, old, new)
    instance["state"] = new
    instance["at"] = iso(now)
    if evidence is not None:
        instance["evidence"] = evidence
    history = instance.setdefault("history", [])
    history.append({"state": new, "at": iso(now), "evidence": evidence})
    del history[:-HISTORY_LIMIT]
    shown = json.dumps(evidence, ensure_ascii=False) if evidence is not None else ""
    print(f"watch {name} {key}: {old or 'new'} -> {new} {shown}".rstrip(), file=sys.stderr)


def alert(
    name: str,
    watch: WatchJSON,
    key: str,
    instance: dict[str, Any],
    now: datetime,
    *,
    escalation: bool = False,
) -> Alert:
    """The alert for an instance: to `notify` (or deliver_to) plus the hand-off channel."""
    kind = kind_of(watch)
    evidence = instance.get("evidence")
    values = {
        "watch": name,
        "key": key,
        "state": instance.get("state"),
        "evidence": evidence.get("text", evidence) if isinstance(evidence, dict) else evidence,
        "deadline": instance.get("deadline") or "",
        "source": source_of(watch) or "",
    }
    text = fill(watch.get("message") or DEFAULT_MESSAGES[kind], values)
    if escalation:
        escalate = watch["escalate"]
        assert escalate is not None  # follow_up escalates only a watch that says where to
        to = list(escalate["to"])
        text = f"escalated, not acknowledged: {text}"
    else:
        to = list(watch.get("notify") or [])
        if handoff := watch.get("handoff"):
            to = (to or [DEFAULT_ROUTE]) + [handoff]
    count = int(instance.get("alerts") or 0) + 1
    instance.update(alerts=count, lastAlert=iso(now))
    escalated = ":esc" if escalation else ""
    return Alert(
        text=text,
        source=VIGIL_SOURCE,
        priority=100 if watch.get("urgent") else 50,
        urgent=bool(watch.get("urgent")),
        key=f"watch:{name}:{key}:{instance.get('state')}:{count}{escalated}",
        subject=f"watch:{name}:{key}{escalated}",  # its repeats replace each other while held
        to=to or None,
        evidence={"watch": name, "key": key, "state": instance.get("state"), "evidence": evidence},
    )


def source_of(watch: WatchJSON) -> str | None:
    """The source a deadline, match or absence watch reads (a file watch names none)."""
    condition = watch.get("deadline") or watch.get("match") or watch.get("absence")
    return condition.get("source") if condition else None


# -- match ---------------------------------------------------------------------------------


def matches(condition: MatchJSON, finding: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key, item) for each item of the finding (or the finding) meeting the conditions."""
    if finding.get("source") != condition["source"]:
        return []
    found = dig(finding, condition.get("items"))  # no `items`: the finding itself
    hits = []
    for item in found if isinstance(found, list) else [found]:
        if not isinstance(item, dict):
            continue
        every = all(_holds(test, item) for test in condition.get("all") or [])
        anything = not condition.get("any") or any(_holds(t, item) for t in condition["any"])
        if every and anything:
            key = dig(item, condition["key"]) if condition.get("key") else None
            if key is None:
                key = finding.get("id") or _digest(json.dumps(item, sort_keys=True, default=str))
            hits.append((str(key), item))
    return hits


def _holds(test: ConditionJSON, item: dict[str, Any]) -> bool:
    value = dig(item, test["field"])
    if (equals := test.get("equals")) is not None:
        return bool(value == equals)
    if (not_equals := test.get("not_equals")) is not None:
        return bool(value != not_equals)
    if (contains := test.get("contains")) is not None:
        if isinstance(value, list):
            return contains in value
        return isinstance(value, str) and contains in value
    if (regex := test.get("regex")) is not None:
        return isinstance(value, str) and re.search(regex, value) is not None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    for bound, check in (
        (test.get("gt"), operator.gt),
        (test.get("gte"), operator.ge),
        (test.get("lt"), operator.lt),
        (test.get("lte"), operator.le),
    ):
        if bound is not None:
            return bool(check(value, bound))
    return False


def _digest(text: str) -> str:
    from runner.digest import hexdigest

    return hexdigest(text)[:12]


def on_match(
    name: str, watch: WatchJSON, state: dict[str, Any], finding: dict[str, Any], now: datetime
) -> list[Alert]:
    condition = watch["match"]
    assert condition is not None  # the coordinator passes match watches only
    alerts = []
    for key, item in matches(condition, finding):
        known = instances(state)
        if key in known:
            continue  # one item fires once
        known[key] = {"armedAt": iso(now)}
        summary = {k: v for k, v in item.items() if isinstance(v, str | int | float | bool)}
        evidence = {
            "text": _summary(summary),
            "finding": finding.get("id") or finding.get("timestamp"),
        }
        transition(name, key, known[key], WatchState.FIRED, now, evidence)
        alerts.append(alert(name, watch, key, known[key], now))
    return alerts


def _summary(fields: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in fields.items() if k not in ("source", "timestamp"))
    return text[:300]


# -- absence -------------------------------------------------------------------------------


def on_source_seen(name: str, state: dict[str, Any], now: datetime) -> None:
    state["lastSeen"] = iso(now)
    instance = instances(state).get("silence")
    if instance is not None and instance.get("state") in ALERTED:
        reported = {"text": "the source reported again"}
        transition(name, "silence", instance, WatchState.SATISFIED, now, reported)


def check_absence(name: str, watch: WatchJSON, state: dict[str, Any], now: datetime) -> list[Alert]:
    absence = watch["absence"]
    assert absence is not None  # the coordinator passes absence watches only
    last = parse_iso(state.get("lastSeen"))
    if last is None:
        state["lastSeen"] = iso(now)  # the silence is counted from when the watch first ran
        return []
    limit = int(absence["for"])
    known = instances(state)
    instance = known.get("silence")
    silent = (now - last).total_seconds()
    if silent < limit or (instance is not None and instance.get("state") in ALERTED):
        return []
    known["silence"] = instance = instance or {}
    instance["deadline"] = iso(last + timedelta(seconds=limit))
    evidence = {
        "text": f"last finding {iso(last)}, {int(silent // 3600)} h ago",
        "lastSeen": iso(last),
    }
    transition(name, "silence", instance, WatchState.FIRED, now, evidence)
    return [alert(name, watch, "silence", instance, now)]


# -- deadline results and control findings from `vigil` ----------------------------------------


def on_deadline_result(
    name: str, watch: WatchJSON, state: dict[str, Any], finding: dict[str, Any], now: datetime
) -> list[Alert]:
    key = str(finding.get("key") or finding.get("timestamp"))
    known = instances(state)
    instance = known.setdefault(key, {"deadline": finding.get("deadline") or key})
    if instance.get("state") not in (None, WatchState.ARMED):
        return []  # the same deadline reported twice (a rerun) changes nothing
    evidence = finding.get("evidence") or {}
    if finding.get("satisfied"):
        transition(name, key, instance, WatchState.SATISFIED, now, evidence)
        return []
    transition(name, key, instance, WatchState.FIRED, now, evidence)
    return [alert(name, watch, key, instance, now)]


def on_ack(name: str, state: dict[str, Any], key: str | None, now: datetime) -> None:
    for instance_key, instance in instances(state).items():
        if key in (None, instance_key) and instance.get("state") in ALERTING:
            acked = {"text": "vigil ack"}
            transition(name, instance_key, instance, WatchState.ACKNOWLEDGED, now, acked)


# -- repeats, escalation, delivery and hand-off bookkeeping -----------------------------------


def follow_up(name: str, watch: WatchJSON, state: dict[str, Any], now: datetime) -> list[Alert]:
    alerts = []
    repeat = watch.get("repeat")
    escalate = watch.get("escalate")
    for key, instance in sorted(instances(state).items()):
        if instance.get("state") not in ALERTING:
            continue
        last = parse_iso(instance.get("lastAlert"))
        if repeat and last is not None and (now - last).total_seconds() >= int(repeat):
            alerts.append(alert(name, watch, key, instance, now))
        delivered = instance.get("state") == WatchState.DELIVERED
        fired = parse_iso(instance.get("at")) if not delivered else None
        fired = parse_iso(_first(instance, FIRING)) or fired
        if (
            escalate
            and not instance.get("escalated")
            and fired is not None
            and (now - fired).total_seconds() >= int(escalate["after"])
        ):
            instance["escalated"] = iso(now)
            alerts.append(alert(name, watch, key, instance, now, escalation=True))
    return alerts


def _first(instance: dict[str, Any], states: frozenset[WatchState]) -> str | None:
    for step in instance.get("history") or []:
        if step.get("state") in states:
            return str(step.get("at"))
    return None


def remember_messages(state: dict[str, Any], alert_key: str, messages: dict[str, str]) -> None:
    """Which message ids carried an instance's alert, to see later whether they arrived."""
    # `watch:<name>:<key>:<state>:<count>[:esc]`; the key itself may hold colons (a deadline's
    # is an ISO time), so it is what remains once the fixed parts are cut from both ends.
    parts = alert_key.removesuffix(":esc").split(":")
    instance = instances(state).get(":".join(parts[2:-2]))  # no key left: "", no instance
    if instance is not None:
        instance.setdefault("messages", {}).update(messages)


def settle(
    name: str, watch: WatchJSON, state: dict[str, Any], ledger: dict[str, Any], now: datetime
) -> None:
    """fired/expired -> delivered once every message of the instance is in the ledger; the
    hand-off's exit status is kept (0: the agent accepted it)."""
    handoff = watch.get("handoff")
    for key, instance in instances(state).items():
        messages = instance.get("messages") or {}
        if not messages or instance.get("state") not in FIRING:
            continue
        entries = {channel: ledger.get(mid) for channel, mid in messages.items()}
        if handoff and entries.get(handoff):
            status = entries[handoff].get("exit_status")  # type: ignore[union-attr]
            instance["handoff"] = {
                "channel": handoff,
                "exit_status": status,
                "accepted": status == 0,
            }
        if all(entries.values()):
            transition(name, key, instance, WatchState.DELIVERED, now, instance.get("evidence"))

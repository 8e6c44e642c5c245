"""Nag rules with memory per item, like the reference setup's nag-history.json.

Each rule keeps `<state>/state/nag-<rule>.json`: per item its title-bearing fields, firstSeen,
lastSeen, nagCount, lastNagged and status (active, stopped, resolved). A ladder escalates by nag
count and days overdue and stops after `stop_after`; `once_per` mentions an item at most once per
period. Items missing from a newer finding of the source are resolved; resolved items are pruned
after `retention`.

A nag counts only once the person is told: the coordinator calls `told` for an alert a message
names and `withheld` for one that caps cut. A withheld item keeps its count, is offered again by
the next finding, and goes first among equals then (`waitingSince`).

Periods of whole days (`once_per: 7d`, `min_interval: 1d`, `min_days`, days since first seen)
are calendar days in the config's time zone, so a weekly mention is due on the same weekday
whatever the clock changes between; shorter periods are elapsed time, with SLACK for a run that
comes a little early.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

from runner.alerts import NAG_KEY, Alert
from runner.clock import calendar_days, iso, parse_iso, zone
from runner.contract import NAG_KEY_FIELD, NAG_RESOLVE_MISSING, NAG_RETENTION, nag_state_file
from runner.template import dig, fill

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import LadderStepJSON, NagRuleJSON

STATE_VERSION = 1
DAY = 86400
SLACK = 60.0
"""Seconds a period shorter than a day may come up short: systemd's default AccuracySec, the
most a timer's runs drift against each other."""


class NagRuleSpec:
    """One `nag:` rule of the coordinator spec, in the config's time zone."""

    __slots__ = (
        "calendar",
        "days_field",
        "items",
        "key",
        "ladder",
        "message",
        "min_interval",
        "name",
        "once_per",
        "priority",
        "resolve_missing",
        "retention",
        "source",
        "stop_after",
        "timezone",
    )

    def __init__(self, name: str, spec: NagRuleJSON, timezone: str | None = None) -> None:
        self.name = name
        self.source = str(spec["source"])
        self.items = spec.get("items")
        self.key = str(spec.get("key") or NAG_KEY_FIELD)
        self.days_field = spec.get("days_field")
        self.ladder = spec.get("ladder")
        self.stop_after = spec.get("stop_after")
        self.min_interval = int(spec.get("min_interval") or 0)
        self.once_per = spec.get("once_per")
        # Written in days or weeks: calendar days (an older spec says nothing: whole days are).
        self.calendar = {
            "once_per": spec.get("once_per_calendar"),
            "min_interval": spec.get("min_interval_calendar"),
        }
        self.message = spec.get("message")
        self.priority = int(spec.get("priority") or 0)
        self.resolve_missing = bool(spec.get("resolve_missing", NAG_RESOLVE_MISSING))
        self.retention = int(spec.get("retention") or NAG_RETENTION)
        self.timezone = timezone

    @property
    def state_file(self) -> str:
        return nag_state_file(self.name)


class NagStep:
    """The nag an alert stands for: its rule, its item and which nag about the item it is."""

    __slots__ = ("count", "item", "rule")

    def __init__(self, rule: str, item: str, count: int) -> None:
        self.rule = rule
        self.item = item
        self.count = count

    @property
    def key(self) -> str:
        return f"{NAG_KEY}{self.rule}:{self.item}:{self.count}"


def nag_of(alert_key: str) -> NagStep | None:
    """The nag step behind an alert's key, None for an alert of another kind."""
    if not alert_key.startswith(NAG_KEY):
        return None
    head, _, count = alert_key.rpartition(":")
    rule, _, item = head.removeprefix(NAG_KEY).partition(":")  # rule names have no colon
    return NagStep(rule, item, int(count)) if count.isdigit() and item else None


def apply_rule(
    rule: NagRuleSpec, finding: dict[str, Any], state: dict[str, Any], now: datetime
) -> list[Alert]:
    """Update `state` (in place) with one finding and return the alerts it calls for."""
    items_value = dig(finding, rule.items)  # no `items`: the finding itself
    found = items_value if isinstance(items_value, list) else [items_value]
    records: dict[str, Any] = state.setdefault("items", {})
    alerts = []
    seen = set()
    for item in found:
        if not isinstance(item, dict):
            continue
        key = dig(item, rule.key)
        if key is None or isinstance(key, dict | list):
            continue
        key = str(key)
        seen.add(key)
        record = records.setdefault(key, {"firstSeen": iso(now), "nagCount": 0, "status": "active"})
        record.update(lastSeen=iso(now), fields=_flat(item))
        if record["status"] == "resolved":
            record["status"] = "active"
        alert = _nag(rule, key, record, item, finding, now)
        if alert is not None:
            alerts.append(alert)
    if rule.resolve_missing and rule.items:
        for key, record in records.items():
            if key not in seen and record["status"] != "resolved":
                record.update(status="resolved", resolvedAt=iso(now))
    state.update(version=STATE_VERSION, lastUpdated=iso(now))
    return alerts


def told(rule: NagRuleSpec, state: dict[str, Any], step: NagStep, now: datetime) -> None:
    """A message named the nag: the item's count, lastNagged and status advance (once)."""
    record = (state.get("items") or {}).get(step.item)
    if not isinstance(record, dict):
        return
    record.pop("waitingSince", None)
    if int(record.get("nagCount") or 0) >= step.count:
        return  # a rerun, or a held alert older than a nag since
    record.update(nagCount=step.count, lastNagged=iso(now))
    stops = rule.stop_after is not None and step.count >= rule.stop_after
    if stops and record.get("status") == "active":
        record["status"] = "stopped"


def withheld(state: dict[str, Any], step: NagStep, now: datetime) -> None:
    """Caps cut the nag: the item waits, from the first time it was cut."""
    record = (state.get("items") or {}).get(step.item)
    if isinstance(record, dict):
        record.setdefault("waitingSince", iso(now))


def prune(rule: NagRuleSpec, state: dict[str, Any], now: datetime) -> None:
    cutoff = now - timedelta(seconds=rule.retention)
    records = state.get("items", {})
    for key in [k for k, r in records.items() if r.get("status") == "resolved"]:
        resolved = parse_iso(records[key].get("resolvedAt"))
        if resolved is None or resolved < cutoff:
            del records[key]


def _nag(
    rule: NagRuleSpec,
    key: str,
    record: dict[str, Any],
    item: dict[str, Any],
    finding: dict[str, Any],
    now: datetime,
) -> Alert | None:
    """The next nag about the item, if one is due; the record changes only when it is told."""
    if record["status"] == "stopped" or record.get("muted"):  # muted: the person said `stop`
        return None
    days = _days(rule, record, item, now)
    last = parse_iso(record.get("lastNagged"))
    count = int(record.get("nagCount") or 0) + 1
    if rule.once_per is not None:
        if last is not None and not _passed(rule, last, now, rule.once_per, "once_per"):
            return None
        template = rule.message or ""
    else:
        if rule.stop_after is not None and count > rule.stop_after:
            record["status"] = "stopped"
            return None
        if last is not None and not _passed(rule, last, now, rule.min_interval, "min_interval"):
            return None
        step = _step(rule.ladder or [], count)
        if step is None or days < float(step.get("min_days") or 0):
            return None
        template = str(step.get("message", ""))
    values = {**_flat(item), "days": days, "count": count, "source": rule.source, "key": key}
    nag = NagStep(rule.name, key, count)
    return Alert(
        text=fill(template, values),
        source=rule.source,  # a rule sees only its source's findings
        priority=rule.priority,
        urgent=bool(finding.get("urgent")),
        key=nag.key,
        subject=nag.key.rpartition(":")[0],  # the item: held, its latest nag replaces others
        waiting=record.get("waitingSince"),
    )


def _passed(rule: NagRuleSpec, last: datetime, now: datetime, seconds: int, period: str) -> bool:
    """Whether `seconds` have passed since `last` (see not_before)."""
    due = _due(rule, last, seconds, period)
    return due is None or now >= due


def _due(rule: NagRuleSpec, last: datetime | None, seconds: int, period: str) -> datetime | None:
    """When `seconds` since `last` have passed; None when nothing holds a nag back."""
    if last is None or seconds <= 0:
        return None
    calendar = rule.calendar.get(period)
    if calendar is None:  # an older spec says nothing: whole days are calendar days
        calendar = seconds % DAY == 0
    return not_before(last, seconds, calendar, rule.timezone)


class NextNag:
    """An item's next nag as the rule will make it, for `vigil state`."""

    __slots__ = ("count", "mention", "min_days", "not_before")

    def __init__(self, count: int, min_days: float, mention: bool, not_before: datetime | None):
        self.count = count
        self.min_days = min_days
        """Days overdue the item needs first (its rung's min_days)."""
        self.mention = mention
        """A once_per mention rather than a rung of a ladder."""
        self.not_before = not_before
        """None: at the next finding that has the item."""


def next_nag(rule: NagRuleSpec, record: dict[str, Any]) -> NextNag | None:
    """None when no nag is coming: the item is stopped or resolved, or stop_after is reached."""
    if record.get("status") in ("stopped", "resolved") or record.get("muted"):
        return None
    count = int(record.get("nagCount") or 0) + 1
    last = parse_iso(record.get("lastNagged"))
    if rule.once_per is not None:
        return NextNag(count, 0, True, _due(rule, last, rule.once_per, "once_per"))
    if rule.stop_after is not None and count > rule.stop_after:
        return None
    step = _step(rule.ladder or [], count)
    min_days = float(step.get("min_days") or 0) if step is not None else 0.0
    return NextNag(count, min_days, False, _due(rule, last, rule.min_interval, "min_interval"))


def not_before(last: datetime, seconds: int, calendar: bool, timezone: str | None) -> datetime:
    """When a period of `seconds` since `last` has passed: for a period written in days or
    weeks, at the start of the calendar day that many days later in the config's zone (7d
    from a Monday is the next Monday, whatever the clock changes between); for one written in
    hours or less, that much elapsed time, less a little slack for a timer's accuracy."""
    if calendar:
        where = zone(timezone)
        day = last.astimezone(where).date() + timedelta(days=seconds // DAY)
        # A midnight a clock change skips maps to the instant the day begins.
        return datetime.combine(day, time(0), where).astimezone(UTC)
    return last + timedelta(seconds=seconds - min(SLACK, seconds / 10))


def _step(ladder: list[LadderStepJSON], count: int) -> LadderStepJSON | None:
    """The highest rung whose min_count the nag number has reached."""
    reached = [step for step in ladder if int(step.get("min_count") or 1) <= count]
    return reached[-1] if reached else None


def _days(rule: NagRuleSpec, record: dict[str, Any], item: dict[str, Any], now: datetime) -> int:
    """Days overdue: the item's `days_field`, else calendar days since it was first seen."""
    value = dig(item, rule.days_field) if rule.days_field else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    first = parse_iso(record.get("firstSeen")) or now
    return calendar_days(first, now, rule.timezone)


def _flat(item: dict[str, Any]) -> dict[str, Any]:
    """The item's plain fields (what templates may name)."""
    return {k: v for k, v in item.items() if isinstance(v, str | int | float | bool)}

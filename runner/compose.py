"""From alerts to one message per channel: routes, quiet hours, caps with priorities, templates.

Quiet hours hold alerts (never drop them) until the window ends; urgent alerts go out anyway.
Caps keep the highest-priority alerts per source and in total and count the rest ("+3 more").
Nothing to say means no message at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from runner.alerts import Alert
from runner.clock import iso
from runner.template import fill


@dataclass
class Outgoing:
    channel: str
    title: str
    body: str
    urgent: bool
    sources: list[str]
    keys: list[str]

    def message_id(self, batch: str) -> str:
        """Stable for the same batch and channel, so a rerun after a crash is not a second
        message."""
        return hashlib.sha256(f"{batch}\0{self.channel}".encode()).hexdigest()[:24]


def in_quiet_hours(spec: dict[str, Any], now: datetime) -> bool:
    quiet = spec["coordinator"].get("quiet_hours")
    if not quiet:
        return False
    zone = ZoneInfo(quiet.get("timezone") or spec.get("timezone") or "UTC")
    local = now.astimezone(zone).time()
    start, end = _clock(quiet["start"]), _clock(quiet["end"])
    return start <= local < end if start < end else (local >= start or local < end)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def route(spec: dict[str, Any], alert: Alert) -> list[str]:
    if alert.to:
        return alert.to
    policy = spec["coordinator"].get("sources", {}).get(alert.source) or {}
    return list(policy.get("to") or spec["coordinator"]["deliver_to"])


def compose(spec: dict[str, Any], alerts: list[Alert], now: datetime) -> list[Outgoing]:
    by_channel: dict[str, list[Alert]] = {}
    for alert in alerts:
        for channel in route(spec, alert):
            by_channel.setdefault(channel, []).append(alert)
    return [_message(spec, channel, chosen, now) for channel, chosen in sorted(by_channel.items())]


def _message(spec: dict[str, Any], channel: str, alerts: list[Alert], now: datetime) -> Outgoing:
    coordinator = spec["coordinator"]
    kept, cut = _capped(coordinator, alerts)
    form = coordinator["message"]
    lines = [
        fill(form["line"], {"text": a.text, "source": a.source, "priority": a.priority})
        for a in kept
    ]
    if cut:
        lines.append(fill(form["more"], {"more": cut}))
    zone = ZoneInfo(spec.get("timezone") or "UTC")
    title = fill(
        form["title"],
        {"count": len(alerts), "name": spec.get("config"), "date": now.astimezone(zone).date()},
    )
    return Outgoing(
        channel=channel,
        title=title,
        body="\n".join(lines),
        urgent=any(a.urgent for a in alerts),
        sources=sorted({a.source for a in alerts}),
        keys=[a.key for a in alerts],
    )


def _capped(coordinator: dict[str, Any], alerts: list[Alert]) -> tuple[list[Alert], int]:
    """Highest priority first (stable: earlier alerts first among equals), per-source caps,
    then the total cap. Returns what is kept and how many were cut."""
    sources = coordinator.get("sources") or {}
    ordered = sorted(alerts, key=lambda a: -_priority(sources, a))
    kept: list[Alert] = []
    per_source: dict[str, int] = {}
    for alert in ordered:
        cap = (sources.get(alert.source) or {}).get("cap")
        if cap is not None and per_source.get(alert.source, 0) >= cap:
            continue
        per_source[alert.source] = per_source.get(alert.source, 0) + 1
        kept.append(alert)
    total = coordinator.get("total_cap")
    if total is not None:
        kept = kept[:total]
    return kept, len(alerts) - len(kept)


def _priority(sources: dict[str, Any], alert: Alert) -> int:
    source_priority = int((sources.get(alert.source) or {}).get("priority") or 0)
    return max(alert.priority, source_priority)


def held_record(alert: Alert, now: datetime) -> dict[str, object]:
    return {**alert.to_json(), "heldSince": iso(now)}

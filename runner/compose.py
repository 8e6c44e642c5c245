"""From alerts to one message per channel: routes, quiet hours, caps with priorities, templates.

Quiet hours hold alerts (never drop them) until the window ends; urgent alerts go out anyway.
Caps keep the highest-priority alerts per source and in total and count the rest ("+3 more");
among equals, alerts cut before (a nag step that waits) go first, so a cut never hides the same
items for good. vigil's own alerts (failures, rejections, budgets, watches) are never cut.
Nothing to say means no message at all.
"""

from __future__ import annotations

from datetime import time

from runner.alerts import DEFAULT_ROUTE
from runner.clock import zone
from runner.findings import VIGIL_SOURCE
from runner.template import fill, names

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

    from runner.alerts import Alert
    from runner.spectypes import CoordinatorJSON, CoordinatorSpecJSON, SourcePolicyJSON


class Outgoing:
    __slots__ = ("body", "channel", "keys", "named", "sources", "title", "urgent")

    def __init__(
        self,
        channel: str,
        title: str,
        body: str,
        urgent: bool,
        sources: list[str],
        keys: list[str],
        named: list[str],
    ) -> None:
        self.channel = channel
        self.title = title
        self.body = body
        self.urgent = urgent
        self.sources = sources
        self.keys = keys
        """Every alert of the message."""
        self.named = named
        """The alerts it names, in its lines (the rest are counted in '+N more')."""

    def message_id(self, batch: str) -> str:
        """Stable for the same batch and channel, so a rerun after a crash is not a second
        message."""
        from runner.digest import hexdigest

        return hexdigest(f"{batch}\0{self.channel}")[:24]


def in_quiet_hours(spec: CoordinatorSpecJSON, now: datetime) -> bool:
    quiet = spec["coordinator"].get("quiet_hours")
    if not quiet:
        return False
    local = now.astimezone(zone(quiet.get("timezone") or spec.get("timezone"))).time()
    start, end = _clock(quiet["start"]), _clock(quiet["end"])
    return start <= local < end if start < end else (local >= start or local < end)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def route(spec: CoordinatorSpecJSON, alert: Alert) -> list[str]:
    policy = spec["coordinator"].get("sources", {}).get(alert.source)
    default = list((policy.get("to") if policy else None) or spec["coordinator"]["deliver_to"])
    if not alert.to:
        return default
    # A watch that hands off to an agent also notifies the default channels.
    routed = [c for name in alert.to for c in (default if name == DEFAULT_ROUTE else [name])]
    return list(dict.fromkeys(routed))


def compose(spec: CoordinatorSpecJSON, alerts: list[Alert], now: datetime) -> list[Outgoing]:
    by_channel: dict[str, list[Alert]] = {}
    for alert in alerts:
        for channel in route(spec, alert):
            by_channel.setdefault(channel, []).append(alert)
    return [_message(spec, channel, chosen, now) for channel, chosen in sorted(by_channel.items())]


def _message(
    spec: CoordinatorSpecJSON, channel: str, alerts: list[Alert], now: datetime
) -> Outgoing:
    coordinator = spec["coordinator"]
    kept, cut = _capped(coordinator, alerts)
    form = coordinator["message"]
    sources = coordinator.get("sources") or {}
    lines = [_line(form["line"], a, _priority(sources, a)) for a in kept]
    if cut:
        lines.append(fill(form["more"], {"more": cut}))
    values: dict[str, object] = {"count": len(alerts), "name": spec.get("config")}
    if "date" in names(form["title"]):  # the time zone is looked up only when it is shown
        values["date"] = now.astimezone(zone(spec.get("timezone"))).date()
    return Outgoing(
        channel=channel,
        title=fill(form["title"], values),
        body="\n".join(lines),
        urgent=any(a.urgent for a in alerts),
        sources=sorted({a.source for a in alerts}),
        keys=[a.key for a in alerts],
        named=[a.key for a in kept],
    )


def _line(template: str, alert: Alert, priority: int) -> str:
    """One alert's line; {priority} is the one the caps went by. The item's code goes where
    the template says {ref}, else at the end: `• Pay rent is overdue [r7]`."""
    ref = f"[{alert.ref}]" if alert.ref else ""
    line = fill(template, {"text": alert.text, "source": alert.source, "priority": priority,
                           "ref": ref})  # fmt: skip
    if ref and "ref" not in names(template) and not alert.text.endswith(ref):
        line = f"{line} {ref}"
    return line


def _capped(coordinator: CoordinatorJSON, alerts: list[Alert]) -> tuple[list[Alert], int]:
    """vigil's own alerts, all of them; then the others by priority, per-source caps, and the
    total cap in what room is left. Among equal priority, the alert waiting longest (cut
    before) first, else the earlier one. Returns what is kept and how many were cut."""
    sources = coordinator.get("sources") or {}
    own = [alert for alert in alerts if alert.source == VIGIL_SOURCE]
    ordered = sorted(
        (alert for alert in alerts if alert.source != VIGIL_SOURCE),
        # ISO times sort in time order; "~" sorts after every one of them (never cut).
        key=lambda a: (-_priority(sources, a), a.waiting or "~"),
    )
    kept: list[Alert] = []
    per_source: dict[str, int] = {}
    for alert in ordered:
        policy = sources.get(alert.source)
        cap = policy.get("cap") if policy else None
        if cap is not None and per_source.get(alert.source, 0) >= cap:
            continue
        per_source[alert.source] = per_source.get(alert.source, 0) + 1
        kept.append(alert)
    total = coordinator.get("total_cap")
    if total is not None:
        kept = kept[: max(0, total - len(own))]
    return own + kept, len(alerts) - len(own) - len(kept)


def _priority(sources: dict[str, SourcePolicyJSON], alert: Alert) -> int:
    policy = sources.get(alert.source)
    return max(alert.priority, int((policy.get("priority") if policy else None) or 0))

"""An alert: one line of a message, produced by a rule from a finding."""

from __future__ import annotations

from datetime import datetime

from runner.clock import iso

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import SourcePolicyJSON

DEFAULT_ROUTE = "@default"
"""In an alert's `to`: the channels the source would get anyway."""
NAG_KEY = "nag:"
"""How the key of a nag rule's alert begins (`nag:RULE:ITEM:COUNT`, see rules/nag.py)."""
WATCH_KEY = "watch:"
"""How the key of a watch's alert begins (`watch:NAME:KEY:STATE:COUNT`, see rules/watches.py)."""
DEDUP = "dedup:"
"""How the subject of an alert of a source with a `dedup_key` begins: `dedup:SOURCE:KEY`."""


class Alert:
    # A plain class, not a dataclass: `dataclasses` costs ~10 ms at every coordinator start.
    FIELDS = (
        "text", "source", "priority", "urgent", "key", "to", "evidence", "subject", "waiting", "ref"
    )  # fmt: skip
    """What to_json writes and from_json reads, in this order."""
    __slots__ = (
        "evidence",
        "key",
        "priority",
        "ref",
        "source",
        "subject",
        "text",
        "to",
        "urgent",
        "waiting",
    )

    def __init__(
        self,
        text: str,
        source: str,
        priority: int = 0,
        urgent: bool = False,
        key: str = "",  # what makes it unique (rule, item, nag count): held alerts are kept by key
        to: list[str] | None = None,  # channels, when a rule or source routes it; else deliver_to
        evidence: dict[str, object] | None = None,
        subject: str = "",  # what it is about: of held alerts, the latest per subject is kept
        waiting: str | None = None,  # cut by caps since then (ISO): goes first among equals
        ref: str | None = None,  # the item's reference code, once a message names it (talk.refs)
    ) -> None:
        self.text = text
        self.source = source
        self.priority = priority
        self.urgent = urgent
        self.key = key or _digest(f"{source}\0{text}")[:16]
        self.to = to
        self.evidence: dict[str, object] = {} if evidence is None else evidence
        self.subject = subject or self.key
        self.waiting = waiting
        self.ref = ref

    def __repr__(self) -> str:
        return f"Alert({self.to_json()!r})"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {name: getattr(self, name) for name in self.FIELDS}
        data["to"] = None if self.to is None else list(self.to)
        data["evidence"] = dict(self.evidence)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Alert:
        known = {k: data[k] for k in cls.FIELDS if k in data}
        return cls(**known)  # type: ignore[arg-type]


def latest_per_subject(alerts: list[Alert]) -> list[Alert]:
    """One alert per subject, the last one given (a watch repeat held all night is one line in
    the morning, not ten); in the order of those last ones."""
    latest: dict[str, Alert] = {}
    for alert in alerts:
        latest.pop(alert.subject, None)
        latest[alert.subject] = alert
    return list(latest.values())


def held_record(alert: Alert, now: datetime, by: str | None = None) -> dict[str, object]:
    """An alert held back (by quiet hours, a snooze, a maintenance window, an inhibit rule), as
    `state/held.json` keeps it; `by` says why, for people (each run asks again)."""
    record: dict[str, object] = {**alert.to_json(), "heldSince": iso(now)}
    if by:
        record["by"] = by
    return record


def _digest(text: str) -> str:
    from runner.digest import hexdigest

    return hexdigest(text)


def dedup_subject(policy: SourcePolicyJSON | None, finding: dict[str, Any], source: str) -> str:
    """`dedup:SOURCE:KEY` for a source with a `dedup_key`; '' (the alert's own key) else."""
    template = policy.get("dedup_key") if policy else None
    if not template:
        return ""
    from runner.template import fill

    return f"{DEDUP}{source}:{fill(template, finding)}"

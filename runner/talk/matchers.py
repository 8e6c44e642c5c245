"""Which alerts a silence, an inhibit rule or a maintenance window is about: matchers are
{field: [glob, ...]}, fields ANDed, the globs of one field ORed (fnmatch, case-sensitive)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from runner.alerts import NAG_KEY, WATCH_KEY
from runner.findings import VIGIL_SOURCE

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.alerts import Alert

MATCH_FIELDS = ("source", "job", "watch", "kind", "text")
"""What a matcher may name: an alert's source, the job it is about, its watch, its kind (see
runner.contract.ALERT_KINDS) and its text."""

Matchers = dict[str, list[str]]


def facts(alert: Alert) -> dict[str, str]:
    """The alert's value of each field a matcher may name ('' when it has none)."""
    evidence = alert.evidence
    own = alert.source == VIGIL_SOURCE
    job = evidence.get("job") if own else alert.source
    watch = evidence.get("watch") if alert.key.startswith(WATCH_KEY) or own else None
    return {
        "source": alert.source,
        "job": job if isinstance(job, str) else "",
        "watch": watch if isinstance(watch, str) else "",
        "kind": kind_of(alert),
        "text": alert.text,
    }


def kind_of(alert: Alert) -> str:
    """nag, watch, vigil's own kinds (failure, missed, budget, ...), else finding."""
    if alert.key.startswith(NAG_KEY):
        return "nag"
    if alert.key.startswith(WATCH_KEY):
        return "watch"
    if alert.key.startswith("rejected:"):
        return "rejected"
    kind = alert.evidence.get("kind")
    if alert.source == VIGIL_SOURCE and isinstance(kind, str):
        return kind
    return "finding"


def matches(matchers: Matchers, alert_facts: dict[str, str]) -> bool:
    """Whether every field's globs (any of them) match; no fields match nothing."""
    if not matchers:
        return False
    return all(
        any(fnmatchcase(alert_facts.get(field, ""), glob) for glob in globs)
        for field, globs in matchers.items()
    )


def describe(matchers: Matchers) -> str:
    """source=mail job=a|b, for lists and answers."""
    return " ".join(f"{field}={'|'.join(globs)}" for field, globs in matchers.items())

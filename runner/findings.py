"""What makes a finding, checked with stdlib code (the same rules as schemas/finding.schema.json),
and the fields the runner fills in."""

from __future__ import annotations

from datetime import datetime

from runner.clock import iso

VIGIL_SOURCE = "vigil"
"""The source of vigil's own alerts (failures, rejections, budgets, watches): never cut by caps."""
ALERT_PRIORITY = 100
"""The priority of vigil's own alerts (failures, budgets): above any other source's finding."""
FINDING_PRIORITY_MAX = ALERT_PRIORITY - 1
"""The highest priority a finding of another source may give itself."""


def finding_problem(item: object) -> str | None:
    """Why `item` is not a finding, or None when it is one."""
    if not isinstance(item, dict):
        return f"expected a JSON object, got {_json_type(item)}"
    source = item.get("source")
    if source is not None and not (isinstance(source, str) and 0 < len(source) <= 200):
        return "`source` must be a string of 1 to 200 characters"
    timestamp = item.get("timestamp")
    if timestamp is not None and not (isinstance(timestamp, str) and timestamp):
        return "`timestamp` must be a non-empty string (ISO 8601)"
    for key, kind, label in (
        ("message", str, "a string"),
        ("id", str, "a string"),
        ("urgent", bool, "true or false"),
    ):
        value = item.get(key)
        if value is not None and not isinstance(value, kind):
            return f"`{key}` must be {label}"
    priority = item.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        return "`priority` must be a whole number"
    return None


def finding_priority(finding: dict[str, object]) -> int:
    """The finding's own `priority` (0 when it has none), for another source than vigil at most
    FINDING_PRIORITY_MAX: a detector never outranks vigil's failure and rejection alerts."""
    priority = finding.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        return 0
    if finding.get("source") == VIGIL_SOURCE:
        return priority
    return min(priority, FINDING_PRIORITY_MAX)


def completed(item: dict[str, object], source: str, now: datetime) -> dict[str, object]:
    """The finding with `source` and `timestamp` filled in where missing (other keys kept)."""
    finding = dict(item)
    if finding.get("source") is None:
        finding["source"] = source
    if finding.get("timestamp") is None:
        finding["timestamp"] = iso(now)
    return finding


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__

"""Silences made at run time (`vigil silence add`, a `mute` reply), kept in state/silences.json
by the coordinator, their one writer. A silenced alert is not delivered, ever (as Alertmanager's):
it is recorded in state/silenced.json (`vigil inbox --silenced`). Expired silences stay listed
for EXPIRED_KEPT, then go."""

from __future__ import annotations

from runner.clock import iso, parse_iso
from runner.talk.matchers import matches

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

EXPIRED_KEPT = 5 * 86400
"""Seconds an ended silence stays in silences.json (and `vigil silence list --all`)."""
SILENCED_KEPT = 500
"""Entries state/silenced.json keeps, the latest."""


class Silences:
    """The silences of state/silences.json, changed in place."""

    def __init__(self, state: dict[str, Any], writable: bool = True) -> None:
        self.state = state
        self.writable = writable
        """False when the file could not be read: it is left as it is."""
        self.entries: list[dict[str, Any]] = state.setdefault("silences", [])
        self.changed = False

    def add(self, silence: dict[str, Any], now: datetime) -> bool:
        """False when a silence of that id is there already (the same request again)."""
        if any(entry.get("id") == silence.get("id") for entry in self.entries):
            return False
        self.entries.append({"created": iso(now), "matched": 0, **silence})
        self.changed = True
        return True

    def expire(self, silence_id: str, now: datetime) -> dict[str, Any] | None:
        for entry in self.entries:
            if entry.get("id") == silence_id:
                if _active(entry, now):
                    entry["expired"] = iso(now)
                    self.changed = True
                return entry
        return None

    def matching(self, alert_facts: dict[str, str], now: datetime) -> dict[str, Any] | None:
        for entry in self.entries:
            if _active(entry, now) and matches(entry.get("matchers") or {}, alert_facts):
                entry["matched"] = int(entry.get("matched") or 0) + 1
                self.changed = True
                return entry
        return None

    def active(self, now: datetime) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if _active(entry, now)]

    def prune(self, now: datetime) -> None:
        kept = [entry for entry in self.entries if not _gone(entry, now)]
        if len(kept) != len(self.entries):
            self.entries[:] = kept
            self.changed = True


def ends(entry: dict[str, Any]) -> datetime | None:
    """When the silence ends or ended: expired by hand, else its `ends`."""
    return parse_iso(entry.get("expired")) or parse_iso(entry.get("ends"))


def _active(entry: dict[str, Any], now: datetime) -> bool:
    starts, end = parse_iso(entry.get("starts")), ends(entry)
    return (starts is None or starts <= now) and end is not None and now < end


def _gone(entry: dict[str, Any], now: datetime) -> bool:
    end = ends(entry)
    return end is None or (now - end).total_seconds() >= EXPIRED_KEPT


def record(
    log: dict[str, Any], alert_json: dict[str, Any], by: str, action: str, now: datetime
) -> None:
    """Note in state/silenced.json what was held back or dropped, and why."""
    entries: list[dict[str, Any]] = log.setdefault("entries", [])
    entries.append(
        {
            "at": iso(now),
            "by": by,
            "action": action,
            "source": alert_json.get("source"),
            "text": alert_json.get("text"),
            "key": alert_json.get("key"),
        }
    )
    del entries[:-SILENCED_KEPT]

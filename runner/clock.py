"""Time in one format: ISO 8601 UTC with a `Z`, as findings and runs.jsonl carry it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo


def utc_now() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """The moment a run acts at: VIGIL_NOW when set (a simulation or test), else the clock."""
    return parse_iso(os.environ.get("VIGIL_NOW")) or utc_now()


def end_of(started: datetime, real_start: datetime) -> datetime:
    """When a run that started at `started` (its clock: VIGIL_NOW or the real one) ends: its
    start plus the real time elapsed since `real_start`, so a simulated run keeps its length."""
    return started + (utc_now() - real_start)


def iso(moment: datetime, timespec: str = "seconds") -> str:
    """2026-02-02T09:00:00Z (timespec as in datetime.isoformat)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def file_stamp(moment: datetime) -> str:
    """20260202T090000123456Z: sorts in time order inside a file name."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_iso(text: object) -> datetime | None:
    """An aware datetime, or None when `text` is not an ISO 8601 time with an offset."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def calendar_days(earlier: datetime, later: datetime, zone_name: str | None) -> int:
    """Days on the calendar in the zone from `earlier` to `later`: 1 from any time yesterday
    to any time today, 7 from one Monday to the next, whatever the clock changes between."""
    where = zone(zone_name)
    return (later.astimezone(where).date() - earlier.astimezone(where).date()).days


def zone(name: str | None) -> tzinfo:
    """The time zone named `name` (IANA), UTC when there is none."""
    if not name or name == "UTC":
        return UTC
    # zoneinfo costs ~3 ms at start-up: loaded only for a zone other than UTC.
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)

"""Wall-clock arithmetic for the simulation, written from zoneinfo alone (nothing of the runner):
when a daily HH:MM fires as systemd fires it, quiet windows, calendar days and months."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def wall(zone: ZoneInfo, day: date, at: time) -> datetime | None:
    """The instant `day` `at` in `zone` as systemd fires it: None when that wall time does not
    exist (spring forward), the first pass when it happens twice (fall back)."""
    naive = datetime.combine(day, at)
    moment = naive.replace(tzinfo=zone, fold=0)
    back = moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return moment.astimezone(UTC) if back == naive else None


def wall_any(zone: ZoneInfo, day: date, at: time) -> datetime:
    """The instant `day` `at` (a writer outside systemd: a nonexistent time comes out shifted)."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_date(zone: ZoneInfo, moment: datetime) -> date:
    return moment.astimezone(zone).date()


def month_label(zone: ZoneInfo, moment: datetime) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class Quiet:
    """A quiet window start-end in local time (end before start: it spans midnight)."""

    def __init__(self, zone: ZoneInfo, start: str, end: str) -> None:
        self.zone, self.start, self.end = zone, clock(start), clock(end)

    def holds(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """The first instant at or after `moment` outside the window (`moment` is inside)."""
        day = local_date(self.zone, moment)
        for offset in range(3):
            end = wall_any(self.zone, day + timedelta(days=offset), self.end)
            if end >= moment:
                return end
        raise AssertionError("a quiet window longer than two days")


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Every whole UTC hour in [start, end): the heartbeat."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    out = []
    while first < end:
        out.append(first)
        first += timedelta(hours=1)
    return out

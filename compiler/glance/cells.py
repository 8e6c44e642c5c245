"""The arithmetic of the terminal timeline (timeline.py): which cell of the days ahead a firing
falls in, how much of a cell quiet hours or a maintenance window cover, the worst mark of each
past day. Wall clock in the Glance's timezone throughout: a cell is "04:00 to 08:00 on Sunday"
as the clock on the wall says, so on a clock change one of them is an hour shorter or longer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import IntEnum

from compiler.glance.model import Lane, Mark, Run, Shade

CELLS_PER_DAY = (12, 8, 6, 4, 3, 2, 1)
"""How a day ahead may be split: cells of a whole number of hours from midnight."""
FEWEST_CELLS = 4
"""Below this many cells a day, the days ahead wrap into blocks of a week instead."""
WEEK = 7
WORST_FIRST = (Mark.FAILED, Mark.MISSED, Mark.SKIPPED, Mark.OK)
"""A past day shows its worst run: failed > missed > skipped > ok."""


class Cover(IntEnum):
    """How much of a cell a shade covers."""

    NONE = 0
    PART = 1
    FULL = 2


@dataclass(frozen=True)
class Ahead:
    """The days ahead as cells: `per_day` cells a day, the days drawn in blocks of
    `block_days` (all of them in one block when they fit)."""

    days: tuple[date, ...]
    per_day: int
    block_days: int
    where: tzinfo

    @property
    def hours(self) -> int:
        return 24 // self.per_day

    def blocks(self) -> list[tuple[date, ...]]:
        return [
            self.days[i : i + self.block_days] for i in range(0, len(self.days), self.block_days)
        ]

    def bounds(self, day: date, cell: int) -> tuple[datetime, datetime]:
        """The cell's start and end, wall clock in the Glance's timezone."""
        start = datetime.combine(day, time(cell * self.hours), self.where)
        if cell + 1 == self.per_day:
            return start, datetime.combine(day + timedelta(days=1), time(), self.where)
        return start, datetime.combine(day, time((cell + 1) * self.hours), self.where)

    def cell_of(self, moment: datetime) -> tuple[date, int]:
        local = moment.astimezone(self.where)
        return local.date(), local.hour // self.hours


def plan_ahead(days: Sequence[date], room: int, where: tzinfo) -> Ahead:
    """As many cells a day as `room` columns hold (each day one column more, a gap): all the
    days in one block when they fit with FEWEST_CELLS or more a day, else blocks of a week,
    else (more than two weeks) a cell a day in blocks of whole weeks."""
    count = len(days)
    for per_day in CELLS_PER_DAY:
        if per_day >= FEWEST_CELLS and count * (per_day + 1) <= room:
            return Ahead(tuple(days), per_day, count, where)
    if count <= 2 * WEEK:
        block = min(count, WEEK)
        for per_day in CELLS_PER_DAY:
            if block * (per_day + 1) <= room:
                return Ahead(tuple(days), per_day, block, where)
    weeks = max(1, room // (WEEK + 1))
    return Ahead(tuple(days), 1, weeks * WEEK, where)


def firing_counts(lane: Lane, ahead: Ahead) -> dict[tuple[date, int], int]:
    counts: dict[tuple[date, int], int] = {}
    for firing in lane.firings:
        key = ahead.cell_of(firing)
        counts[key] = counts.get(key, 0) + 1
    return counts


def dense(lane: Lane, ahead: Ahead) -> bool:
    """A lane that fires about every cell or more (a heartbeat, a job every minute): drawn as a
    band, not as counts."""
    return lane.cut or len(lane.firings) >= len(ahead.days) * ahead.per_day


def cover(shades: Iterable[Shade], start: datetime, end: datetime) -> Cover:
    """How much of [start, end) the shades cover (they do not overlap one another)."""
    covered = timedelta()
    for shade in shades:
        overlap = min(shade.end, end) - max(shade.start, start)
        if overlap > timedelta():
            covered += overlap
    if covered <= timedelta():
        return Cover.NONE
    return Cover.FULL if covered >= end - start else Cover.PART


def past_days(since: datetime, now: datetime, where: tzinfo) -> tuple[date, ...]:
    """Each calendar day from `since` to today, oldest first."""
    first, last = since.astimezone(where).date(), now.astimezone(where).date()
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def worst_by_day(runs: Iterable[Run], where: tzinfo) -> dict[date, Mark]:
    worst: dict[date, Mark] = {}
    for run in runs:
        day = run.start.astimezone(where).date()
        held = worst.get(day)
        if held is None or WORST_FIRST.index(run.mark) < WORST_FIRST.index(held):
            worst[day] = run.mark
    return worst


def week_groups(days: Sequence[date]) -> list[tuple[date, ...]]:
    """Past days in groups of a week that end with today (the first group may be shorter)."""
    head = len(days) % WEEK
    groups = [tuple(days[:head])] if head else []
    groups += [tuple(days[i : i + WEEK]) for i in range(head, len(days), WEEK)]
    return groups

"""The arithmetic of the terminal timeline (timeline.py): which cell of the days ahead a firing
falls in, how much of a cell quiet hours or a maintenance window cover, the worst mark of each
past day. A cell is "04:00 to 08:00 on Sunday" as the clock on the wall in the Glance's timezone
says, so on a clock change one of them is an hour shorter or longer; how much of it is covered
is measured in instants (`timestamp()`), as Python does not between two times of one zone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import IntEnum

from compiler.glance.model import Lane, Mark, Run, Shade, day_start

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
        start = (
            day_start(day, self.where)
            if cell == 0
            else datetime.combine(day, time(cell * self.hours), self.where)
        )
        if cell + 1 == self.per_day:
            return start, day_start(day + timedelta(days=1), self.where)
        return start, datetime.combine(day, time((cell + 1) * self.hours), self.where)

    @property
    def cells(self) -> int:
        return len(self.days) * self.per_day

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


def cover(shades: Iterable[Shade], start: datetime, end: datetime) -> Cover:
    """How much of [start, end) the shades cover (they do not overlap one another)."""
    first, last = start.timestamp(), end.timestamp()
    covered = 0.0
    for shade in shades:
        overlap = min(shade.end.timestamp(), last) - max(shade.start.timestamp(), first)
        if overlap > 0:
            covered += overlap
    if covered <= 0:
        return Cover.NONE
    return Cover.FULL if covered >= last - first else Cover.PART


def calendar_days(since: datetime, now: datetime, where: tzinfo) -> tuple[date, ...]:
    """Each calendar day from `since` to today, oldest first."""
    first, last = since.astimezone(where).date(), now.astimezone(where).date()
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def runs_by_day(runs: Iterable[Run], where: tzinfo) -> dict[date, list[Run]]:
    """The runs of each calendar day in `where`, in their order."""
    days: dict[date, list[Run]] = {}
    for run in runs:
        days.setdefault(run.start.astimezone(where).date(), []).append(run)
    return days


def worst(runs: Iterable[Run]) -> Mark:
    """The worst mark of `runs` (at least one): failed > missed > skipped > ok."""
    return min((run.mark for run in runs), key=WORST_FIRST.index)


def worst_by_day(runs: Iterable[Run], where: tzinfo) -> dict[date, Mark]:
    """What a day's column shows: the worst of its runs (the terminal's strip, the page's
    busy days)."""
    return {day: worst(listed) for day, listed in runs_by_day(runs, where).items()}


def week_groups(days: Sequence[date]) -> list[tuple[date, ...]]:
    """Past days in groups of a week that end with today (the first group may be shorter)."""
    head = len(days) % WEEK
    groups = [tuple(days[:head])] if head else []
    groups += [tuple(days[i : i + WEEK]) for i in range(head, len(days), WEEK)]
    return groups

"""The status page's two lane charts, one row per job, watch and the coordinator: the week ahead
as a calendar (days as columns, each firing a tick, quiet hours and maintenance windows shaded)
and the past days (each run a mark whose shape and colour say its result, its tooltip when,
how long, the result and why; a lane's busy day one mark, its worst run, with the counts).

Every moment is placed by its instant (`timestamp()`): Python subtracts and compares two
datetimes of one tzinfo by their wall clocks, which across a clock change is an hour off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from markupsafe import Markup

from compiler.glance.cells import runs_by_day, worst
from compiler.glance.model import Glance, Lane, LaneKind, Mark, Run, day_start
from compiler.glance.svg import WIDTH, el, figure, line, rect, text, title
from compiler.glance.words import day, moment, run_tooltip, tally
from runner.clock import zone

LABELS = 190
"""Units left of the time axis for the lanes' names."""
ROW = 26
HEAD = 34
DENSE_PER_DAY = 24
"""More firings a day than this (the coordinator's heartbeat) are drawn as one band."""
RUNS_PER_DAY = 6
"""A lane's day with more runs than this is drawn as one mark (its worst run) with the counts:
the page stays small however often a job runs."""
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a5195", "#8c6d31")
"""Okabe-Ito's colours (told apart with the common colour blindnesses), then two more."""


def lane_colours(glance: Glance) -> dict[str, str]:
    """One colour per lane, in the page's order, shared by the calendar and the spend chart."""
    return {lane.name: PALETTE[n % len(PALETTE)] for n, lane in enumerate(glance.lanes)}


@dataclass(frozen=True)
class Axis:
    """Time from `start` to `end` across the chart's width, right of the lanes' names."""

    start: datetime
    end: datetime

    def x(self, when: datetime) -> float:
        span = self.end.timestamp() - self.start.timestamp()
        offset = when.timestamp() - self.start.timestamp()
        return LABELS + offset / span * (WIDTH - LABELS - 4)

    @property
    def days(self) -> int:
        """The axis' length in days (at least one)."""
        return max(round((self.end.timestamp() - self.start.timestamp()) / 86400), 1)

    def midnights(self, where: tzinfo) -> Iterator[datetime]:
        """Where each day in `where` starts, within the axis."""
        current = self.start.astimezone(where).date()
        while (moment := day_start(current, where)).timestamp() < self.end.timestamp():
            if moment.timestamp() >= self.start.timestamp():
                yield moment
            current += timedelta(days=1)


def week_ahead(glance: Glance) -> Markup:
    where = zone(glance.timezone)
    axis = Axis(day_start(glance.now.astimezone(where).date(), where), glance.until)
    height = HEAD + ROW * len(glance.lanes) + 6
    colours = lane_colours(glance)
    parts = [*_days(axis, where, height, hours=True), *_shades(glance, axis, height, where)]
    for row, lane in enumerate(glance.lanes):
        y = HEAD + row * ROW
        parts += [_name(lane, y), *_firings(lane, axis, y, colours[lane.name], where)]
    parts.append(_now(axis, glance.now, height, where))
    label = f"The week ahead in {glance.timezone}: when each job and watch fires"
    return figure(label, height, *parts)


def past_runs(glance: Glance) -> Markup:
    where = zone(glance.timezone)
    axis = Axis(glance.since, glance.now)
    height = HEAD + ROW * len(glance.lanes) + 6
    parts = [*_days(axis, where, height, hours=False)]
    for row, lane in enumerate(glance.lanes):
        y = HEAD + row * ROW
        parts.append(_name(lane, y))
        parts += _lane_runs(lane, axis, y + ROW / 2, where)
    label = f"Runs from {day(glance.since, where)} to now: a mark per run, by result"
    return figure(label, height, *parts)


def _days(axis: Axis, where: tzinfo, height: float, *, hours: bool) -> Iterator[Markup]:
    """Day columns: a line at each midnight, the day's name above it where there is room (every
    day in a week; Mondays and the first of a month in a month)."""
    midnights = list(axis.midnights(where))
    wide = len(midnights) <= 10
    named = -100.0
    for n, midnight in enumerate(midnights):
        x = axis.x(midnight)
        following = midnights[n + 1] if n + 1 < len(midnights) else axis.end
        if n % 2:  # alternate days faintly banded, so a column reads as one day
            yield rect(x, HEAD - 4, axis.x(following) - x, height - HEAD + 4, class_="band")
        yield line(x, HEAD - 14, x, height, class_="day")
        local = midnight.astimezone(where)
        wanted = wide or local.day == 1 or local.weekday() == 0
        if wanted and x - named > 70 and x < WIDTH - 60:
            yield text(x + 4, 16, day(midnight, where), class_="dayname")
            named = x
        if hours:
            yield from _hours(axis, midnight, following, height)


def _lane_runs(lane: Lane, axis: Axis, y: float, where: tzinfo) -> Iterator[Markup]:
    """A mark per run; a day with more than RUNS_PER_DAY runs one mark, its worst run, in the
    middle of the day's column, its tooltip the counts."""
    for when, runs in runs_by_day(lane.runs, where).items():
        if len(runs) <= RUNS_PER_DAY:
            yield from (_run_mark(lane.name, run, axis.x(run.start), y, where) for run in runs)
            continue
        start, end = _day_span(when, axis, where)
        words = f"{lane.name} · {when:%a} {when.day} {when:%b} · {tally(runs)}"
        x = (axis.x(start) + axis.x(end)) / 2
        yield _mark(lane.name, worst(runs), x, y, words, "run day")


def _day_span(when: date, axis: Axis, where: tzinfo) -> tuple[datetime, datetime]:
    """The part of the day `when` on the axis."""
    start = max(day_start(when, where), axis.start, key=datetime.timestamp)
    end = min(day_start(when + timedelta(days=1), where), axis.end, key=datetime.timestamp)
    return start, end


def _hours(axis: Axis, midnight: datetime, following: datetime, height: float) -> Iterator[Markup]:
    where = midnight.tzinfo
    for hour in (6, 12, 18):
        at = datetime.combine(midnight.date(), time(hour), where)
        if at.timestamp() < following.timestamp():
            yield line(axis.x(at), HEAD - 4, axis.x(at), height, class_="hour")
            yield text(axis.x(at), HEAD - 6, f"{hour:02}", class_="hourname")


def _shades(glance: Glance, axis: Axis, height: float, where: tzinfo) -> Iterator[Markup]:
    for shade in glance.shades:
        start = max(shade.start, axis.start, key=datetime.timestamp)
        end = min(shade.end, axis.end, key=datetime.timestamp)
        if start.timestamp() >= end.timestamp():
            continue
        words = f"{shade.label}: {moment(start, where)} to {moment(end, where)}"
        x = axis.x(start)
        width = axis.x(end) - x
        yield rect(x, HEAD - 4, width, height - HEAD + 4, title(words), class_=shade.kind.value)


def _name(lane: Lane, y: float) -> Markup:
    kind = "" if lane.kind is not LaneKind.WATCH else " (watch)"
    words = lane.name + kind
    shown = words if len(words) <= 26 else words[:25] + "…"
    return text(8, y + ROW / 2 + 4, shown, title(f"{words}: {lane.schedule}"), class_="lane")


def _firings(lane: Lane, axis: Axis, y: float, colour: str, where: tzinfo) -> Iterator[Markup]:
    if lane.note:
        yield text(LABELS + 6, y + ROW / 2 + 4, f"does not fire: {lane.note}", class_="note")
        return
    if lane.dense(axis.days, most=DENSE_PER_DAY):
        words = f"{lane.name}: {lane.schedule} ({len(lane.firings)} firings ahead)"
        x = axis.x(lane.firings[0]) if lane.firings else LABELS
        yield rect(x, y + 10, WIDTH - 4 - x, 6, title(words), fill=colour, class_="dense")
        return
    for firing in lane.firings:
        words = f"{lane.name}: {moment(firing, where)}"
        x, mid = axis.x(firing), y + ROW / 2
        if lane.kind is LaneKind.WATCH:  # a deadline: a diamond
            shape = f"M{x:.1f} {mid - 7:.1f}l6 7-6 7-6-7z"
            yield el("path", title(f"deadline {words}"), d=shape, fill=colour, class_="firing")
        else:
            yield rect(x - 1.5, mid - 8, 3, 16, title(words), fill=colour, class_="firing")


def _now(axis: Axis, now: datetime, height: float, where: tzinfo) -> Markup:
    x = axis.x(now)
    return el("g", title(f"now: {moment(now, where)}"), line(x, HEAD - 14, x, height, class_="now"))


def _run_mark(lane: str, run: Run, x: float, y: float, where: tzinfo) -> Markup:
    return _mark(lane, run.mark, x, y, run_tooltip(lane, run, where), "run")


def _mark(lane: str, mark: Mark, x: float, y: float, words: str, kind: str) -> Markup:
    """A shape per result, so that colour is never the only difference."""
    shapes = {
        Mark.OK: f"M{x - 4:.1f} {y:.1f}a4 4 0 1 0 8 0a4 4 0 1 0-8 0z",  # a dot
        Mark.FAILED: f"M{x - 5:.1f} {y - 5:.1f}l10 10m0-10l-10 10",  # a cross
        Mark.SKIPPED: f"M{x - 4:.1f} {y - 4:.1f}h8v8h-8z",  # a hollow square
        Mark.MISSED: f"M{x:.1f} {y - 5:.1f}l5 9h-10z",  # a hollow triangle
    }
    return el(
        "path",
        title(words),
        d=shapes[mark],
        class_=f"{kind} {mark.value}",
        data_lane=lane,
        data_result=mark.value,
    )

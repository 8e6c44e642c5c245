"""The days behind of the terminal timeline: a column a day, the worst run of the day per lane
(failed > missed > skipped > ok) and a tally; the lanes' notes; the last failures, newest
first, with their time and reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, tzinfo

from compiler.glance.cells import WEEK, calendar_days, week_groups, worst_by_day
from compiler.glance.drawing import MARKS, NAME_WIDTH, NO_RUN, Line, Segment, cut, flat, row
from compiler.glance.model import Glance, Lane, Mark, Run, failed_runs

COUNT_WIDTH = 10
LAST_FAILURES = 5


def behind(glance: Glance, where: tzinfo, width: int, name_width: int) -> list[Line]:
    days = calendar_days(glance.since, glance.now, where)
    groups = week_groups(days)
    room = max(WEEK + 1, width - name_width - 1 - COUNT_WIDTH)
    per_block = max(1, room // (WEEK + 1))
    title = f"behind: {len(days)} days to today, a column a day, its worst run"
    lines: list[Line] = [[(cut(title, width), "dim")]]
    blocks = [groups[i : i + per_block] for i in range(0, len(groups), per_block)]
    for block in blocks:
        labels = "".join(_group_label(group) for group in block)
        lines.append([(" " * (name_width + 1), ""), (labels.rstrip(), "dim")])
        for lane in glance.lanes:
            worst = worst_by_day(lane.runs, where)
            cells: Line = []
            for group in block:
                cells += [_mark(worst.get(day)) for day in group] + [(" ", "")]
            inside = [run for group in block for run in lane.runs if _on(run, group, where)]
            lines.append(row(lane.name, name_width, cells) + _tally(inside))
    return lines


def _group_label(group: Sequence[date]) -> str:
    label = f"{group[0]:%b %d}" if len(group) > 5 else f"{group[0]:%d}"
    fits = len(label) <= len(group)  # a cut label ("2" of "22") would name another day
    return (label if fits else "").ljust(len(group) + 1)


def _on(run: Run, group: Sequence[date], where: tzinfo) -> bool:
    return group[0] <= run.start.astimezone(where).date() <= group[-1]


def _mark(mark: Mark | None) -> Segment:
    return (NO_RUN, "dim") if mark is None else (MARKS[mark], mark.value)


def _tally(runs: Sequence[Run]) -> Line:
    failed = failed_runs(runs)
    missed = sum(run.mark is Mark.MISSED for run in runs)
    if failed:
        return [(f"{failed} failed", "failed")]
    if missed:
        return [(f"{missed} missed", "missed")]
    if not runs:
        return [("no runs", "dim")]
    return [("all ok" if all(run.mark is Mark.OK for run in runs) else "no failure", "dim")]


def notes(lanes: Sequence[Lane], width: int) -> list[Line]:
    return [[(cut(f"{lane.name}: {lane.note}", width), "note")] for lane in lanes if lane.note]


def failures(lanes: Sequence[Lane], where: tzinfo, width: int) -> list[Line]:
    failed = [
        (run, lane.name)
        for lane in lanes
        for run in lane.runs
        if run.mark in (Mark.FAILED, Mark.MISSED)
    ]
    if not failed:
        return []
    failed.sort(key=lambda pair: pair[0].start.timestamp(), reverse=True)
    shown = failed[:LAST_FAILURES]
    title = f"last failures ({len(shown)} of {len(failed)}):"
    lines: list[Line] = [[], [(cut(title, width), "dim")]]
    for run, name in shown:
        when = f"{run.start.astimezone(where):%a %d %b %H:%M}"
        words = f"  {when}  {cut(name, NAME_WIDTH)}  {run.result}"
        if run.reason:
            words += f": {flat(run.reason)}"
        lines.append([(cut(words, width), run.mark.value)])
    return lines

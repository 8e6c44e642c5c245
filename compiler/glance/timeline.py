"""`vigil timeline`: a Glance drawn for the terminal. A header; the days ahead as a grid (a row
per lane, each day split into cells of a few hours, a count of the firings in each, quiet hours
and maintenance windows shaded, the next firing at the end); the days behind as a strip (a
column a day, the worst run of the day); a legend; the last failures.

Lines are drawn as segments of text and a style name. Plain text (a pipe, NO_COLOR) is their
text alone, not an escape code in it: every mark and every shade is a symbol of its own, the
colour only repeats it. On a terminal rich paints them (imported only then). No line is wider
than the width asked for; a long name is cut with an ellipsis, never wrapped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo

from compiler.glance.behind import behind, failures, notes
from compiler.glance.cells import Ahead, Cover, cover, firing_counts, plan_ahead
from compiler.glance.drawing import (
    BAND,
    EMPTY,
    MARKS,
    NAME_WIDTH,
    NO_RUN,
    SHADE,
    STYLES,
    Line,
    Segment,
    cell_width,
    cut,
    row,
    wrapped,
)
from compiler.glance.model import Glance, Lane, Shade, ShadeKind
from runner.clock import zone

NEXT_WIDTH = 11


def render(glance: Glance, *, width: int, colours: str | None = None) -> str:
    """The picture, `width` columns at most. `colours`: rich's colour system for a terminal
    ("standard", "256", "truecolor"); None draws plain text."""
    lines = draw(glance, width)
    if colours is None:
        return "".join("".join(text for text, _ in line) + "\n" for line in lines)
    return _painted(lines, width, colours)


def draw(glance: Glance, width: int) -> list[Line]:
    where = zone(glance.timezone)
    name_width = min(NAME_WIDTH, max(8, width // 4))
    lines = [_header(glance, where, width), []]
    lines += _ahead(glance, where, width, name_width)
    if glance.since.astimezone(where).date() < glance.now.astimezone(where).date() and glance.lanes:
        lines += [[], *behind(glance, where, width, name_width)]
    lines += [[], *_legend(width)]
    lines += notes(glance.lanes, width)
    lines += failures(glance.lanes, where, width)
    return lines


def _painted(lines: Sequence[Line], width: int, colours: str) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.text import Text

    out = StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=True,
        color_system=colours,  # type: ignore[arg-type]
        highlight=False,
        emoji=False,
        markup=False,
    )
    for line in lines:
        text = Text(no_wrap=True, overflow="crop")
        for part, style in _joined(line):
            text.append(part, STYLES.get(style, ""))
        console.print(text)
    return out.getvalue()


def _joined(line: Line) -> Line:
    """Neighbours of one style as one segment: an escape code a run, not a cell."""
    joined: Line = []
    for text, style in line:
        if joined and joined[-1][1] == style:
            joined[-1] = (joined[-1][0] + text, style)
        else:
            joined.append((text, style))
    return joined


# --- the header --------------------------------------------------------------------------------


def _header(glance: Glance, where: tzinfo, width: int) -> Line:
    now = glance.now.astimezone(where)
    generation = glance.generation
    if generation is None:
        installed = "not installed"
    else:
        installed = f"generation {generation.generation}"
        if generation.drift or generation.config_changed:
            installed += " (changed since applied)"
    words = f" · {glance.timezone} · now {now:%a %d %b %Y %H:%M} · {installed}"
    name = cut(glance.name, width)
    return [(name, "title"), (cut(words, width - cell_width(name)), "")]


# --- the days ahead ----------------------------------------------------------------------------


def _ahead(glance: Glance, where: tzinfo, width: int, name_width: int) -> list[Line]:
    first = glance.now.astimezone(where).date()
    last = (glance.until - timedelta(microseconds=1)).astimezone(where).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    ahead = plan_ahead(days, width - name_width - 1 - NEXT_WIDTH, where)
    compact = ahead.per_day == 1 and ahead.block_days > 1
    title = (
        f"ahead: {len(days)} day{'s' * (len(days) != 1)}, "
        + ("a cell a day" if ahead.per_day == 1 else f"cells of {ahead.hours} h from midnight")
        + ", next firing at the end"
    )
    lines: list[Line] = [[(cut(title, width), "dim")]]
    rows = _shade_rows(glance.shades)
    for number, block in enumerate(ahead.blocks()):
        head = _week_labels(block) if compact else _day_labels(block, ahead.per_day)
        lines.append([(" " * (name_width + 1), ""), *head])
        for label, shades in rows:
            lines.append(row(label, name_width, _shade_cells(block, ahead, shades, compact)))
        for lane in glance.lanes:
            cells = _lane_cells(lane, block, ahead, glance, compact)
            after = _next(lane, glance.now, where) if number == 0 else []
            lines.append(row(lane.name, name_width, cells) + after)
        if not glance.lanes:
            lines.append([(cut("no jobs, watches or coordinator", width), "dim")])
    return lines


def _shade_rows(shades: Sequence[Shade]) -> list[tuple[str, list[Shade]]]:
    rows: dict[str, list[Shade]] = {}
    for shade in shades:
        rows.setdefault(shade.label, []).append(shade)
    return list(rows.items())


def _day_labels(block: Sequence[date], per_day: int) -> Line:
    labels = []
    for day in block:
        label = f"{day:%a %d}" if per_day >= 6 else f"{day:%a}"[: max(0, per_day - 2)] + f"{day:%d}"
        labels.append(f"{label[:per_day]:<{per_day}} ")
    return [("".join(labels).rstrip(), "dim")]


def _week_labels(block: Sequence[date]) -> Line:
    labels = [f"{block[i]:%b %d}"[:7].ljust(8) for i in range(0, len(block), 7)]
    return [("".join(labels).rstrip(), "dim")]


def _cells_of(block: Sequence[date], ahead: Ahead, compact: bool) -> Iterable[tuple[date, int]]:
    """Each cell of a block, with the gaps: a day's end (a week's in a compact block)."""
    for index, day in enumerate(block):
        yield from ((day, cell) for cell in range(ahead.per_day))
        if not compact or index % 7 == 6:
            yield day, -1


def _shade_cells(
    block: Sequence[date], ahead: Ahead, shades: Sequence[Shade], compact: bool
) -> Line:
    style = "maintenance" if shades[0].kind is ShadeKind.MAINTENANCE else "quiet"
    cells: Line = []
    for day, cell in _cells_of(block, ahead, compact):
        if cell < 0:
            cells.append((" ", ""))
            continue
        covered = cover(shades, *ahead.bounds(day, cell))
        cells.append((SHADE[covered], style) if covered else (EMPTY, "dim"))
    return cells


def _lane_cells(
    lane: Lane, block: Sequence[date], ahead: Ahead, glance: Glance, compact: bool
) -> Line:
    counts = firing_counts(lane, ahead)
    band = lane.dense(ahead.cells)
    now = glance.now.timestamp()
    cells: Line = []
    for day, cell in _cells_of(block, ahead, compact):
        if cell < 0:
            cells.append((" ", ""))
            continue
        start, end = ahead.bounds(day, cell)
        count = counts.get((day, cell), 0)
        if lane.cut and end.timestamp() > now:
            cells.append((BAND, "band"))
        elif count:
            cells.append((BAND, "band") if band else (str(count) if count < 10 else "+", "count"))
        elif end.timestamp() <= now:
            cells.append((" ", ""))
        else:
            cells.append(_shaded(glance.shades, start, end))
    return cells


def _shaded(shades: Sequence[Shade], start: datetime, end: datetime) -> Segment:
    """The most any shade covers of the cell (a maintenance window's colour on a tie)."""
    covers = [
        (cover((s for s in shades if s.kind is kind), start, end), kind)
        for kind in (ShadeKind.MAINTENANCE, ShadeKind.QUIET)
    ]
    covered, kind = max(covers, key=lambda pair: pair[0])
    return (SHADE[covered], kind.value) if covered else (EMPTY, "dim")


def _next(lane: Lane, now: datetime, where: tzinfo) -> Line:
    if lane.note:
        return [(" " + cut(lane.note, NEXT_WIDTH - 1), "note")]
    coming = lane.next_firing(now)
    if coming is None:
        return [(" none ahead", "dim")]
    first = coming.astimezone(where)
    soon = (first.date() - now.astimezone(where).date()).days < 7
    when = f"{first:%a %H:%M}" if soon else f"{first:%b %d}"
    return [(" " + when, "")]


# --- the legend, the notes and the failures ----------------------------------------------------


def _legend(width: int) -> list[Line]:
    items: list[Line] = [
        [("1-9", "count"), (" firings in a cell (+: 10 or more)", "")],
        [(BAND, "band"), (" fires all along", "")],
        [(SHADE[Cover.FULL], "quiet"), (" shaded all the cell", "")],
        [(SHADE[Cover.PART], "quiet"), (" part of it", "")],
        *([(MARKS[mark], mark.value), (f" {mark.value}", "")] for mark in MARKS),
        [(NO_RUN, "dim"), (" no run", "")],
    ]
    return wrapped(items, width)

"""What the terminal timeline (timeline.py, behind.py) draws with: lines of segments, each a
text and the name of its style; the symbols and their colours; a name cut to its column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from compiler.glance.cells import Cover
from compiler.glance.model import Mark

Segment: TypeAlias = tuple[str, str]
"""Text and the name of its style ("" : none)."""
Line: TypeAlias = list[Segment]

NAME_WIDTH = 18
MARKS = {Mark.OK: "✓", Mark.FAILED: "✗", Mark.MISSED: "○", Mark.SKIPPED: "-"}
NO_RUN = "·"
EMPTY = "·"
BAND = "━"
SHADE = {Cover.FULL: "▒", Cover.PART: "░"}
STYLES = {
    "title": "bold",
    "dim": "dim",
    "name": "bold",
    "count": "bold cyan",
    "band": "cyan",
    "quiet": "blue",
    "maintenance": "magenta",
    "ok": "green",
    "failed": "bold red",
    "missed": "yellow",
    "skipped": "dim",
    "note": "yellow",
}


# --- text --------------------------------------------------------------------------------------


def row(name: str, name_width: int, cells: Line) -> Line:
    return [(f"{cut(name, name_width):<{name_width}} ", "name"), *cells]


def cut(text: str, width: int) -> str:
    """`text` in `width` columns at most: cut with an ellipsis when longer."""
    text = flat(text)
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if width > 0 else ""


def flat(text: str) -> str:
    """One line, no control characters (a reason can hold a newline or an escape)."""
    return "".join(c if c.isprintable() else " " if c in "\t\n\r" else "?" for c in text)


def wrapped(items: Sequence[Line], width: int) -> list[Line]:
    lines: list[Line] = [[]]
    used = 0
    for item in items:
        size = sum(len(text) for text, _ in item)
        if used and used + 2 + size > width:
            lines.append([])
            used = 0
        if used:
            lines[-1].append(("  ", ""))
            used += 2
        lines[-1] += [(cut(text, width), style) for text, style in item]
        used += size
    return lines

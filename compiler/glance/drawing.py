"""What the terminal timeline (timeline.py, behind.py) draws with: lines of segments, each a
text and the name of its style; the symbols and their colours; a name cut to its column.
Widths are a terminal's cells: a wide character (CJK, most emoji) takes two, a combining mark
none (measured here, without rich: plain text does not import it)."""

from __future__ import annotations

import unicodedata
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
    shown = cut(name, name_width)
    return [(shown + " " * (name_width - cell_width(shown) + 1), "name"), *cells]


def char_width(char: str) -> int:
    """The cells `char` takes on a terminal."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def cell_width(text: str) -> int:
    """The cells `text` takes on a terminal."""
    return len(text) if text.isascii() else sum(map(char_width, text))


def cut(text: str, width: int) -> str:
    """`text` in `width` cells at most: cut with an ellipsis when wider."""
    text = flat(text)
    if cell_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        used += char_width(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def flat(text: str) -> str:
    """One line, no control characters (a reason can hold a newline or an escape)."""
    return "".join(c if c.isprintable() else " " if c in "\t\n\r" else "?" for c in text)


def wrapped(items: Sequence[Line], width: int) -> list[Line]:
    lines: list[Line] = [[]]
    used = 0
    for item in items:
        size = sum(cell_width(text) for text, _ in item)
        if used and used + 2 + size > width:
            lines.append([])
            used = 0
        if used:
            lines[-1].append(("  ", ""))
            used += 2
        lines[-1] += [(cut(text, width), style) for text, style in item]
        used += size
    return lines

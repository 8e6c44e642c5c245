"""A few SVG elements as escaped markup, for the status page's charts. Every text and attribute
value goes through markupsafe's escape (a job name or a run's reason comes from the user or a
command), so a chart can hold no markup but what is built here."""

from __future__ import annotations

from markupsafe import Markup, escape

Child = Markup | str | None
WIDTH = 960
"""The drawing's own units; the page scales it to the screen (viewBox, width 100%)."""


def el(name: str, *children: Child, **attrs: object) -> Markup:
    """`<name attrs>children</name>`: attribute names with `_` for `-` (`font_size`), a trailing
    `_` dropped (`class_`); None attributes and children left out."""
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.1f}".removesuffix(".0")
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    inner = Markup("").join(escape(child) for child in children if child is not None)
    return Markup(f"<{' '.join(parts)}>{inner}</{name}>")


def title(text: str) -> Markup:
    """The tooltip a browser shows on hover and a screen reader reads: the first child."""
    return el("title", text)


def figure(label: str, height: float, *children: Child, width: int = WIDTH) -> Markup:
    """An `<svg role=img>` named by `label`, `width` x `height` units, scaled to its box."""
    return el(
        "svg",
        title(label),
        *children,
        viewBox=f"0 0 {width} {height:.0f}",
        role="img",
        class_="chart",
        preserveAspectRatio="xMinYMin meet",
    )


def text(x: float, y: float, words: str, *children: Child, **attrs: object) -> Markup:
    """A label; a `title` among `children` comes first, as the tooltip's element must."""
    return el("text", *children, words, x=x, y=y, **attrs)


def rect(
    x: float, y: float, width: float, height: float, *children: Child, **attrs: object
) -> Markup:
    return el("rect", *children, x=x, y=y, width=width, height=height, **attrs)


def line(x1: float, y1: float, x2: float, y2: float, **attrs: object) -> Markup:
    return el("line", x1=x1, y1=y1, x2=x2, y2=y2, **attrs)

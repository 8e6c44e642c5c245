"""Showing a plan: a fixed label per file and progress on stderr, unified diffs on stdout."""

from __future__ import annotations

import difflib
import sys
from datetime import datetime
from typing import TextIO

from compiler.generate.render import Tree
from compiler.install.plan import Change, Plan
from compiler.language.schedule import CalendarCheckUnavailable, first_elapses

LABEL_WIDTH = 9
COLOURS = {"create": "32", "update": "33", "delete": "31", "+": "32", "-": "31", "@": "36"}


def _paint(text: str, key: str, colour: bool) -> str:
    return f"\x1b[{COLOURS[key]}m{text}\x1b[0m" if colour and key in COLOURS else text


def show_plan(
    plan: Plan,
    new: Tree | None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    verbose: bool = False,
) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    colour_out, colour_err = out.isatty(), err.isatty()
    installed = f"generation {plan.current}" if plan.current is not None else "nothing installed"
    print(f"{plan.name}: {installed}", file=err)
    for change in plan.changes:
        if change.action == "unchanged" and not verbose:
            continue
        label = _paint(f"{change.action:<{LABEL_WIDTH}}", change.action, colour_err)
        print(f"  {label} {change.path}", file=err)
        if change.action == "update":
            _diff(change, out, colour_out)
    unchanged = plan.count("unchanged")
    if unchanged and not verbose:
        print(f"  {'unchanged':<{LABEL_WIDTH}} {unchanged} files", file=err)
    for path in plan.drift:
        print(
            f"drift: {path} was changed by hand since it was installed; apply replaces it", file=err
        )
    for unit in plan.disabled:
        print(
            f"drift: {unit} was disabled by hand; apply enables it again "
            "(set `enabled: false` in the config to keep it off)",
            file=err,
        )
    for path in plan.foreign:
        print(f"conflict: {path} exists but vigil did not write it; apply refuses", file=err)
    if new is not None:
        _next_runs(new, err)
    counts = plan.summary()
    if plan.has_changes:
        words = ", ".join(f"{n} to {action}" for action, n in counts.items())
        if plan.disabled:
            words += f", {len(plan.disabled)} to enable again"
        print(f"Plan: {words}.", file=err)
    else:
        print("No changes.", file=err)


def _diff(change: Change, out: TextIO, colour: bool) -> None:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = (change.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, f"installed/{change.path}", f"new/{change.path}")
    for line in lines:
        text = line if line.endswith("\n") else line + "\n"
        out.write(_paint(text, line[:1], colour) if not line.startswith(("---", "+++")) else text)


def timer_calendars(tree: Tree) -> dict[str, tuple[list[str], str]]:
    """timer unit -> (OnCalendar expressions, timezone) read back from the rendered units."""
    timers = {}
    for path, generated in sorted(tree.items()):
        if not (path.startswith("units/") and path.endswith(".timer")):
            continue
        lines = [
            line.removeprefix("OnCalendar=")
            for line in generated.content.decode().splitlines()
            if line.startswith("OnCalendar=")
        ]
        if lines:
            zone = lines[0].rsplit(" ", 1)[1]
            timers[path.removeprefix("units/")] = ([x.rsplit(" ", 1)[0] for x in lines], zone)
    return timers


def next_runs(tree: Tree) -> dict[str, datetime | None]:
    timers = timer_calendars(tree)
    return dict(zip(timers, first_elapses(list(timers.values())), strict=True))


def _next_runs(tree: Tree, err: TextIO) -> None:
    try:
        runs = next_runs(tree)
    except CalendarCheckUnavailable as exc:
        print(f"next runs: unavailable ({exc})", file=err)
        return
    if runs:
        print("next runs:", file=err)
        width = max(len(unit) for unit in runs)
        for unit, moment in runs.items():
            when = moment.strftime("%a %Y-%m-%d %H:%M %Z") if moment else "never"
            print(f"  {unit:<{width}}  {when}", file=err)

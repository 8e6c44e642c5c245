"""The pictures: `vigil timeline` (the terminal), `vigil report --html FILE` and `vigil serve`
(the status page). Each gathers one Glance (compiler/glance/collect.py) of the config's
installed generation, or of the file when it is not installed, and hands it to its drawing.
Parsed with argparse, as the inspecting commands are (cli/parsed.py): none changes anything."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli.arguments import Commands, add_config_option, add_system, command_parser
from compiler.cli.report import note
from compiler.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from compiler.errors import Warn
    from compiler.glance.model import Glance
    from compiler.language.schedule import FiringsCache

DAYS_AHEAD = 7
DAYS_BEHIND = 30
MOST_DAYS = 366
"""The longest window either way: a year of a minutely job is already cut (FIRINGS_CAP)."""


def gather(
    args: argparse.Namespace, warn: Warn = note, firings: FiringsCache | None = None
) -> Glance:
    """The Glance the options ask for, at the clock's now (VIGIL_NOW in a test); what could
    not be read, and where the config was read from, go to `warn`; `firings` keeps the timers'
    firings from one call to the next (`vigil serve`)."""
    from compiler.cli.inspect import load_installed
    from compiler.glance.collect import collect
    from compiler.layout import Scope
    from runner.clock import now

    for option in ("days", "past"):
        value = getattr(args, option)
        if not 0 <= value <= MOST_DAYS or (option == "days" and value == 0):
            low = 1 if option == "days" else 0
            raise UsageError(f"vigil: --{option} takes {low} to {MOST_DAYS} days, not {value}")
    setup, found = load_installed(args.config, args.system, warn)
    setup.check_local(f"vigil {args.command}")
    return collect(
        setup,
        now=now(),
        days=args.days,
        past=args.past,
        scope=Scope(system=args.system) if found is not None else None,
        found=found,
        warn=warn,
        firings=firings,
    )


def _window_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days",
        type=int,
        default=DAYS_AHEAD,
        metavar="N",
        help=f"Days ahead, today first (default {DAYS_AHEAD}).",
    )
    parser.add_argument(
        "--past",
        type=int,
        default=DAYS_BEHIND,
        metavar="N",
        help=f"Days of past runs (default {DAYS_BEHIND}; 0: none).",
    )
    add_config_option(parser)
    add_system(parser)


NARROWEST = 40
WIDEST = 1000
PLAIN_WIDTH = 80
"""The width of plain text (a pipe) when COLUMNS does not say."""


def _timeline_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "timeline",
        "What runs when: one row per job, watch and the coordinator, the days ahead with\n"
        "quiet hours and maintenance windows shaded, and the past days' runs as marks\n"
        "(ok, failed, skipped, missed). Plain text when not on a terminal or with NO_COLOR.",
    )
    parser.set_defaults(command="timeline")
    parser.add_argument(
        "--width",
        type=int,
        metavar="N",
        help="Columns at most (default: the terminal's; 80 in a pipe, or COLUMNS).",
    )
    _window_options(parser)
    return parser


def _timeline(args: argparse.Namespace) -> int:
    from compiler.glance.timeline import render

    if args.width is not None and not NARROWEST <= args.width <= WIDEST:
        raise UsageError(f"vigil: --width takes {NARROWEST} to {WIDEST} columns, not {args.width}")
    glance = gather(args)
    width, colours = _screen(args.width)
    sys.stdout.write(render(glance, width=width, colours=colours))
    return ExitCode.OK


def _screen(asked: int | None) -> tuple[int, str | None]:
    """The width to draw in and rich's colour system: a terminal's own (rich reads its size,
    COLUMNS and TERM), or plain text, PLAIN_WIDTH wide (or COLUMNS), in a pipe or with
    NO_COLOR set (https://no-color.org: any value but an empty one)."""
    columns = os.environ.get("COLUMNS", "")
    fallback = PLAIN_WIDTH
    if columns.isdigit() and int(columns) > 0:  # held to what --width takes
        fallback = min(max(int(columns), NARROWEST), WIDEST)
    if not sys.stdout.isatty():
        return asked or fallback, None
    from rich.console import Console

    console = Console()
    colours = None if os.environ.get("NO_COLOR") else console.color_system
    return asked or min(max(console.width, NARROWEST), WIDEST), colours


def _report_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "report",
        "Write the status page: one self-contained HTML file (no network, works without\n"
        "JavaScript): the week ahead, the past runs, open items, spend against the budgets\n"
        "and the installed generation.",
    )
    parser.set_defaults(command="report")
    parser.add_argument(
        "--html", type=Path, required=True, metavar="FILE", help="Where to write the page."
    )
    _window_options(parser)
    return parser


def _report(args: argparse.Namespace) -> int:
    from compiler.glance.page import write_page

    write_page(gather(args), args.html)
    note(f"wrote {args.html}")
    return ExitCode.OK


def _serve_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "serve",
        "Serve the status page live, read-only, on 127.0.0.1 (each load gathers it anew).\n"
        "Another address only with --bind, said when it starts.",
    )
    parser.set_defaults(command="serve")
    parser.add_argument(
        "--port", type=int, default=8470, help="The port (default 8470; 0: any free one)."
    )
    parser.add_argument(
        "--bind",
        metavar="ADDRESS",
        help="Listen on this address instead of 127.0.0.1 (anyone who reaches it sees the page).",
    )
    _window_options(parser)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from compiler.glance.serve import serve

    def tell(line: str) -> None:  # the URL, on stdout at once (a script may wait for it)
        print(line, flush=True)

    said: set[str] = set()

    def once(line: str) -> None:  # every load gathers anew: each note is said once
        if line not in said:
            said.add(line)
            note(line)

    import threading

    firings: FiringsCache = {}  # the timers' firings, computed once a day for the server's life
    one_at_a_time = threading.Lock()  # the cache is shared: a page is gathered at a time

    def gathered() -> Glance:
        with one_at_a_time:
            return gather(args, once, firings)

    return serve(gathered, port=args.port, bind=args.bind, tell=tell, warn=once)


PARSERS: Commands = {
    "timeline": (_timeline_parser, _timeline),
    "report": (_report_parser, _report),
    "serve": (_serve_parser, _serve),
}

"""`vigil snooze` and `vigil silence add|list|expire`: parsed with argparse, as the inspecting
commands (cli/inspect.py), so that they start with the standard library alone; the work is in
operate/talkctl.py."""

from __future__ import annotations

import argparse

from compiler.cli.arguments import Commands, add_config_option, add_json, add_system, command_parser
from compiler.cli.inspect import load_setup
from compiler.cli.report import note
from compiler.errors import ExitCode


def _add_ends(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--for", dest="for_", metavar="DURATION", help=f"{what} for 30m, 2h, 1d...")
    parser.add_argument(
        "--until", metavar="TIME", help=f"{what} until tomorrow 9:00, mon 8:00, 2026-12-08 09:00..."
    )


def _snooze(args: argparse.Namespace) -> int:
    import sys

    from compiler.operate.talkctl import ends_at, snooze, when_text
    from runner.clock import now

    setup = load_setup(args.config, args.system)
    setup.check_local("vigil snooze")
    ends = ends_at(args.for_, args.until, now(), setup.timezone)
    what = snooze(setup, setup.state, args.target, args.key, ends, note)
    print(f"{what}: snoozed until {when_text(ends, setup.timezone)}", file=sys.stderr)
    return ExitCode.OK


def _snooze_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "snooze",
        "Quiet an item until a time: by its code in a message ([r7]), or a watch (one of its\n"
        "instances with KEY). It comes back when the snooze ends.",
    )
    parser.add_argument("target", metavar="CODE|WATCH", help="r7, or a watch's name.")
    parser.add_argument("key", nargs="?", metavar="KEY", help="With a watch: one instance.")
    _add_ends(parser, "Snooze")
    add_config_option(parser)
    add_system(parser)
    return parser


def _silence_add(args: argparse.Namespace) -> int:
    import sys

    from compiler.operate.talkctl import (
        add_silence,
        ends_at,
        matches_nothing,
        parse_matchers,
        when_text,
    )
    from runner.clock import now

    matchers = parse_matchers(args.matchers)
    setup = load_setup(args.config, args.system)
    setup.check_local("vigil silence")
    moment = now()
    ends = ends_at(args.for_, args.until, moment, setup.timezone)
    silence_id = add_silence(setup.state, matchers, moment, ends, args.comment, note)
    print(silence_id)
    print(f"{silence_id}: silenced until {when_text(ends, setup.timezone)}", file=sys.stderr)
    for field in matches_nothing(setup, matchers):
        note(f"{silence_id}: its {field} matches nothing in the config")
    return ExitCode.OK


def _silence_list(args: argparse.Namespace) -> int:
    from compiler.cli.tables import show_table
    from compiler.operate.talkctl import for_table, silence_rows
    from runner.clock import now

    setup = load_setup(args.config, args.system)
    setup.check_local("vigil silence")
    moment = now()
    rows = silence_rows(setup.state, moment, note, shown_all=args.all)
    rows = for_table(rows, setup, moment, as_json=args.json)
    columns = ["id", "state", "matchers", "ends", "matched", "comment", "note"]
    show_table(rows, columns, args.json, "no silences")
    return ExitCode.OK


def _silence_expire(args: argparse.Namespace) -> int:
    import sys

    from compiler.operate.talkctl import expire_silence
    from runner.clock import now

    setup = load_setup(args.config, args.system)
    setup.check_local("vigil silence")
    expire_silence(setup.state, args.id, now(), note)
    print(f"{args.id}: ends at the coordinator's next pass", file=sys.stderr)
    return ExitCode.OK


def _silence(args: argparse.Namespace) -> int:
    handler: int = args.run(args)
    return handler


def _silence_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "silence",
        "Hold back alerts that match, for a while, without editing the config. Silences live\n"
        "in the state directory: a rollback neither revives nor deletes them.",
    )
    commands = parser.add_subparsers(dest="action", metavar="add|list|expire", required=True)
    add = commands.add_parser(
        "add",
        help="Silence alerts that match.",
        description="Silence alerts whose FIELD matches GLOB (fields: source, job, watch, kind,\n"
        "text); several fields must all match, the same field twice is either.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("matchers", nargs="+", metavar="FIELD=GLOB", help="job=mail-*, kind=failure")
    _add_ends(add, "Silence")
    add.add_argument("--comment", metavar="TEXT", help="Why, for `silence list`.")
    add.set_defaults(run=_silence_add)
    listing = commands.add_parser("list", help="Silences: active, pending and lately expired.")
    listing.add_argument("--all", action="store_true", help="Every expired silence too.")
    add_json(listing)
    listing.set_defaults(run=_silence_list)
    expire = commands.add_parser("expire", help="End a silence now.")
    expire.add_argument("id", metavar="ID", help="The silence, as `silence list` shows it.")
    expire.set_defaults(run=_silence_expire)
    for sub in (add, listing, expire):
        add_config_option(sub)
        add_system(sub)
    return parser


PARSERS: Commands = {
    "snooze": (_snooze_parser, _snooze),
    "silence": (_silence_parser, _silence),
}
"""Each command's parser (built when used) and what it does."""

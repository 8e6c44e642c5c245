"""The inspecting commands: status, logs, history, watches, inbox, outbox, state and cost.

They read the installed generation (operate/setup.py) and the state directory, and print; their
options are defined here once, with argparse (cli/arguments.py), so that `vigil status` starts
with the standard library alone (cli/main.py). The typer app passes their arguments on unparsed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli.arguments import Commands, add_config_option, add_json, add_system, command_parser
from compiler.cli.report import note
from compiler.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from compiler.errors import Warn
    from compiler.operate.setup import ConfigView, Installed

# --- finding the config and its installation -----------------------------------------------------


def load_setup(given: Path | None, system: bool) -> ConfigView:
    """The config's installed generation, or, when the file was never installed, the file
    itself, validated (slower), with a note saying so. A file changed since it was applied is
    shown as installed (what runs), with a note, as `systemctl status` warns about a unit
    file changed on disk."""
    return load_installed(given, system)[0]


def load_installed(
    given: Path | None, system: bool, warn: Warn = note
) -> tuple[ConfigView, Installed | None]:
    """load_setup's setup, and the installation it was read from (None: the file itself);
    its notes go to `warn`."""
    from compiler.cli.discover import find_config
    from compiler.operate.setup import find_installed

    path = find_config(given)
    found = find_installed(path, system)
    if found is not None:
        if found.changed:
            warn(
                f"{path} has changed since it was applied: shown as installed "
                f"({found.setup.name}, generation {found.generation}); "
                f"`vigil plan {path}` shows the difference"
            )
        return found.setup, found
    return _from_file(path, system, check_calendar=False, warn=warn), None


def _from_file(path: Path, system: bool, *, check_calendar: bool, warn: Warn = note) -> ConfigView:
    from compiler.install.generations import Installation
    from compiler.language.validate import load_config
    from compiler.layout import Scope
    from compiler.operate.setup import ConfigView

    config = load_config(path, check_calendar=check_calendar).config
    scope = Scope(system=system)
    installed = Installation(scope, config.name).current()
    if installed is None:
        warn(f"{config.name} is not installed ({scope.flag}): shown from {path} as written")
    else:
        warn(
            f"{path}: shown from the file as written, not from {config.name}'s generation "
            f"{installed} (applied from another file, or by an older vigil: `vigil apply` again)"
        )
    return ConfigView.of_config(config, system)


# --- the commands ---------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    if args.fleet:
        return _fleet_status(args)
    from compiler.cli.tables import show_table
    from compiler.layout import Scope
    from compiler.operate.status import collect

    setup = load_setup(args.config, args.system)
    setup.check_target(args.job)
    rows = collect(setup, Scope(system=args.system), setup.state, args.job, warn=note)
    columns = ["name", "kind", "enabled", "last_run", "result", "duration_s", "next_run"]
    columns += ["failures_in_row", "tokens_month", "cost_month", "note"]
    show_table([row.as_json() for row in rows], columns, args.json, "nothing to show")
    return ExitCode.FAILED if any(row.failed for row in rows) else ExitCode.OK


def _fleet_status(args: argparse.Namespace) -> int:
    """Every host's jobs, from the fleet's reports; the config names the fleet (installed:
    its generation, stdlib only; else the file, validated)."""
    from compiler.cli.discover import find_config
    from compiler.cli.tables import show_fleet
    from compiler.operate.fleetstatus import fetch, file_settings, fleet_status, installed_settings
    from compiler.operate.setup import find_installed
    from runner.clock import now

    if args.job is not None and args.config is not None:
        raise UsageError("vigil: --fleet takes the config once: CONFIG or --config FILE")
    path = find_config(Path(args.job) if args.job is not None else args.config)
    found = find_installed(path, args.system)
    if found is not None:
        if found.changed:
            note(
                f"{path} has changed since it was applied: its installed generation "
                f"{found.generation} names the fleet; `vigil plan {path}` shows the difference"
            )
        settings = installed_settings(found)
    else:
        from compiler.language.validate import load_config

        settings = file_settings(load_config(path, check_calendar=False).config, path)
    if settings is None:
        raise UsageError("vigil: --fleet needs a config with fleet:")
    shown = fleet_status(settings, fetch(settings), now())
    for problem in shown.problems:
        note(problem)
    show_fleet(shown, settings.timezone, args.json)
    return ExitCode.FAILED if shown.failed else ExitCode.OK


def _logs(args: argparse.Namespace) -> int:
    from compiler.layout import Scope
    from compiler.operate.control import logs

    setup = load_setup(args.config, args.system)
    setup.check_target(args.job)
    return logs(setup, Scope(system=args.system), args.job, args.follow, args.since, args.lines)


def _history(args: argparse.Namespace) -> int:
    if args.job is not None:
        from compiler.cli.tables import show_table
        from compiler.operate.inspect_state import RUN_COLUMNS, run_rows

        setup = load_setup(args.config, args.system)
        setup.check_target(args.job)
        rows = run_rows(setup.state, args.job)
        show_table(rows, list(RUN_COLUMNS), args.json, f"no runs of {args.job} recorded")
        return ExitCode.OK
    from compiler.cli.tables import show_history
    from compiler.install.generations import history
    from compiler.layout import Scope

    if args.config is not None or args.json:
        raise UsageError("--config and --json go with a JOB (`vigil history JOB`)")
    root = args.root.absolute() if args.root else None
    show_history(history(Scope(system=args.system, root=root), args.name))
    return ExitCode.OK


def _watches(args: argparse.Namespace) -> int:
    from compiler.cli.tables import show_table
    from compiler.operate.watchctl import watch_rows

    setup = load_setup(args.config, args.system)
    columns = ["watch", "key", "code", "state", "since", "deadline", "awaits", "evidence"]
    columns.append("handoff")
    show_table(watch_rows(setup, setup.state, note), columns, args.json, "no watches")
    return ExitCode.OK


def _inbox(args: argparse.Namespace) -> int:
    from compiler.cli.tables import show_table

    if args.silenced:
        from compiler.operate.talkctl import silenced_rows

        setup = load_setup(args.config, args.system)
        setup.check_local("vigil inbox --silenced")
        rows = silenced_rows(setup.state, note, None if args.json else setup.timezone)
        columns = ["at", "by", "action", "source", "text"]
        show_table(rows, columns, args.json, "nothing silenced lately")
        return ExitCode.OK
    from compiler.operate.inspect_state import inbox_rows

    rows = inbox_rows(load_setup(args.config, args.system).state)
    show_table(rows, ["where", "file", "source", "reason", "age_s"], args.json, "inbox empty")
    return ExitCode.OK


def _outbox(args: argparse.Namespace) -> int:
    from compiler.cli.tables import show_table
    from compiler.operate.inspect_state import outbox_rows

    rows = outbox_rows(load_setup(args.config, args.system).state)
    columns = ["state", "channel", "title", "attempts", "next_attempt", "last_error"]
    show_table(rows, columns, args.json, "outbox empty")
    return ExitCode.OK


def _state(args: argparse.Namespace) -> int:
    from compiler.cli.tables import show_table
    from compiler.operate.inspect_state import nag_rows

    setup = load_setup(args.config, args.system)
    columns = ["rule", "key", "code", "title", "status", "count", "last_nagged", "next"]
    show_table(nag_rows(setup, setup.state, note), columns, args.json, "no nag items")
    return ExitCode.OK


def _cost(args: argparse.Namespace) -> int:
    """Of the file as it is: the installed specs when it is what was applied, else the file
    validated (an edit's cost before it is applied)."""
    from compiler.cli.tables import show_costs
    from compiler.operate.cost import estimate, heartbeats_per_month
    from compiler.operate.setup import find_installed

    found = find_installed(args.config, args.system)
    if found is not None and not found.changed:
        setup = found.setup
    else:
        from compiler.language.validate import load_config
        from compiler.operate.setup import ConfigView

        setup = ConfigView.of_config(load_config(args.config).config, args.system)
    from runner.clock import now

    # This month is the clock's (VIGIL_NOW in a test), as it is for `vigil status` and the page.
    show_costs(estimate(setup, now=now(), warn=note), heartbeats_per_month(setup), args.json)
    return ExitCode.OK


# --- their parsers -------------------------------------------------------------------------


def _state_table(name: str, description: str) -> argparse.ArgumentParser:
    """A command that shows one table of a config's state: -c, --system, --json."""
    parser = command_parser(name, description)
    add_config_option(parser)
    add_system(parser)
    add_json(parser)
    return parser


def _status_parser() -> argparse.ArgumentParser:
    parser = _state_table(
        "status",
        "Every job, watch and the coordinator: enabled, last run, next run, failures, cost.\n"
        "With --fleet, every host of the fleet and its jobs, as the hosts report them.\n"
        "Exits 1 when anything has failed (with --fleet: a host silent or never reported,\n"
        "or NATS out of reach).",
    )
    parser.add_argument(
        "job",
        nargs="?",
        metavar="JOB",
        help="Only this job, watch or `coordinator`; with --fleet, the config file.",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="Every fleet host: its generation, config, last report, coordinator and jobs "
        "(from NATS).",
    )
    return parser


def _logs_parser() -> argparse.ArgumentParser:
    parser = command_parser("logs", "The journal of a job's units (journalctl underneath).")
    parser.add_argument("job", metavar="JOB", help="A job, a watch or `coordinator`.")
    parser.add_argument("-f", "--follow", action="store_true", help="Keep printing new lines.")
    parser.add_argument("--since", metavar="WHEN", help="journalctl time: '1 hour ago', 'today'...")
    parser.add_argument(
        "-n", "--lines", type=int, default=200, help="How many lines (default: %(default)s)."
    )
    add_config_option(parser)
    add_system(parser)
    return parser


def _history_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "history",
        "List installed generations: number, time, config revision, changes.\n"
        "With JOB, that job's runs from runs.jsonl: start, result (`missed`: its timer fired\n"
        "and nothing ran), duration, reason.",
    )
    parser.add_argument(
        "job",
        nargs="?",
        metavar="JOB",
        help="A job: list its runs instead, missed firings included.",
    )
    parser.add_argument("--name", help="Which installed config (its `name:`).")
    add_system(parser)
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="The generations installed into this directory tree (apply --root).",
    )
    add_config_option(parser)
    add_json(parser, "Print JSON (with JOB).")
    return parser


def _inbox_parser() -> argparse.ArgumentParser:
    parser = _state_table(
        "inbox",
        "Findings waiting in the inbox (or being processed) and files that were rejected.\n"
        "With --silenced, the alerts silences, inhibit rules, maintenance windows and\n"
        "snoozes held back or dropped lately, newest last.",
    )
    parser.add_argument(
        "--silenced", action="store_true", help="What was held back or dropped instead."
    )
    return parser


def _cost_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "cost", "Estimated monthly cost per job beside this month's actual spend (runs.jsonl)."
    )
    parser.add_argument("config", type=Path, metavar="CONFIG", help="The config file (YAML).")
    add_system(parser)
    add_json(parser, "Print JSON instead of a table.")
    return parser


PARSERS: Commands = {
    "status": (_status_parser, _status),
    "logs": (_logs_parser, _logs),
    "history": (_history_parser, _history),
    "watches": (
        lambda: _state_table(
            "watches",
            "Every watch: its state, what it awaits, its deadline, the last evidence, "
            "the hand-off.",
        ),
        _watches,
    ),
    "inbox": (_inbox_parser, _inbox),
    "outbox": (
        lambda: _state_table(
            "outbox",
            "Messages queued, retrying, being sent or dead-lettered, with attempts and the "
            "last error.",
        ),
        _outbox,
    ),
    "state": (
        lambda: _state_table(
            "state", "Nag items: how often each was nagged, when last, and what comes next."
        ),
        _state,
    ),
    "cost": (_cost_parser, _cost),
}
"""Each inspecting command's parser (built when used) and what it does."""

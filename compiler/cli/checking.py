"""The commands that check a config: validate, compile and plan.

They are run most (by hand after each edit, by editors, CI and git hooks), so their options are
defined here once, with argparse (cli/arguments.py): the entry point (cli/main.py) answers them
without typer, and the typer app passes their arguments here unparsed. What they load to check
the config (pydantic, yaml, jinja2) is imported when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli.arguments import Commands, add_system, command_parser
from compiler.cli.report import note, warn
from compiler.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from compiler.install.workflows import Prepared
    from compiler.layout import Scope


def scope_of(system: bool, root: Path | None) -> Scope:
    """--system and --root, as the scope to install into."""
    from compiler.layout import Scope

    return Scope(system=system, root=root.absolute() if root else None)


def wants_canary(prepared: Prepared, flag: bool | None) -> bool:
    """--canary/--no-canary, or else the config's release.canary."""
    if flag is not None:
        return flag
    return prepared.config is not None and prepared.config.release.canary


# --- the commands ---------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    from compiler.cli.views import summarize
    from compiler.generate.build import units_python
    from compiler.generate.packages import missing, needs
    from compiler.language.validate import load_config

    failed = False
    units = units_python(args.python)
    for index, path in enumerate(args.configs):
        try:
            validated = load_config(path)
        except ConfigError as error:
            print(str(error), file=sys.stderr)
            failed = True
            continue
        for warning in validated.warnings:
            warn(f"{path}: {warning}")
        for problem in missing(units, needs(validated.config)):
            warn(f"{path}: {problem}")
        if not args.quiet:
            print(("\n" if index else "") + summarize(validated.config, str(path)), end="")
    return ExitCode.INVALID if failed else ExitCode.OK


def _compile(args: argparse.Namespace) -> int:
    from compiler.cli.views import show_written
    from compiler.generate.build import build, write_tree

    validated, tree = build(args.config, python=args.python, system=args.system, host=args.host)
    for warning in validated.warnings:
        warn(f"{args.config}: {warning}")
    written, removed = write_tree(tree, args.out)
    show_written(str(args.config), str(args.out), len(tree), written, removed)
    return ExitCode.OK


def _plan(args: argparse.Namespace) -> int:
    from compiler.cli.tables import cost_line
    from compiler.cli.views import show_plan
    from compiler.install.workflows import prepare
    from compiler.operate.cost import plan_estimate
    from compiler.operate.setup import ConfigView

    prepared = prepare(
        args.config, scope_of(args.system, args.root), python=args.python, host=args.host
    )
    for warning in (*prepared.warnings, *prepared.missing_packages):
        warn(f"{args.config}: {warning}")
    show_plan(prepared.plan, prepared.tree, verbose=args.verbose)
    if wants_canary(prepared, args.canary) and prepared.plan.has_changes:
        from compiler.cli.tryview import show_canary_plan
        from compiler.install.canary import canary_steps

        show_canary_plan(canary_steps(prepared))
    if prepared.tree is not None:
        documents = {path: generated.content for path, generated in prepared.tree.items()}
        rows = plan_estimate(ConfigView.of_tree(documents), warn=note)
        if rows is not None:
            print(cost_line(rows), file=sys.stderr)
    return ExitCode.FAILED if args.check and prepared.plan.has_changes else ExitCode.OK


# --- their parsers -------------------------------------------------------------------------

CONFIG_HELP = "The config file (YAML)."
PYTHON_HELP = "Interpreter the runner scripts use (default: the one running vigil)."
ROOT_HELP = (
    "Install into this directory tree (standing for the home directory, or / with --system) "
    "without calling systemctl."
)
HOST_HELP = (
    "The fleet host to compile for (a config with `fleet:`; default: this machine, when it is "
    "one of `hosts`)."
)
CANARY_HELP = (
    "Try every new or changed job from the new generation before switching to it "
    "(default: release.canary)."
)


def _python(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", metavar="PATH", help=PYTHON_HELP)


def _host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="NAME", help=HOST_HELP)


def _validate_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "validate",
        "Check configs; print each job with its next runs, or every problem as FILE:LINE:COL.\n"
        "Warns when the units' interpreter lacks a package a config needs.",
    )
    parser.add_argument(
        "configs", nargs="+", type=Path, metavar="CONFIG", help="Config files to check."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="Print only errors.")
    _python(parser)
    return parser


def _of_one_config(name: str, description: str) -> argparse.ArgumentParser:
    """A command that takes one config, CONFIG."""
    parser = command_parser(name, description)
    parser.add_argument("config", type=Path, metavar="CONFIG", help=CONFIG_HELP)
    return parser


def _compile_parser() -> argparse.ArgumentParser:
    parser = _of_one_config(
        "compile", "Render units, runner scripts, job specs and the manifest into a directory."
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="Directory to write the tree into."
    )
    add_system(parser)
    _python(parser)
    _host(parser)
    return parser


def _plan_parser() -> argparse.ArgumentParser:
    parser = _of_one_config(
        "plan", "Dry run: what apply would create, update and delete, with diffs and next runs."
    )
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 when applying would change anything."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="List unchanged files.")
    add_system(parser)
    parser.add_argument("--root", type=Path, metavar="DIR", help=ROOT_HELP)
    _python(parser)
    parser.add_argument("--canary", action=argparse.BooleanOptionalAction, help=CANARY_HELP)
    _host(parser)
    return parser


PARSERS: Commands = {
    "validate": (_validate_parser, _validate),
    "compile": (_compile_parser, _compile),
    "plan": (_plan_parser, _plan),
}
"""Each checking command's parser (built when used) and what it does."""

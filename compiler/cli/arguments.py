"""The commands parsed with argparse, not typer: their shared options, and running one.

The inspecting commands (cli/inspect.py) and the commands that check a config (validate,
compile, plan: cli/checking.py) define their arguments here once, with the standard library,
so that the entry point (cli/main.py) answers them without typer, whose parameters each build a
pydantic adapter. The typer app (cli/commands.py) passes their arguments here unparsed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from compiler.cli.report import reported
from compiler.errors import ExitCode

Handler = Callable[[argparse.Namespace], int]
Commands = dict[str, tuple[Callable[[], argparse.ArgumentParser], Handler]]
"""Each command's parser (built when used) and what it does with what was parsed."""


def command_parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"vigil {name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="The config (default: ./vigil.yaml, then ~/.config/vigil/vigil.yaml).",
    )


def add_system(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system",
        action="store_true",
        help="System units (/etc/systemd/system) instead of --user.",
    )


def add_json(parser: argparse.ArgumentParser, words: str = "Print JSON.") -> None:
    parser.add_argument("--json", action="store_true", help=words)


def parsed_commands() -> Commands:
    """Every command parsed here, by name."""
    from compiler.cli.checking import PARSERS as CHECKING
    from compiler.cli.inspect import PARSERS as INSPECTING

    return {**INSPECTING, **CHECKING}


def description(name: str) -> str:
    """The command's help text, for the typer app's `vigil COMMAND --help` listing."""
    return parsed_commands()[name][0]().description or ""


def run(argv: list[str]) -> int:
    """`argv`: the command and its arguments. Exits 2 (argparse) on a usage error."""
    name, *rest = argv
    make, handler = parsed_commands()[name]
    args = make().parse_args(rest)
    with reported():
        return handler(args)
    return ExitCode.FAILED  # not reached: reported() exits on every error it catches

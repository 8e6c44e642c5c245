"""The commands parsed with argparse, not typer, and running one.

The inspecting commands (cli/inspect.py) and the commands that check a config (validate,
compile, plan: cli/checking.py) define their arguments once, with the standard library, so
that the entry point (cli/main.py) answers them without typer, whose parameters each build a
pydantic adapter. The typer app (cli/commands.py) passes their arguments here unparsed."""

from __future__ import annotations

from compiler.cli.arguments import Commands
from compiler.cli.report import reported
from compiler.errors import ExitCode


def parsed_commands() -> Commands:
    """Every command parsed here, by name."""
    from compiler.cli.checking import PARSERS as CHECKING
    from compiler.cli.inspect import PARSERS as INSPECTING
    from compiler.cli.pictures import PARSERS as PICTURES
    from compiler.cli.talk import PARSERS as TALKING

    return {**INSPECTING, **TALKING, **PICTURES, **CHECKING}


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

"""The `vigil` command's entry point. The inspecting commands (cli/inspect.py), the commands
that check a config (validate, compile, plan: cli/checking.py), `--help`, `--version` and no
arguments at all are answered here without typer: a person types `vigil status` many times a
day, editors and hooks run `vigil validate` on every save, and the typer app costs more to
start than the answer (typer builds a pydantic adapter for every parameter it parses). Every
other command goes to the typer app (cli/commands.py), which accepts these commands too,
through the same parsers (cli/parsed.py)."""

from __future__ import annotations

import os
import sys

from compiler.cli.overview import top_help, version


def main(argv: list[str] | None = None) -> None:
    try:
        _answer(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # `vigil status | head`: the reader left; say nothing more
        from compiler.errors import ExitCode

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.FAILED)


def _answer(args: list[str]) -> None:
    if not args:  # as click's no_args_is_help: a usage error, the help on stderr
        print(top_help(), file=sys.stderr)
        sys.exit(2)
    if args[0] in ("-h", "--help"):
        print(top_help())
        sys.exit(0)
    if args[0] == "--version":
        print(version())
        sys.exit(0)
    from compiler.cli.parsed import parsed_commands, run

    if args[0] in parsed_commands():
        sys.exit(run(args))
    from compiler.cli.commands import app

    app(args, prog_name="vigil")

"""The `vigil` command. It only maps options onto core calls; the work happens elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from compiler import __version__
from compiler.report import INVALID, reported, warn

app = typer.Typer(
    name="vigil",
    help="Compile one YAML file into the systemd timers, path units and runners of an agent's "
    "background layer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigArg = Annotated[Path, typer.Argument(help="The config file (YAML).", show_default=False)]


def _version(value: bool) -> None:
    if value:
        print(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """vigil: the OS schedules, git versions, every run is visible in systemctl and journalctl."""


@app.command()
def validate(
    configs: Annotated[
        list[Path], typer.Argument(help="Config files to check.", show_default=False)
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Check configs; print each job with its next runs, or every problem as FILE:LINE:COL."""
    from compiler.errors import ConfigError
    from compiler.summary import summarize
    from compiler.validate import load_config

    failed = False
    with reported():
        for index, path in enumerate(configs):
            try:
                validated = load_config(path)
            except ConfigError as error:
                print(str(error), file=sys.stderr)
                failed = True
                continue
            for warning in validated.warnings:
                warn(f"{path}: {warning}")
            if not quiet:
                print(("\n" if index else "") + summarize(validated.config, str(path)), end="")
    if failed:
        raise typer.Exit(INVALID)


SystemOpt = Annotated[
    bool, typer.Option("--system", help="System units (/etc/systemd/system) instead of --user.")
]
PythonOpt = Annotated[
    str | None,
    typer.Option(
        "--python",
        help="Interpreter the runner scripts use (default: the one running vigil).",
        show_default=False,
    ),
]


@app.command("compile")
def compile_(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tree into.")],
    system: SystemOpt = False,
    python: PythonOpt = None,
) -> None:
    """Render units, runner scripts, job specs and the manifest into a directory."""
    from compiler.build import build, write_tree

    with reported():
        validated, tree = build(config, python=python, system=system)
        for warning in validated.warnings:
            warn(f"{config}: {warning}")
        removed = write_tree(tree, out)
        print(f"{config}: wrote {len(tree)} files to {out}", file=sys.stderr)
        for relative in removed:
            print(f"  removed {relative}", file=sys.stderr)


@app.command()
def schema(
    finding: Annotated[
        bool, typer.Option("--finding", help="The schema of an inbox finding file instead.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write both schema files into this directory instead.", show_default=False
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of the config language (for editors and CI)."""
    from compiler import schemas

    with reported():
        if out is not None:
            for path in schemas.write_all(out):
                print(f"wrote {path}", file=sys.stderr)
            return
        files = schemas.render_all()
        print(files[schemas.FINDING_SCHEMA_FILE if finding else schemas.CONFIG_SCHEMA_FILE], end="")


@app.command()
def explain(
    schedule: Annotated[
        str, typer.Argument(help="Cron or systemd calendar expression.", show_default=False)
    ],
    tz: Annotated[str, typer.Option("--tz", help="IANA timezone.")] = "UTC",
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, max=1000, help="How many runs.")
    ] = 5,
) -> None:
    """Say a schedule in plain words, with its OnCalendar lines and next runs."""
    from compiler.explain import explain_schedule

    with reported():
        print(explain_schedule(schedule, tz, count), end="")


def main() -> None:
    app()

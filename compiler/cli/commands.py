"""The `vigil` command's typer app. It only maps options onto core calls; the work happens
elsewhere. The inspecting commands (status, logs, history, watches, inbox, outbox, state, cost,
in cli/inspect.py) and the commands that check a config (validate, compile, plan, in
cli/checking.py) are parsed with argparse and run by cli/parsed.py: the entry point
(cli/main.py) calls it without this app, which passes their arguments on unparsed."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from compiler.cli.checking import (
    CANARY_HELP,
    CONFIG_HELP,
    HOST_HELP,
    PYTHON_HELP,
    ROOT_HELP,
    scope_of,
    wants_canary,
)
from compiler.cli.overview import COMMANDS, DESCRIPTION, VERSION_HELP
from compiler.cli.parsed import description, parsed_commands, run
from compiler.cli.report import note, reported, warn
from compiler.errors import ExitCode, UsageError, VigilError

if TYPE_CHECKING:
    from compiler.install.workflows import Prepared
    from compiler.layout import Scope
    from compiler.operate.setup import ConfigView

app = typer.Typer(
    name="vigil",
    help=DESCRIPTION,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Plain help, as systemctl's: rich's help renderer imports rich.markdown and markdown-it,
    # which cost `vigil --help` more than all of typer (about 120 ms).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def _command(name: str, **settings: Any) -> Callable[[CommandFunction], CommandFunction]:
    """Register a command under `name`, with its line of `vigil --help` (cli/main.py)."""
    return app.command(name, short_help=COMMANDS[name], **settings)


ConfigArg = Annotated[Path, typer.Argument(help=CONFIG_HELP, show_default=False)]


def _version(value: bool) -> None:
    if value:
        from compiler.cli.overview import version

        print(version())
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help=VERSION_HELP)
    ] = False,
) -> None:
    """vigil: the OS schedules, git versions, every run is visible in systemctl and journalctl."""


SystemOpt = Annotated[
    bool, typer.Option("--system", help="System units (/etc/systemd/system) instead of --user.")
]
PythonOpt = Annotated[
    str | None,
    typer.Option(
        "--python",
        help=PYTHON_HELP,
        show_default=False,
    ),
]


RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help=ROOT_HELP,
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Which installed config (its `name:`).", show_default=False),
]


def _plan_and_apply(
    prepared: Prepared,
    yes: bool,
    verbose: bool = False,
    canary: bool = False,
    before: Callable[[Prepared], None] | None = None,
) -> None:
    """Show the plan, confirm, apply; `before`: what to do once confirmed, before applying."""
    from compiler.cli.views import show_applied, show_plan
    from compiler.install.workflows import run

    show_plan(prepared.plan, prepared.tree, verbose=verbose)
    if canary and prepared.plan.has_changes:
        from compiler.cli.tryview import show_canary_plan
        from compiler.install.canary import canary_steps

        show_canary_plan(canary_steps(prepared))
    if not prepared.plan.has_changes:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise VigilError("not on a terminal: re-run with --yes to apply this plan")
        if not typer.confirm("Apply these changes?", default=False, err=True):
            print("Nothing applied.", file=sys.stderr)
            return
    if before is not None:
        before(prepared)
    if canary:
        from compiler.cli.tryview import show_canary_try
        from compiler.install.canary import run_canary

        show_applied(prepared.installation.name, run_canary(prepared, show_canary_try))
        return
    show_applied(prepared.installation.name, run(prepared))


def _check_prepared(config: Path, prepared: Prepared, skip_package_check: bool) -> None:
    """The config's warnings; packages the units' interpreter lacks refuse the install."""
    for warning in prepared.warnings:
        warn(f"{config}: {warning}")
    if prepared.missing_packages and skip_package_check:
        for problem in prepared.missing_packages:
            warn(f"{config}: {problem}")
    elif prepared.missing_packages:
        lines = [f"{config}: {problem}" for problem in prepared.missing_packages]
        raise VigilError("\n".join([*lines, "nothing applied"]))


SkipPackagesOpt = Annotated[
    bool,
    typer.Option(
        "--skip-package-check",
        help="Install even when the units' interpreter lacks a package the config needs "
        "(packaging for another machine).",
    ),
]


CanaryOpt = Annotated[
    bool | None,
    typer.Option("--canary/--no-canary", help=CANARY_HELP, show_default=False),
]


@_command("apply")
def apply_(
    config: ConfigArg,
    yes: YesOpt = False,
    git: Annotated[
        str | None,
        typer.Option(
            "--git", help="Apply the config as it was at this git revision.", show_default=False
        ),
    ] = None,
    system: SystemOpt = False,
    root: RootOpt = None,
    python: PythonOpt = None,
    skip_package_check: SkipPackagesOpt = False,
    canary: CanaryOpt = None,
    host: Annotated[str | None, typer.Option("--host", help=HOST_HELP, show_default=False)] = None,
) -> None:
    """Install the config: a new generation, units switched, only changed units restarted."""
    from compiler.install.workflows import prepare

    with reported():
        prepared = prepare(config, scope_of(system, root), python=python, revision=git, host=host)
        _check_prepared(config, prepared, skip_package_check)
        if canary and root is not None:
            raise UsageError("--canary tries jobs in the running systemd: not with --root")
        with_canary = wants_canary(prepared, canary)
        if with_canary and root is not None:  # release.canary: a tree for another machine
            note("release.canary: nothing is tried for --root (no systemd to try jobs in)")
            with_canary = False
        _plan_and_apply(prepared, yes, canary=with_canary)


@_command("rollback")
def rollback(
    generation: Annotated[
        int | None,
        typer.Argument(
            help="Generation to go back to (default: the one before the current).",
            show_default=False,
        ),
    ] = None,
    name: NameOpt = None,
    yes: YesOpt = False,
    system: SystemOpt = False,
    root: RootOpt = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            hidden=True,
            help="The rollback the failure handler asked for (release.auto_rollback): only "
            "while the generation it judged is still live.",
        ),
    ] = False,
) -> None:
    """Go back to an earlier generation (shown as a plan first)."""
    from compiler.install.workflows import prepare_rollback, rollback_request_path

    with reported():
        prepared = prepare_rollback(scope_of(system, root), name, generation, auto=auto)
        if prepared is None:
            print("automatic rollback not needed: the generation it judged is no longer live "
                  "(or nothing asked for it)", file=sys.stderr)  # fmt: skip
            return
        request = rollback_request_path(prepared.installation) if auto else None
        _plan_and_apply(prepared, yes)
        if request is not None:  # done: its reason is in `vigil history` now
            request.unlink(missing_ok=True)


@_command("uninstall")
def uninstall(
    config: Annotated[
        Path | None, typer.Argument(help="The config whose units to remove.", show_default=False)
    ] = None,
    name: NameOpt = None,
    yes: YesOpt = False,
    system: SystemOpt = False,
    root: RootOpt = None,
) -> None:
    """Stop and remove every unit a config installed, and its generations (state is kept)."""
    from compiler.install.generations import resolve_name
    from compiler.install.workflows import prepare_uninstall
    from compiler.language.validate import load_config

    with reported():
        scope = scope_of(system, root)
        if config is not None:
            name = load_config(config, check_calendar=False).config.name
        _plan_and_apply(prepare_uninstall(scope, resolve_name(scope, name)), yes)


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The config (default: ./vigil.yaml, then ~/.config/vigil/vigil.yaml).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@_command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The archive to write (a .tar.gz).")],
    config: ConfigOpt = None,
    name: NameOpt = None,
    unchecked_secrets: Annotated[
        bool,
        typer.Option(
            "--unchecked-secrets",
            help="Export even when a secret file cannot be read here (so the archive cannot "
            "be searched for it); the summary names it.",
        ),
    ] = False,
    system: SystemOpt = False,
    root: RootOpt = None,
) -> None:
    """Write one archive with the config as applied, every generation, the state directory
    and the run history; never a secret."""
    from compiler.backup.export import export as write_export
    from compiler.cli.backupview import show_exported

    with reported():
        installation, setup = _installed(config, name, scope_of(system, root))
        show_exported(write_export(installation, setup, out, unchecked_secrets))


def _installed(config: Path | None, name: str | None, scope: Scope) -> tuple[Any, ConfigView]:
    """The installation to export: by --name, else the one the config file was applied to."""
    from compiler.cli.discover import find_config
    from compiler.install.generations import Installation
    from compiler.operate.setup import find_installed, read_installed

    if name is not None:
        found = read_installed(Installation(scope, name))
        what = f"{name} ({scope.flag})"
    else:
        path = find_config(config)
        found = find_installed(path, scope.system, scope)
        what = f"{path} ({scope.flag}; `vigil apply` it, or name the installation with --name)"
    if found is None:
        raise VigilError(f"{what} is not installed here: nothing to export")
    return found.installation, found.setup


ConfigOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-out",
        help="Where to write the config (default: where it was, under this home; an "
        "existing file is used only if it is the same config).",
        show_default=False,
    ),
]
ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Move a non-empty state directory or stored generations of the config's name "
        "aside (NAME.replaced-TIME) instead of refusing.",
    ),
]
SkipSecretsOpt = Annotated[
    bool,
    typer.Option(
        "--skip-secret-check",
        help="Install even when secret files the config names are missing here.",
    ),
]


@_command("import")
def import_(
    archive: Annotated[Path, typer.Argument(help="An archive `vigil export` wrote.")],
    config_out: ConfigOutOpt = None,
    replace: ReplaceOpt = False,
    skip_secret_check: SkipSecretsOpt = False,
    skip_package_check: SkipPackagesOpt = False,
    python: PythonOpt = None,
    yes: YesOpt = False,
    system: SystemOpt = False,
    root: RootOpt = None,
) -> None:
    """Check an archive whole, restore its state, history and generations, and install its
    config through the normal apply (plan and confirmation)."""
    from compiler.backup.restore import Options, importing
    from compiler.cli.backupview import show_import

    options = Options(config_out, replace, skip_secret_check)
    confirmable = yes or sys.stdin.isatty()
    scope = scope_of(system, root)
    with reported(), importing(archive, scope, options, warn, confirmable=confirmable) as importer:
        show_import(importer)
        prepared = importer.prepare(python)
        _check_prepared(importer.config, prepared, skip_package_check)
        _plan_and_apply(prepared, yes, before=importer.restore)


def _runtime(config: Path | None, system: bool, target: str | None = None) -> ConfigView:
    """The installed config (cli/inspect.py), checked to have `target`."""
    from compiler.cli.inspect import load_setup

    setup = load_setup(config, system)
    setup.check_target(target)
    return setup


TargetArg = Annotated[
    str, typer.Argument(help="A job, a watch or `coordinator`.", show_default=False)
]


@_command("run")
def run_(
    job: TargetArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run and exit with its status.")
    ] = False,
    config: ConfigOpt = None,
    system: SystemOpt = False,
) -> None:
    """Start a job now, through systemd (its run shows in the journal and in status)."""
    from compiler.layout import Scope
    from compiler.operate.control import run_now

    with reported():
        setup = _runtime(config, system, job)
        outcome = run_now(setup, Scope(system=system), setup.state, job, wait)
        print(outcome.message, file=sys.stderr)
    raise typer.Exit(outcome.exit_status)


@_command("try")
def try_(
    jobs: Annotated[
        list[str] | None,
        typer.Argument(help="Jobs to try.", metavar="JOB", show_default=False),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Try every job.")] = False,
    changed: Annotated[
        bool,
        typer.Option("--changed", help="Try the jobs new or changed against what is installed."),
    ] = False,
    no_model: Annotated[
        bool,
        typer.Option(
            "--no-model", help="Stop before the model call: show the prompt and its tokens."
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Run each job's `check:` command instead.")
    ] = False,
    config: ConfigOpt = None,
    system: SystemOpt = False,
    python: PythonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run jobs now exactly as their timers would, and show what would be delivered (nothing
    is). Exits with the job's exit status."""
    from compiler.cli.discover import find_config
    from compiler.cli.tryview import show_tries
    from compiler.install.trial import try_jobs

    names = jobs or []
    with reported():
        if sum((bool(names), every, changed)) != 1:
            raise UsageError("name the jobs to try, or pass --all or --changed (one of them)")
        tries = try_jobs(
            find_config(config),
            scope_of(system, None),
            names,
            every=every,
            changed=changed,
            no_model=no_model,
            check=check,
            python=python,
        )
        if not tries:
            print("no job is new or changed against the installed generation", file=sys.stderr)
        show_tries(tries, as_json)
    failed = [t for t in tries if not t.passed]
    raise typer.Exit(failed[0].exit_code if failed else ExitCode.OK)


def _toggle(job: str, config: Path | None, system: bool, enabled: bool) -> None:
    from compiler.layout import Scope
    from compiler.operate.control import set_enabled

    with reported():
        setup = _runtime(config, system, job)
        unit, pause = set_enabled(setup, Scope(system=system), setup.state, job, enabled)
        word = "enabled and started" if enabled else "stopped and disabled"
        if pause is not None:
            print(f"{unit}: {word}; no longer paused (since {pause.get('since')})", file=sys.stderr)
            return
        print(f"{unit}: {word} (`vigil plan` shows this until the config says so)", file=sys.stderr)


@_command("enable")
def enable(job: TargetArg, config: ConfigOpt = None, system: SystemOpt = False) -> None:
    """Resume a job's timer without editing the config."""
    _toggle(job, config, system, True)


@_command("disable")
def disable(job: TargetArg, config: ConfigOpt = None, system: SystemOpt = False) -> None:
    """Stop a job's timer without editing the config (plan shows it as drift)."""
    _toggle(job, config, system, False)


@_command("doctor")
def doctor(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Check this machine and the installed setup; each problem with a fix. Exits 1 on a fail."""
    from compiler.cli.discover import find_config
    from compiler.cli.views import show_checks
    from compiler.generate.specs import state_dir
    from compiler.language.validate import load_config
    from compiler.layout import Scope
    from compiler.operate.doctor import CheckResult, run_checks

    with reported():
        loaded = load_config(find_config(config), check_calendar=False).config
        state = Path(os.path.expanduser(state_dir(loaded, system)))
        checks = run_checks(loaded, Scope(system=system), state)
        show_checks(checks, as_json)
    if any(check.status == CheckResult.FAIL for check in checks):
        raise typer.Exit(ExitCode.FAILED)


@_command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path("vigil.yaml"),
    name: Annotated[str, typer.Option("--name", help="The config's name (unit prefix).")] = "agent",
    timezone: Annotated[str, typer.Option("--timezone", help="IANA timezone.")] = "UTC",
) -> None:
    """Write a commented starter config and its schema, in a git repository."""
    from compiler.cli.starter import init as write_starter
    from compiler.language.schedule import ScheduleError, check_timezone

    with reported():
        try:
            check_timezone(timezone)
        except ScheduleError as error:
            raise UsageError(str(error)) from None
        for line in write_starter(path, name, timezone, warn=warn):
            print(line, file=sys.stderr)
        print(f"next: vigil validate {path} && vigil plan {path}", file=sys.stderr)


@_command("ack")
def ack(
    watch: Annotated[str, typer.Argument(help="The watch.", show_default=False)],
    key: Annotated[
        str | None, typer.Argument(help="One instance (default: all).", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    system: SystemOpt = False,
) -> None:
    """Acknowledge a watch's alert: its repeats and escalation stop."""
    from compiler.operate.watchctl import ack as drop_ack

    with reported():
        setup = _runtime(config, system)
        drop_ack(setup, setup.state, watch, key, note)
        print(f"{watch}{' ' + key if key else ''}: acknowledged", file=sys.stderr)


watch_app = typer.Typer(help=COMMANDS["watch"], rich_markup_mode=None)
app.add_typer(watch_app, name="watch")


@watch_app.command("arm")
def watch_arm(
    watch: Annotated[str, typer.Argument(help="A file watch.", show_default=False)],
    key: Annotated[str, typer.Option("--key", help="Names this instance ({key} in the path).")],
    within: Annotated[
        str | None,
        typer.Option(
            "--within", help="Overrides the watch's duration: 15m, 2h...", show_default=False
        ),
    ] = None,
    config: ConfigOpt = None,
    system: SystemOpt = False,
) -> None:
    """Start a file watch's clock now for KEY."""
    from compiler.language.model.types import parse_duration
    from compiler.operate.watchctl import arm as drop_arm

    with reported():
        try:
            seconds = parse_duration(within) if within is not None else None
        except ValueError as error:
            raise UsageError(f"--within: {error}") from None
        setup = _runtime(config, system)
        drop_arm(setup, setup.state, watch, key, seconds)
        print(f"{watch} {key}: armed", file=sys.stderr)


@_command("schema")
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
    from compiler.language import schemas

    with reported():
        if out is not None:
            for path in schemas.write_all(out):
                print(f"wrote {path}", file=sys.stderr)
            return
        files = schemas.render_all()
        print(files[schemas.FINDING_SCHEMA_FILE if finding else schemas.CONFIG_SCHEMA_FILE], end="")


@_command("explain")
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
    from compiler.language.explain import explain_schedule

    with reported():
        print(explain_schedule(schedule, tz, count), end="")


def _parsed(name: str) -> None:
    """Accept a command parsed with argparse (cli/parsed.py) here too, its arguments passed
    on unparsed."""

    def command(ctx: typer.Context) -> None:
        raise typer.Exit(run([name, *ctx.args]))

    settings = {"allow_extra_args": True, "ignore_unknown_options": True}
    _command(name, help=description(name), add_help_option=False, context_settings=settings)(
        command
    )


for _name in parsed_commands():
    _parsed(_name)
app.registered_commands.sort(key=lambda command: list(COMMANDS).index(str(command.name)))


def main() -> None:
    """The typer app as a program (the `vigil` command's entry point is cli/main.py, which
    answers the inspecting commands, --help and --version without it)."""
    app()

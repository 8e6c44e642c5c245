"""The `vigil` command. It only maps options onto core calls; the work happens elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compiler.cli.report import note, reported, warn
from compiler.errors import ExitCode, UsageError, VigilError

if TYPE_CHECKING:
    from compiler.install.workflows import Prepared
    from compiler.language.model import Config
    from compiler.layout import Scope

app = typer.Typer(
    name="vigil",
    help="Compile one YAML file into the systemd timers, path units and runners of an agent's "
    "background layer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Plain help, as systemctl's: rich's help renderer imports rich.markdown and markdown-it,
    # which cost `vigil --help` more than all of typer (about 120 ms).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigArg = Annotated[Path, typer.Argument(help="The config file (YAML).", show_default=False)]


def _version(value: bool) -> None:
    if value:
        from compiler import __version__

        print(f"vigil {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
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
        help="Interpreter the runner scripts use (default: the one running vigil).",
        show_default=False,
    ),
]


@app.command()
def validate(
    configs: Annotated[
        list[Path], typer.Argument(help="Config files to check.", show_default=False)
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    python: PythonOpt = None,
) -> None:
    """Check configs; print each job with its next runs, or every problem as FILE:LINE:COL.
    Warns when the units' interpreter lacks a package a config needs."""
    from compiler.cli.views import summarize
    from compiler.errors import ConfigError
    from compiler.generate.build import units_python
    from compiler.generate.packages import missing, needs
    from compiler.language.validate import load_config

    failed = False
    with reported():
        units = units_python(python)
        for index, path in enumerate(configs):
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
            if not quiet:
                print(("\n" if index else "") + summarize(validated.config, str(path)), end="")
    if failed:
        raise typer.Exit(ExitCode.INVALID)


@app.command("compile")
def compile_(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tree into.")],
    system: SystemOpt = False,
    python: PythonOpt = None,
) -> None:
    """Render units, runner scripts, job specs and the manifest into a directory."""
    from compiler.cli.views import show_written
    from compiler.generate.build import build, write_tree

    with reported():
        validated, tree = build(config, python=python, system=system)
        for warning in validated.warnings:
            warn(f"{config}: {warning}")
        written, removed = write_tree(tree, out)
        show_written(str(config), str(out), len(tree), written, removed)


RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Install into this directory tree (standing for the home directory, or / with "
        "--system) without calling systemctl.",
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Which installed config (its `name:`).", show_default=False),
]


def _scope(system: bool, root: Path | None) -> Scope:
    from compiler.layout import Scope

    return Scope(system=system, root=root.absolute() if root else None)


def _plan_and_apply(
    prepared: Prepared, yes: bool, verbose: bool = False, canary: bool = False
) -> None:
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
    if canary:
        from compiler.cli.tryview import show_canary_try
        from compiler.install.canary import run_canary

        show_applied(prepared.installation.name, run_canary(prepared, show_canary_try))
        return
    show_applied(prepared.installation.name, run(prepared))


CanaryOpt = Annotated[
    bool | None,
    typer.Option(
        "--canary/--no-canary",
        help="Try every new or changed job from the new generation before switching to it "
        "(default: release.canary).",
        show_default=False,
    ),
]


def _canary(prepared: Prepared, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return prepared.config is not None and prepared.config.release.canary


@app.command()
def plan(
    config: ConfigArg,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when applying would change anything.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List unchanged files.")] = False,
    system: SystemOpt = False,
    root: RootOpt = None,
    python: PythonOpt = None,
    canary: CanaryOpt = None,
) -> None:
    """Dry run: what apply would create, update and delete, with diffs and next runs."""
    from compiler.cli.views import cost_line, show_plan
    from compiler.install.workflows import prepare
    from compiler.operate.cost import plan_estimate

    with reported():
        prepared = prepare(config, _scope(system, root), python=python)
        for warning in (*prepared.warnings, *prepared.missing_packages):
            warn(f"{config}: {warning}")
        show_plan(prepared.plan, prepared.tree, verbose=verbose)
        if _canary(prepared, canary) and prepared.plan.has_changes:
            from compiler.cli.tryview import show_canary_plan
            from compiler.install.canary import canary_steps

            show_canary_plan(canary_steps(prepared))
        if prepared.config is not None:
            rows = plan_estimate(prepared.config, system=system, warn=note)
            if rows is not None:
                print(cost_line(rows), file=sys.stderr)
    if check and prepared.plan.has_changes:
        raise typer.Exit(ExitCode.FAILED)


@app.command("apply")
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
    skip_package_check: Annotated[
        bool,
        typer.Option(
            "--skip-package-check",
            help="Install even when the units' interpreter lacks a package the config needs "
            "(packaging for another machine).",
        ),
    ] = False,
    canary: CanaryOpt = None,
) -> None:
    """Install the config: a new generation, units switched, only changed units restarted."""
    from compiler.install.workflows import prepare

    with reported():
        prepared = prepare(config, _scope(system, root), python=python, revision=git)
        for warning in prepared.warnings:
            warn(f"{config}: {warning}")
        if prepared.missing_packages and skip_package_check:
            for problem in prepared.missing_packages:
                warn(f"{config}: {problem}")
        elif prepared.missing_packages:
            lines = [f"{config}: {problem}" for problem in prepared.missing_packages]
            raise VigilError("\n".join([*lines, "nothing applied"]))
        if canary and root is not None:
            raise UsageError("--canary tries jobs in the running systemd: not with --root")
        with_canary = _canary(prepared, canary)
        if with_canary and root is not None:  # release.canary: a tree for another machine
            note("release.canary: nothing is tried for --root (no systemd to try jobs in)")
            with_canary = False
        _plan_and_apply(prepared, yes, canary=with_canary)


@app.command()
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
        prepared = prepare_rollback(_scope(system, root), name, generation, auto=auto)
        if prepared is None:
            print("automatic rollback not needed: the generation it judged is no longer live "
                  "(or nothing asked for it)", file=sys.stderr)  # fmt: skip
            return
        request = rollback_request_path(prepared.installation) if auto else None
        _plan_and_apply(prepared, yes)
        if request is not None:  # done: its reason is in `vigil history` now
            request.unlink(missing_ok=True)


@app.command()
def history(
    job: Annotated[
        str | None,
        typer.Argument(
            help="A job: list its runs instead, missed firings included.", show_default=False
        ),
    ] = None,
    name: NameOpt = None,
    system: SystemOpt = False,
    root: RootOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List installed generations: number, time, config revision, changes. With JOB, that
    job's runs from runs.jsonl: start, result (`missed`: its timer fired and nothing ran),
    duration, reason."""
    if job is not None:
        _job_history(job, config, system, as_json)
        return
    from compiler.cli.views import show_history
    from compiler.install.workflows import history as list_history

    with reported():
        if config is not None or as_json:
            raise UsageError("--config and --json go with a JOB (`vigil history JOB`)")
        show_history(list_history(_scope(system, root), name))


def _job_history(job: str, config: Path | None, system: bool, as_json: bool) -> None:
    from compiler.cli.views import show_table
    from compiler.operate.inspect_state import RUN_COLUMNS, run_rows

    with reported():
        loaded, state = _runtime(config, system)
        _known_target(loaded, job)
        rows = run_rows(state, job)
        show_table(rows, list(RUN_COLUMNS), as_json, f"no runs of {job} recorded")


@app.command()
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
    from compiler.install.workflows import prepare_uninstall, resolve_name
    from compiler.language.validate import load_config

    with reported():
        scope = _scope(system, root)
        if config is not None:
            name = load_config(config, check_calendar=False).config.name
        _plan_and_apply(prepare_uninstall(scope, resolve_name(scope, name)), yes)


@app.command()
def cost(
    config: ConfigArg,
    system: SystemOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Estimated monthly cost per job beside this month's actual spend (from runs.jsonl)."""
    from compiler.cli.views import show_costs
    from compiler.language.validate import load_config
    from compiler.operate.cost import estimate, heartbeats_per_month

    with reported():
        validated = load_config(config)
        rows = estimate(validated.config, system=system, warn=note)
        show_costs(rows, heartbeats_per_month(validated.config), as_json)


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


def _runtime(config: Path | None, system: bool) -> tuple[Config, Path]:
    from compiler.cli.discover import find_config
    from compiler.language.validate import load_config
    from compiler.operate.inspect_state import state_dir_of

    loaded = load_config(find_config(config), check_calendar=False).config
    return loaded, state_dir_of(loaded, system)


@app.command()
def status(
    job: Annotated[
        str | None,
        typer.Argument(help="Only this job, watch or `coordinator`.", show_default=False),
    ] = None,
    config: ConfigOpt = None,
    system: SystemOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Every job, watch and the coordinator: enabled, last run, next run, failures, cost.
    Exits 1 when anything has failed."""
    from compiler.cli.views import show_table
    from compiler.layout import Scope
    from compiler.operate.status import collect

    with reported():
        loaded, state = _runtime(config, system)
        _known_target(loaded, job)
        rows = collect(loaded, Scope(system=system), state, job, warn=note)
        columns = ["name", "kind", "enabled", "last_run", "result", "duration_s", "next_run"]
        columns += ["failures_in_row", "tokens_month", "cost_month", "note"]
        show_table([row.as_json() for row in rows], columns, as_json, "nothing to show")
    if any(row.failed for row in rows):
        raise typer.Exit(ExitCode.FAILED)


TargetArg = Annotated[
    str, typer.Argument(help="A job, a watch or `coordinator`.", show_default=False)
]


@app.command("run")
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
        loaded, state = _runtime(config, system)
        _known_target(loaded, job)
        outcome = run_now(loaded, Scope(system=system), state, job, wait)
        print(outcome.message, file=sys.stderr)
    raise typer.Exit(outcome.exit_status)


@app.command()
def logs(
    job: TargetArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="journalctl time: '1 hour ago', 'today'...", show_default=False
        ),
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines.")] = 200,
    config: ConfigOpt = None,
    system: SystemOpt = False,
) -> None:
    """The journal of a job's units (journalctl underneath)."""
    from compiler.layout import Scope
    from compiler.operate.control import logs as show_logs

    with reported():
        loaded, _ = _runtime(config, system)
        _known_target(loaded, job)
        code = show_logs(loaded, Scope(system=system), job, follow, since, lines)
    raise typer.Exit(code)


@app.command("try")
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
            _scope(system, None),
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
        loaded, state = _runtime(config, system)
        _known_target(loaded, job)
        unit, pause = set_enabled(loaded, Scope(system=system), state, job, enabled)
        word = "enabled and started" if enabled else "stopped and disabled"
        if pause is not None:
            print(f"{unit}: {word}; no longer paused (since {pause.get('since')})", file=sys.stderr)
            return
        print(f"{unit}: {word} (`vigil plan` shows this until the config says so)", file=sys.stderr)


@app.command()
def enable(job: TargetArg, config: ConfigOpt = None, system: SystemOpt = False) -> None:
    """Resume a job's timer without editing the config."""
    _toggle(job, config, system, True)


@app.command()
def disable(job: TargetArg, config: ConfigOpt = None, system: SystemOpt = False) -> None:
    """Stop a job's timer without editing the config (plan shows it as drift)."""
    _toggle(job, config, system, False)


@app.command()
def doctor(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Check this machine and the installed setup; each problem with a fix. Exits 1 on a fail."""
    from compiler.cli.views import show_checks
    from compiler.layout import Scope
    from compiler.operate.doctor import CheckResult, run_checks

    with reported():
        loaded, state = _runtime(config, system)
        checks = run_checks(loaded, Scope(system=system), state)
        show_checks(checks, as_json)
    if any(check.status == CheckResult.FAIL for check in checks):
        raise typer.Exit(ExitCode.FAILED)


@app.command()
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


@app.command()
def watches(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Every watch: its state, what it awaits, its deadline, the last evidence, the hand-off."""
    from compiler.cli.views import show_table
    from compiler.operate.watchctl import watch_rows

    with reported():
        loaded, state = _runtime(config, system)
        columns = ["watch", "key", "state", "since", "deadline", "awaits", "evidence", "handoff"]
        show_table(watch_rows(loaded, state, note), columns, as_json, "no watches")


@app.command()
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
        loaded, state = _runtime(config, system)
        drop_ack(loaded, state, watch, key, note)
        print(f"{watch}{' ' + key if key else ''}: acknowledged", file=sys.stderr)


watch_app = typer.Typer(
    help="Arm file watches by hand (an agent hands off a task).", rich_markup_mode=None
)
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
        loaded, state = _runtime(config, system)
        drop_arm(loaded, state, watch, key, seconds)
        print(f"{watch} {key}: armed", file=sys.stderr)


def _known_target(config: Config, name: str | None) -> None:
    from compiler.language.references import did_you_mean

    names = [*config.jobs, *config.watches, "coordinator"]
    if name is not None and name not in names:
        raise UsageError(did_you_mean(name, names, "job or watch", "jobs and watches"))


@app.command()
def inbox(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Findings waiting in the inbox (or being processed) and files that were rejected."""
    from compiler.cli.views import show_table
    from compiler.operate.inspect_state import inbox_rows

    with reported():
        _, state = _runtime(config, system)
        rows = inbox_rows(state)
        show_table(rows, ["where", "file", "source", "reason", "age_s"], as_json, "inbox empty")


@app.command()
def outbox(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Messages queued, retrying, being sent or dead-lettered, with attempts and the last error."""
    from compiler.cli.views import show_table
    from compiler.operate.inspect_state import outbox_rows

    with reported():
        _, state = _runtime(config, system)
        columns = ["state", "channel", "title", "attempts", "next_attempt", "last_error"]
        show_table(outbox_rows(state), columns, as_json, "outbox empty")


@app.command("state")
def state_(config: ConfigOpt = None, system: SystemOpt = False, as_json: JsonOpt = False) -> None:
    """Nag items: how often each was nagged, when last, and what comes next."""
    from compiler.cli.views import show_table
    from compiler.operate.inspect_state import nag_rows

    with reported():
        loaded, state = _runtime(config, system)
        columns = ["rule", "key", "title", "status", "count", "last_nagged", "next"]
        show_table(nag_rows(loaded, state, note), columns, as_json, "no nag items")


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
    from compiler.language import schemas

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
    from compiler.language.explain import explain_schedule

    with reported():
        print(explain_schedule(schedule, tz, count), end="")


def main() -> None:
    app()

"""Operating installed jobs through systemd: `vigil run`, `logs`, `enable`, `disable`.
vigil never runs a job in-process here: systemd starts it, so the run is in the journal and in
`systemctl status` like any other."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.errors import ExitCode, UsageError, VigilError
from compiler.install.systemctl import Systemctl
from compiler.layout import Scope
from compiler.operate.setup import ConfigView
from runner.contract import (
    COORDINATOR_PASS_TIMEOUT,
    failure_instance,
    job_unit,
    preflight_unit,
    service,
    timer,
    watch_unit,
)
from runner.fsatomic import describe
from runner.history import runs
from runner.pause import clear_pause
from runner.rules.watches import kind_of
from runner.statefile import StateUnreadable


def units_of(config: ConfigView, target: str) -> list[str]:
    """The target's units, its service first."""
    name = config.name
    if target == "coordinator" and config.coordinator_units:
        return list(config.coordinator_units)
    if target in config.jobs:
        stem = job_unit(name, target)
        return [service(stem), timer(stem)]
    if target in config.watches:
        if target not in config.timed_watches:
            kind = kind_of(config.watches[target])
            raise UsageError(
                f"watch {target!r} is a {kind} watch: the coordinator evaluates it and it "
                "has no units of its own (see `vigil watches`, `vigil logs coordinator`)"
            )
        stem = watch_unit(name, target)
        return [service(stem), timer(stem)]
    if target == "coordinator":
        raise UsageError(f"this fleet host does not run {name}'s coordinator (`coordinator.hosts`)")
    raise UsageError(f"{target!r} is not a job or watch of {name}")


@dataclass(frozen=True)
class RunOutcome:
    """What `vigil run` did: a line saying how it went, and the status to exit with."""

    message: str
    exit_status: int


def run_now(config: ConfigView, scope: Scope, state: Path, target: str, wait: bool) -> RunOutcome:
    """Start the target's service through systemd; with `wait`, say how it ended and pass on
    its exit status."""
    main = units_of(config, target)[0]
    if target == "coordinator" and len(config.coordinator_units) == 1:
        raise VigilError(
            f"{main}: the fleet coordinator is a long-running service, not run by hand "
            f"(`systemctl {scope.flag} restart {main}` restarts it)"
        )
    systemd = Systemctl(scope)
    if target == "coordinator":
        return _coordinator_pass(systemd, main, state, wait)
    if not wait:
        systemd.run("start", "--no-block", main)
        return RunOutcome(f"{main}: started (see `vigil logs {target}`)", ExitCode.OK)
    systemd.run("start", main, check=False)  # a oneshot start waits for the run to end
    shown = systemd.show(main, "Result", "ExecMainStatus", "InvocationID")
    return _outcome(main, shown, *_record(state, shown.get("InvocationID")))


def _coordinator_pass(systemd: Systemctl, main: str, state: Path, wait: bool) -> RunOutcome:
    """A coordinator pass now. A run that lingers for the next finding (runner.warm) is stopped
    first (it leaves at once), or a start would only wait for it to end; a start by hand makes
    one pass and leaves. `wait` waits for that pass's record, not for the run's end: a finding
    landing meanwhile makes the path unit's run of it, which lingers."""
    systemd.run("stop", main)
    before = systemd.show(main, "InvocationID").get("InvocationID")
    systemd.run("start", "--no-block", main)
    if not wait:
        return RunOutcome(f"{main}: started (see `vigil logs coordinator`)", ExitCode.OK)
    deadline = time.monotonic() + COORDINATOR_PASS_TIMEOUT + PASS_WAIT_MARGIN
    while True:
        shown = systemd.show(main, "ActiveState", "Result", "ExecMainStatus", "InvocationID")
        started = shown.get("InvocationID") not in (None, "", before)
        record, unreadable = _record(state, shown.get("InvocationID")) if started else (None, None)
        if started and shown.get("ActiveState") in ("inactive", "failed"):
            return _outcome(main, shown, record, unreadable)
        if record is not None:  # the pass is done; the run may linger: its record tells
            words = f"{main}: {record.get('result')}: {record.get('reason')}"
            ok = record.get("result") == "ok"
            return RunOutcome(words, ExitCode.OK if ok else ExitCode.FAILED)
        if time.monotonic() > deadline:
            raise VigilError(f"{main}: no pass recorded within {COORDINATOR_PASS_TIMEOUT}s")
        time.sleep(0.1)


PASS_WAIT_MARGIN = 30
"""Seconds `vigil run coordinator --wait` waits beyond a pass's own limit."""


def _record(state: Path, invocation: str | None) -> tuple[dict[str, object] | None, str | None]:
    """The runs.jsonl record of the run systemd knows as `invocation`, if it is there yet; or
    why runs.jsonl cannot be read."""
    if not invocation:
        return None, None
    try:
        found = (r for r in runs(str(state)) if r.get("invocation_id") == invocation)
        return next(found, None), None
    except OSError as error:  # the run happened: its status still counts
        return None, describe(error)


def _outcome(
    main: str, shown: dict[str, str], record: dict[str, object] | None, unreadable: str | None
) -> RunOutcome:
    status = int(shown.get("ExecMainStatus") or 0)
    result = shown.get("Result", "unknown")
    words = f"{main}: {result} (exit status {status})"
    if unreadable is not None:
        words += f" (runs.jsonl cannot be read: {unreadable})"
    elif record is not None:
        words += f", {record.get('result')}"
        if record.get("reason"):
            words += f": {record.get('reason')}"
    if result != "success" and status == 0:
        return RunOutcome(words, ExitCode.FAILED)
    return RunOutcome(words, status)


def logs(
    config: ConfigView, scope: Scope, target: str, follow: bool, since: str | None, lines: int
) -> int:
    if shutil.which("journalctl") is None:
        raise VigilError("journalctl not found")
    command = ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines)]
    units = units_of(config, target)
    # The failure handler's runs about this target belong to its story too (OnFailure= names
    # the instance after the failed unit: <name>-failure@<unit>.service), and so do its
    # preflights.
    units.append(failure_instance(config.name, units[0]))
    units += preflight_units(config, target)
    command += journal_matches(units, scope.system, os.getuid())
    if since:
        command += ["--since", since]
    if follow:
        command.append("--follow")
    return subprocess.run(command, check=False).returncode


def journal_matches(units: list[str], system: bool, uid: int) -> list[str]:
    """journalctl matches for the units' own lines, the manager's lines about them, and lines
    by their syslog identifier: journald attributes a line to a unit from the writer's cgroup,
    which it cannot read once a short-lived writer has exited; the identifier (every vigil
    service sets SyslogIdentifier= to its name) is in the line itself.

    Spelled out instead of `--user-unit`/`--unit` because journalctl ANDs those with any other
    match. Not `--user` either: that reads only the per-user journal files, which root's (and,
    with a volatile journal, everyone's) user units never write."""
    own, about = ("_SYSTEMD_UNIT", "UNIT") if system else ("_SYSTEMD_USER_UNIT", "USER_UNIT")
    # The system manager is PID 1; a user manager and its services run as the user.
    sender = ["_PID=1"] if system else [f"_UID={uid}"]
    owner = ["_UID=0"] if system else [f"_UID={uid}"]
    identifiers = [
        unit.removesuffix(".service")
        for unit in units
        if unit.endswith(".service") and "@" not in unit  # templates share one identifier
    ]
    matches = [f"{own}={unit}" for unit in units] + owner
    matches += ["+", *(f"{about}={unit}" for unit in units), *sender]
    if identifiers:
        matches += ["+", *(f"SYSLOG_IDENTIFIER={name}" for name in identifiers), *owner]
    return matches


def preflight_units(config: ConfigView, target: str) -> list[str]:
    """A job's preflight service and timer (none without `preflight:`)."""
    job = config.jobs.get(target)
    if job is None or not job.preflight:
        return []
    stem = preflight_unit(config.name, target)
    return [service(stem), timer(stem)]


def set_enabled(
    config: ConfigView, scope: Scope, state: Path, target: str, enabled: bool
) -> tuple[str, dict[str, object] | None]:
    """Start and enable (or stop and disable) the target's trigger; enabling a job paused by
    `pause_after` ends the pause. The trigger, and the pause ended, if any."""
    units = units_of(config, target)
    # The coordinator's path unit (a fleet coordinator's: its service).
    trigger = units[-1] if target != "coordinator" else units[min(1, len(units) - 1)]
    # A stopped job's preflight would warn about a run that will not happen.
    triggers = [trigger, *preflight_units(config, target)[1:]]
    systemd = Systemctl(scope)
    if not enabled:
        systemd.run("disable", "--now", *triggers)
        if target == "coordinator":  # a run lingering for the next finding ends too
            systemd.run("stop", units[0])
        return trigger, None
    pause = None
    if target in config.jobs:
        # The record goes first: a timer running under a pause record would fail unalerted.
        try:
            pause = clear_pause(str(state), target, datetime.now(UTC))
        except (OSError, StateUnreadable) as error:
            why = describe(error) if isinstance(error, OSError) else str(error)
            raise VigilError(f"{target}: its pause cannot be ended: {why}") from None
    systemd.run("enable", "--now", *triggers)
    return trigger, pause

"""`python -m runner job SPEC --preflight`: a job's `check:` run `preflight:` before each
firing (its own timer, the job's own service settings). A failure raises one alert at once
("morning-briefing is due at 07:15 and will fail: ..."), and no other until a preflight passes
again, which says so. Nothing is recorded in runs.jsonl: a preflight is not a run of the job
(chains, budgets, pauses and "did it run?" count runs); the journal and state/preflight.json
have it.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import datetime, timedelta

from runner.clock import iso, parse_iso
from runner.clock import now as clock_now
from runner.command import run_command
from runner.contract import PREFLIGHT_STATE
from runner.exitcodes import FAILED, OK, STORAGE
from runner.fsatomic import describe, ensure_dir, locked, state_path, write_state
from runner.job import unit_redactor
from runner.spec import JobSpec
from runner.statefile import StateUnreadable, load_state, own_alert, unreadable
from runner.stateshapes import PREFLIGHT

KIND = "preflight"
REASON_CHARS = 300


def run_preflight(spec: JobSpec) -> int:
    """Run the check; alert on a change of verdict. Exit 0 when it passed, 1 when it failed."""
    started = clock_now()
    if spec.check_argv is None:
        print(f"vigil: {spec.job}: no `check:` command to run", file=sys.stderr)
        return FAILED
    redactor = unit_redactor()
    result = run_command(
        spec.check_argv,
        env={**os.environ, **spec.environment},
        cwd=spec.working_directory,
        timeout=spec.timeout,
        stderr_filter=redactor.stream() if redactor else None,
    )
    output = redactor.text(result.stdout) if redactor else result.stdout
    if output:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
    failure = _failure(spec, result.error, result.timed_out, result.returncode, output)
    due = _due(started, spec.preflight, spec.timezone)
    try:
        _remember(spec, failure, due, started)
    except OSError as error:
        print(f"vigil: {spec.job}: preflight: state directory: {describe(error)}", file=sys.stderr)
        return STORAGE
    if failure:
        print(f"vigil: {spec.job}: preflight failed: {failure}", file=sys.stderr)
        return FAILED
    print(f"vigil: {spec.job}: preflight passed", file=sys.stderr)
    return OK


def _failure(
    spec: JobSpec, error: str | None, timed_out: bool, status: int | None, output: str
) -> str:
    """Why the check failed ("`openclaw status` exited 1: Cannot find module ..."), or ""."""
    assert spec.check_argv is not None
    check = _shown(spec.check_argv)
    if error:
        return f"`{check}` did not start: {error}"
    if timed_out:
        return f"`{check}` ran longer than {spec.timeout:g}s"
    if status == 0:
        return ""
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
    said = f": {last[:REASON_CHARS]}" if last else ""
    return f"`{check}` exited {status}{said}"


def _shown(argv: list[str]) -> str:
    if argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3:
        return argv[2]
    return shlex.join(argv)


def _due(started: datetime, lead: float | None, timezone: str) -> datetime | None:
    """When the job is due: the preflight's timer fires `lead` before it on the wall clock of
    the job's zone (the calendar lines were moved there), to the minute."""
    if lead is None:
        return None
    from runner.clock import zone

    where = zone(timezone)
    wall = started.astimezone(where).replace(tzinfo=None) + timedelta(seconds=lead)
    wall = wall.replace(second=0, microsecond=0) + timedelta(minutes=wall.second >= 30)
    return wall.replace(tzinfo=where)


def _remember(spec: JobSpec, failure: str, due: datetime | None, now: datetime) -> None:
    """Record the verdict; one alert when it turns to failing, one when it turns back."""
    ensure_dir(spec.state_dir)
    with locked(state_path(spec.state_dir, PREFLIGHT_STATE) + ".lock"):
        try:
            state = load_state(spec.state_dir, PREFLIGHT_STATE, PREFLIGHT, now)
        except StateUnreadable as error:
            unreadable(spec.state_dir, error, "preflight failures are alerted each time", now)
            state = {}
        found = state.get("failing")
        failing: dict[str, dict[str, object]] = dict(found) if isinstance(found, dict) else {}
        before = failing.get(spec.job)
        if failure and before is None:
            when = f"is due at {_clock(due, spec.timezone)} and " if due else ""
            text = f"{spec.job} {when}will fail: {failure}"
            own_alert(spec.state_dir, f"preflight-{spec.job}-{iso(now)}", text, now, KIND, spec.job)
            failing[spec.job] = {"since": iso(now), "reason": failure, "due": due and iso(due)}
        elif failure and before is not None:
            failing[spec.job] = {**before, "reason": failure}
        elif before is not None:
            since = parse_iso(before.get("since"))
            when = f" (failing since {_clock(since, spec.timezone)})" if since else ""
            text = f"{spec.job}: its preflight passes again{when}"
            own_alert(spec.state_dir, f"preflight-{spec.job}-{iso(now)}", text, now, KIND, spec.job)
            del failing[spec.job]
        else:
            return
        write_state(spec.state_dir, PREFLIGHT_STATE, {"version": 1, "failing": failing})


def _clock(moment: datetime | None, timezone: str) -> str:
    from runner.clock import zone

    if moment is None:
        return "?"
    local = moment.astimezone(zone(timezone))
    return local.strftime("%H:%M")

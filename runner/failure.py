"""The failure handler: `<name>-failure@<unit>.service` runs `python -m runner failure SPEC UNIT`
when a unit fails, and turns systemd's $MONITOR_* variables and the unit's last journal lines
into an urgent finding in the inbox. A job with `pause_after` is paused when it fails that many
times in a row (runner.pause): that failure's alert says so instead.

A failing coordinator is alerted at most once per COORDINATOR_INTERVAL: its alert goes to the
inbox, which starts the coordinator, which may fail again. The alert always reaches stderr (the
journal), suppressed or not.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime

from runner.clock import iso, parse_iso
from runner.clock import now as clock_now
from runner.contract import coordinator_unit, job_unit, service, target_of
from runner.exitcodes import STORAGE
from runner.findings import ALERT_PRIORITY
from runner.fsatomic import describe, locked, read_state, state_path, write_finding, write_state
from runner.history import last_run
from runner.journal import last_lines
from runner.pause import Verdict, judge_failure, resume_command
from runner.spec import FailureSpec
from runner.statefile import StateUnreadable

COORDINATOR_INTERVAL = 600.0
RATE_STATE = "failure-alerts.json"


def _status_text(exit_code: str, exit_status: str) -> str:
    if not exit_status:
        return exit_code or "no exit status"
    if exit_code in ("killed", "dumped"):
        return f"signal {exit_status}"
    return f"status {exit_status}"


def failure_alert(spec: FailureSpec, unit_arg: str, now: datetime) -> dict[str, object]:
    env = os.environ
    unit = env.get("MONITOR_UNIT") or unit_arg
    result = env.get("MONITOR_SERVICE_RESULT", "")
    exit_code = env.get("MONITOR_EXIT_CODE", "")
    exit_status = env.get("MONITOR_EXIT_STATUS", "")
    invocation_id = env.get("MONITOR_INVOCATION_ID", "")
    job = target_of(spec.config, unit)
    message = (
        f"{unit.removesuffix('.service')} failed "
        f"({result or 'unknown result'}, {_status_text(exit_code, exit_status)})"
    )
    recorded = _recorded_run(spec, job, invocation_id)
    reason = recorded.get("reason") if recorded else None
    if isinstance(reason, str) and reason:
        message += f": {reason}"
    change = _after_change(spec, job, unit, now, recorded, message)
    if change:
        message += f"; {change}"
    if not (isinstance(reason, str) and reason):  # what the pause alert quotes instead
        reason = f"{result or 'unknown result'}, {_status_text(exit_code, exit_status)}"
    return {
        "source": "vigil",
        "timestamp": iso(now),
        "kind": "failure",
        "id": f"failure-{invocation_id}" if invocation_id else f"failure-{unit}-{iso(now)}",
        "unit": unit,
        "job": job,
        "result": result or None,
        "exit_code": exit_code or None,
        "exit_status": exit_status or None,
        "invocation_id": invocation_id or None,
        "message": message,
        "reason": reason,
        "after_change": change or None,
        "journal": last_lines(spec.scope, unit, invocation_id, spec.journal_lines),
        "urgent": True,
        "priority": ALERT_PRIORITY,
    }


def _recorded_run(spec: FailureSpec, job: str, invocation_id: str) -> dict[str, object] | None:
    """The runner's own record of the failed run, when runs.jsonl has that very run."""
    if not invocation_id:
        return None
    record = last_run(spec.state_dir, job)
    if record is None or record.get("invocation_id") != invocation_id:
        return None
    return record


def _after_change(
    spec: FailureSpec,
    job: str,
    unit: str,
    now: datetime,
    recorded: dict[str, object] | None,
    message: str,
) -> str:
    """What the alert says when the live generation changed the failed job (and, with
    release.auto_rollback, the rollback it asked for); empty otherwise."""
    if not spec.path or unit != service(job_unit(spec.config, job)):
        return ""  # the coordinator, a watch: not jobs a generation changes
    from runner.release import after_change, of_spec, request_rollback

    generation = of_spec(spec.path)
    note = after_change(generation, spec.state_dir, job, spec.auto_rollback, recorded)
    if note is None:
        return ""
    if note.rollback_to is None:
        return note.words
    why = f"{message}: {note.words}"
    started = request_rollback(
        spec.config, spec.scope, spec.state_dir, generation, note.rollback_to, job, why, now
    )
    return f"{note.words}; {started}"


def _coordinator_allowed(spec: FailureSpec, now: datetime) -> bool:
    """At most one coordinator alert per COORDINATOR_INTERVAL; claims the slot if free."""
    with locked(state_path(spec.state_dir, RATE_STATE) + ".lock"):
        state = read_state(spec.state_dir, RATE_STATE)
        last = parse_iso(state.get("coordinator_alerted"))
        if last is not None and 0 <= (now - last).total_seconds() < COORDINATOR_INTERVAL:
            return False
        state["coordinator_alerted"] = iso(now)
        write_state(spec.state_dir, RATE_STATE, state)
    return True


def _pause_if_due(spec: FailureSpec, alert: dict[str, object], now: datetime) -> bool:
    """Count the failure of a job with a `pause_after` and pause it when due, rewording its
    alert to match; False when no alert is due (the job was paused already). Trouble with
    the pause state never stops the alert."""
    job = str(alert["job"])
    pausing = spec.pause_after.get(job)
    if pausing is None or alert["unit"] != service(job_unit(spec.config, job)):
        return True
    limit = pausing.after
    try:
        outcome = judge_failure(
            spec.state_dir,
            spec.scope,
            job,
            pausing.timers,
            limit=limit,
            invocation_id=str(alert["invocation_id"] or ""),
            reason=str(alert["reason"]),
            now=now,
        )
    except (OSError, StateUnreadable) as error:
        why = describe(error) if isinstance(error, OSError) else str(error)
        alert["message"] = f"{alert['message']} (not counted towards pause_after: {why})"
        return True
    if outcome.verdict is Verdict.ALREADY_PAUSED:
        print(f"vigil: {job} is paused since {outcome.detail}: not alerted again", file=sys.stderr)
        return False
    if outcome.verdict is Verdict.PAUSED:
        # One alert for the pause, in place of this run's failure alert.
        alert["kind"] = "paused"
        change = f"; {alert['after_change']}" if alert["after_change"] else ""
        alert["message"] = (
            f"{job} paused after {_failures(outcome.count)} in a row: {alert['reason']}; "
            f"`{resume_command(job, spec.scope)}` resumes{change}"
        )
    elif outcome.verdict is Verdict.PAUSE_FAILED:
        alert["message"] = (
            f"{alert['message']} ({_failures(outcome.count)} in a row, pause_after {limit}; "
            f"stopping its timer failed: {outcome.detail})"
        )
    else:
        alert["message"] = (
            f"{alert['message']} (failure {outcome.count} in a row; paused at {limit})"
        )
    return True


def _failures(count: int) -> str:
    return f"{count} failure" if count == 1 else f"{count} failures"


def _mark_failing(spec: FailureSpec, alert: dict[str, object], now: datetime) -> None:
    """For a job whose recovery is announced: the marker its next successful run looks for
    (a paused job's too). A marker that cannot be written costs the recovery line only."""
    job = str(alert["job"])
    if job not in spec.notify_recovered or alert["unit"] != service(job_unit(spec.config, job)):
        return
    from runner.recovery import mark_failing

    try:
        mark_failing(spec.state_dir, job, str(alert["invocation_id"] or ""), now)
    except OSError as error:
        print(f"vigil: cannot mark {job} as failing: {describe(error)}", file=sys.stderr)


def run_failure(spec: FailureSpec, unit_arg: str) -> int:
    now = clock_now()
    alert = failure_alert(spec, unit_arg, now)
    due = _pause_if_due(spec, alert, now)
    _mark_failing(spec, alert, now)
    print(f"vigil: alert: {json.dumps(alert, ensure_ascii=False)}", file=sys.stderr)
    if not due:
        return 0
    unit = str(alert["unit"])
    try:
        if unit == service(coordinator_unit(spec.config)) and not _coordinator_allowed(spec, now):
            print(
                f"vigil: {unit} already alerted within {COORDINATOR_INTERVAL:g}s: "
                "not written to the inbox (it would start the coordinator again)",
                file=sys.stderr,
            )
            return 0
        path = write_finding(spec.state_dir, alert, now)
    except OSError as error:
        # The alert is in the journal (above) even when the state directory takes nothing.
        print(f"vigil: cannot write the alert to the inbox: {describe(error)}", file=sys.stderr)
        return STORAGE
    print(f"vigil: alert written to {os.path.basename(path)}", file=sys.stderr)
    return 0

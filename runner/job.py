"""One run of a job: chain check, command, output contract, model, findings, record.

Every run that gets past reading its spec ends with one line in runs.jsonl and an exit code
from runner.exitcodes; findings reach the inbox only when there is something to report.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from runner.chain import unmet_predecessor
from runner.clock import utc_now
from runner.command import Stopped, raise_stopped, run_command
from runner.exitcodes import exit_code
from runner.findings import completed
from runner.fsatomic import ensure_dir, write_finding
from runner.history import RunRecord, append_line
from runner.output import ContractError, read_output
from runner.spec import JobSpec


class Outcome:
    def __init__(self, result: str, reason: str = "") -> None:
        self.result = result
        self.reason = reason


def run_job(spec: JobSpec) -> int:
    record = RunRecord(job=spec.job, kind="job", config=spec.config, started=utc_now())
    signal.signal(signal.SIGTERM, raise_stopped)
    try:
        outcome = _run(spec, record)
    except Stopped as stop:
        outcome = Outcome("failed", f"stopped by {stop} before the run finished")
    except OSError as error:
        # The state directory or inbox cannot be written: the run did not do its job.
        where = f": {error.filename}" if error.filename else ""
        outcome = Outcome("failed", f"{error.strerror or error}{where}")
    # A stop request now would only lose the record; systemd's SIGKILL still ends us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = exit_code(outcome.result)
    if outcome.reason:
        print(f"vigil: {spec.job}: {outcome.result}: {outcome.reason}", file=sys.stderr)
    line = record.as_json(
        result=outcome.result, exit_code=code, reason=outcome.reason, ended=utc_now()
    )
    try:
        append_line(spec.state_dir, line, spec.history_max_bytes)
    except OSError as error:
        print(f"vigil: could not record the run in runs.jsonl: {error}", file=sys.stderr)
    return code


def _run(spec: JobSpec, record: RunRecord) -> Outcome:
    ensure_dir(spec.state_dir)
    if spec.after is not None:
        reason = unmet_predecessor(spec.state_dir, spec.after, record.started)
        if reason is not None:
            return Outcome("skipped-after", f"not run: {reason}")
    stdout: str | None = None
    if spec.argv is not None:
        result = run_command(
            spec.argv,
            env={**os.environ, **spec.environment},
            cwd=spec.working_directory,
            timeout=spec.timeout,
        )
        record.command_exit = result.returncode
        if result.error:
            return Outcome("failed", result.error)
        if result.timed_out:
            _echo(result.stdout)
            return Outcome(
                "timeout", f"command ran longer than {spec.timeout:g}s; its processes were killed"
            )
        if result.returncode != 0:
            # A failed command's output is not trusted as findings: it goes to the journal.
            _echo(result.stdout)
            return Outcome("failed", f"command exited with status {_status(result.returncode)}")
        stdout = result.stdout
    if spec.llm is not None:
        return _detect_with_model(spec, record, stdout)
    assert stdout is not None
    try:
        report = read_output(stdout, spec.output)
    except ContractError as error:
        _echo(stdout[:4000], to_stderr=True)
        return Outcome("contract", str(error))
    _echo(report.log)
    _write_findings(spec, record, report.findings)
    return Outcome("ok")


def _detect_with_model(spec: JobSpec, record: RunRecord, stdout: str | None) -> Outcome:
    assert spec.llm is not None
    if stdout is not None and _found_nothing(stdout):
        print("vigil: the command found nothing; the model was not asked", file=sys.stderr)
        return Outcome("ok")
    from runner.budget import exhausted_budgets, send_alerts

    exhausted = exhausted_budgets(spec, record.started)
    if exhausted:
        if send_alerts(spec, exhausted, record.started):
            record.notes.append("budget alert written to the inbox")
        details = "; ".join(f"{item.budget.scope} budget: {item.detail}" for item in exhausted)
        return Outcome("budget", f"model not called ({details})")
    from runner.llm import LlmError, ask_model

    try:
        finding = ask_model(spec.llm, stdout, record)
    except LlmError as error:
        return Outcome("api-error", str(error))
    if finding is None:
        print("vigil: the model reported nothing", file=sys.stderr)
    else:
        _write_findings(spec, record, [finding])
    return Outcome("ok")


def _found_nothing(stdout: str) -> bool:
    """Empty output, an empty list or an empty object: the model is not asked."""
    text = stdout.strip()
    if not text:
        return True
    if text[0] not in "[{" or len(text) > 64:
        return False
    try:
        return json.loads(text) in ([], {})
    except ValueError:
        return False


def _write_findings(spec: JobSpec, record: RunRecord, items: list[dict[str, object]]) -> None:
    for item in items:
        now = utc_now()
        write_finding(spec.state_dir, completed(item, spec.job, now), now)
        record.findings += 1
    if items:
        print(f"vigil: {len(items)} finding(s) written to the inbox", file=sys.stderr)


def _echo(text: str, *, to_stderr: bool = False) -> None:
    """Pass a command's log text on to the journal."""
    if text:
        out = sys.stderr if to_stderr else sys.stdout
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()


def _status(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"{returncode} (killed by {signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return str(returncode)

"""One run of a job: chain check, command, output contract, model, findings, record.

Every run that gets past reading its spec ends with one line in runs.jsonl and an exit code
from runner.exitcodes; findings reach the inbox only when there is something to report. A state
directory that cannot be written (disk full, read-only, no permission) is the `storage` result:
the findings that could not be written go to the journal instead, whole, never half a file.
The values of the job's credentials never pass through: see runner.redact.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys

from runner.chain import check_predecessor
from runner.clock import now
from runner.command import Stopped, raise_stopped, run_command
from runner.contract import INBOX, STATE, TMP, failing_marker
from runner.exitcodes import AFTER_RUNNING_RESULT, SKIPPED_AFTER_RESULT, exit_code
from runner.findings import completed
from runner.fsatomic import describe, ensure_dir, write_finding
from runner.history import RunRecord, append_line
from runner.output import ContractError, read_output
from runner.running import mark_ended, mark_started, one_run_at_a_time
from runner.spec import JobSpec
from runner.statefile import StateUnreadable

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.budget import Exhausted, Reservation
    from runner.history import Usage
    from runner.redact import Redactor
    from runner.spend import LedgerUnavailable

JOURNAL_FINDING_CHARS = 8000
"""A finding that cannot be written goes to the journal, cut to this length."""
MODEL_SPACE_MIN = 64 * 1024
MODEL_SPACE_PER_TOKEN = 16
"""Free space a model's finding may need: checked before the call, so no tokens are spent on
an answer that cannot be stored."""


class JobOutcome:
    """What a run came to: its result (runner.exitcodes maps it to the exit code) and why."""

    def __init__(self, result: str, reason: str = "") -> None:
        self.result = result
        self.reason = reason


def run_job(spec: JobSpec) -> int:
    record = RunRecord(job=spec.job, kind="job", config=spec.config, started=now())
    signal.signal(signal.SIGTERM, raise_stopped)
    redactor = unit_redactor()
    try:
        with one_run_at_a_time(spec.state_dir, spec.job, waiting=_say_waiting):
            if spec.trial is None:  # a try is no run a chain step should wait for
                mark_started(spec.state_dir, spec.job, record.started)
            outcome = _run(spec, record, redactor)
    except Stopped as stop:
        outcome = JobOutcome("failed", f"stopped by {stop} before the run finished")
    except OSError as error:
        # The state directory cannot be written or read: the run did not do its job.
        outcome = JobOutcome("storage", f"state directory: {describe(error)}")
    except Exception as error:
        # A bug in vigil: the run still gets its runs.jsonl line and its alert; the
        # traceback goes to the journal for the bug report.
        import traceback

        traceback.print_exc()
        outcome = JobOutcome("failed", f"internal error: {type(error).__name__}: {error}")
    # A stop request now would only lose the record; systemd's SIGKILL still ends us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if outcome.result == "ok" and spec.notify_recovered and spec.trial is None:
        _announce_recovery(spec, record)
    code = exit_code(outcome.result)
    reason = _clean(redactor, outcome.reason)
    if reason:
        print(f"vigil: {spec.job}: {outcome.result}: {reason}", file=sys.stderr)
    line = record.as_json(
        result=outcome.result, exit_code=code, reason=reason, ended=record.moment()
    )
    try:
        append_line(spec.outputs_dir, line, spec.history_max_bytes)
    except OSError as error:
        print(
            f"vigil: {spec.job}: could not record the run in runs.jsonl: {describe(error)}",
            file=sys.stderr,
        )
    # Only now: a chain step that sees no marker judges runs.jsonl, which must hold this run.
    if spec.trial is None:
        mark_ended(spec.state_dir, spec.job)
    return code


def _announce_recovery(spec: JobSpec, record: RunRecord) -> None:
    """A success after a failure: one `recovered` finding (runner.recovery); a stat() when
    the job was not failing. Trouble writing it leaves the marker for the next success."""
    if not os.path.exists(os.path.join(spec.state_dir, STATE, failing_marker(spec.job))):
        return
    from runner.recovery import announce_recovery

    try:
        if announce_recovery(spec.state_dir, spec.job, record.moment()):
            record.notes.append("recovery written to the inbox")
    except OSError as error:
        print(f"vigil: could not announce the recovery: {describe(error)}", file=sys.stderr)


def _say_waiting(holder: str) -> None:
    print(f"vigil: another run of this job is in progress ({holder}): waiting for it to end",
          file=sys.stderr)  # fmt: skip


def unit_redactor() -> Redactor | None:
    """The credential values this unit was given (LoadCredential=), or None without any
    (redact is imported only by a unit that has some)."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    from runner.redact import from_credentials

    return from_credentials(directory) or None


def _clean(redactor: Redactor | None, text: str) -> str:
    return redactor.text(text) if redactor and text else text


def _run(spec: JobSpec, record: RunRecord, redactor: Redactor | None) -> JobOutcome:
    if spec.trial is not None and spec.trial.check:
        return _run_the_check(spec, record, redactor)
    refused = _refused_before_the_command(spec, record)
    if refused is not None:
        return refused
    stdout: str | None = None
    if spec.argv is not None:
        ran = _run_the_command(spec, spec.argv, record, redactor)
        if isinstance(ran, JobOutcome):
            return ran
        stdout = ran
    if spec.llm is not None:
        return _detect_with_model(spec, record, stdout, redactor)
    assert stdout is not None
    return _report_the_output(spec, record, stdout, redactor)


def _refused_before_the_command(spec: JobSpec, record: RunRecord) -> JobOutcome | None:
    """The outcome of a run that must not start: its state directory takes nothing, its
    predecessor has not succeeded, its model's package is missing. None when it may start."""
    ensure_dir(spec.state_dir)
    problem = _unusable(spec.state_dir)
    if problem is not None:
        return JobOutcome("storage", f"state directory: {problem}; the command was not run")
    if spec.after is not None:
        verdict = check_predecessor(spec.state_dir, spec.after, record.started, spec.timeout)
        if verdict.reason is not None:
            skipped = AFTER_RUNNING_RESULT if verdict.still_running else SKIPPED_AFTER_RESULT
            return JobOutcome(skipped, f"not run: {verdict.reason}")
    if spec.llm is not None:
        # Before the command: its output would be worth nothing without the model.
        from runner.packages import MissingPackage, check_installed

        try:
            check_installed("anthropic", "a prompt job's model call")
        except MissingPackage as error:
            return JobOutcome("missing-package", f"not run: {error}")
    return None


def _run_the_check(spec: JobSpec, record: RunRecord, redactor: Redactor | None) -> JobOutcome:
    """The job's `check:` in place of the job: its output is log, its exit status the verdict."""
    ensure_dir(spec.state_dir)
    if spec.check_argv is None:
        return JobOutcome("failed", "the job has no `check:` command")
    ran = _run_the_command(spec, spec.check_argv, record, redactor)
    if isinstance(ran, JobOutcome):
        return ran
    _echo(_clean(redactor, ran))
    return JobOutcome("ok")


def _run_the_command(
    spec: JobSpec, argv: list[str], record: RunRecord, redactor: Redactor | None
) -> str | JobOutcome:
    """The command's stdout, or the outcome of a command that did not start, ran too long or
    failed."""
    result = run_command(
        argv,
        env={**os.environ, **spec.environment},
        cwd=spec.working_directory,
        timeout=spec.timeout,
        stderr_filter=redactor.stream() if redactor else None,
    )
    record.command_exit = result.returncode
    if result.error:
        return JobOutcome("failed", result.error)
    if result.timed_out:
        _echo(_clean(redactor, result.stdout))
        return JobOutcome(
            "timeout", f"command ran longer than {spec.timeout:g}s; its processes were killed"
        )
    if result.returncode != 0:
        # A failed command's output is not trusted as findings: it goes to the journal.
        _echo(_clean(redactor, result.stdout))
        return JobOutcome("failed", f"command exited with status {_status(result.returncode)}")
    return result.stdout


def _report_the_output(
    spec: JobSpec, record: RunRecord, stdout: str, redactor: Redactor | None
) -> JobOutcome:
    """The output contract: findings to the inbox, other text to the journal."""
    try:
        report = read_output(stdout, spec.output)
    except ContractError as error:
        _echo(_clean(redactor, stdout[:4000]), to_stderr=True)
        return JobOutcome("contract", str(error))
    _echo(_clean(redactor, report.log))
    _write_findings(spec, record, report.findings, redactor)
    return JobOutcome("ok")


def _detect_with_model(
    spec: JobSpec, record: RunRecord, stdout: str | None, redactor: Redactor | None
) -> JobOutcome:
    assert spec.llm is not None
    if stdout is not None and _found_nothing(stdout):
        print("vigil: the command found nothing; the model was not asked", file=sys.stderr)
        return JobOutcome("ok")
    if spec.trial is not None and spec.trial.no_model:
        _show_the_prompt(spec, stdout, redactor)
        return JobOutcome("ok")
    reserved = _reserve_the_first_call(spec, record, stdout)
    if isinstance(reserved, JobOutcome):
        return reserved
    reservation, first = reserved
    try:
        answer = _ask_the_model(spec, record, stdout, reservation, first)
    finally:
        _settle(reservation, record)
    if spec.trial is None:  # a try's tokens are booked, but are no run's usual use
        _check_spike(spec, record, stdout)
    if isinstance(answer, JobOutcome):
        return answer
    if answer is None:
        print("vigil: the model reported nothing", file=sys.stderr)
    else:
        _write_findings(spec, record, [answer], redactor)
    return JobOutcome("ok")


def _show_the_prompt(spec: JobSpec, stdout: str | None, redactor: Redactor | None) -> None:
    """`vigil try --no-model`: what would be sent, and what it would cost at most."""
    assert spec.llm is not None
    from runner.llm_reply import expected_input_tokens, user_message

    tokens = expected_input_tokens(spec.llm.prompt, stdout)
    print(f"vigil: --no-model: the model ({spec.llm.model}) was not called; the prompt:")
    print(_clean(redactor, user_message(spec.llm.prompt, stdout)))
    print(
        f"vigil: estimated {tokens} input tokens, at most {spec.llm.max_tokens} output tokens",
        flush=True,
    )


def _reserve_the_first_call(
    spec: JobSpec, record: RunRecord, stdout: str | None
) -> tuple[Reservation, Usage] | JobOutcome:
    """Book the first call's worst case before it is made: the reservation and that worst
    case, or the outcome of a run that does not call the model (no room for the answer, a
    ledger that cannot be written or read, a budget used up)."""
    assert spec.llm is not None
    from runner.budget import Reservation, call_worst_case
    from runner.llm_reply import expected_input_tokens
    from runner.spend import LedgerUnavailable

    problem = _no_room_for_a_finding(spec)
    if problem is not None:
        return JobOutcome("storage", f"model not called: {problem}")
    reservation = Reservation(spec, record.started)
    first = call_worst_case(spec, expected_input_tokens(spec.llm.prompt, stdout))
    try:
        exhausted = reservation.add(first, record.moment())
    except OSError as error:  # the ledger cannot be written: no call whose spend is unbooked
        return JobOutcome("storage", f"model not called: {describe(error)}")
    except StateUnreadable as error:
        return _ledger_unreadable(spec, record, error)
    except LedgerUnavailable as error:
        return _ledger_unavailable(spec, record, error)
    if exhausted:
        return _over_budget(spec, record, exhausted)
    return reservation, first


def _ask_the_model(
    spec: JobSpec, record: RunRecord, stdout: str | None, reservation: Reservation, first: Usage
) -> dict[str, object] | JobOutcome | None:
    """The model's finding (None: nothing to report), or the outcome of a call that failed or
    whose retry the budget does not allow."""
    assert spec.llm is not None
    from runner.budget import OverBudget, call_worst_case
    from runner.llm import LlmError, ask_model
    from runner.packages import MissingPackage
    from runner.spend import LedgerUnavailable

    def before_retry() -> None:
        # The retry resends the request with the first reply in it: up to max_tokens more.
        further = reservation.add(call_worst_case(spec, first.tokens), record.moment())
        if further:
            raise OverBudget(further)

    try:
        return ask_model(spec.llm, stdout, record, before_retry)
    except LlmError as error:
        return JobOutcome("api-error", str(error))
    except MissingPackage as error:  # found above, yet broken on import
        return JobOutcome("missing-package", f"model not called: {error}")
    except OverBudget as over:
        return _over_budget(spec, record, over.exhausted)
    except StateUnreadable as error:  # before the retry
        return _ledger_unreadable(spec, record, error)
    except LedgerUnavailable as error:
        return _ledger_unavailable(spec, record, error)


def _check_spike(spec: JobSpec, record: RunRecord, stdout: str | None) -> None:
    """One alert when this run's tokens are far above what the job usually takes; a spike
    that cannot be judged or written is for the journal, never the run's failure."""
    assert spec.llm is not None
    if not (record.tokens_in or record.tokens_out):
        return
    from runner import spike

    used = (record.tokens_in, record.tokens_out)
    expected = spec.llm.expected_tokens
    try:
        if spike.check(spec.state_dir, spec.config, spec.job, expected, used, stdout, now()):
            record.notes.append("token spike alert written to the inbox")
    except OSError as error:
        print(f"vigil: could not judge or report a token spike: {describe(error)}", file=sys.stderr)


def _over_budget(spec: JobSpec, record: RunRecord, exhausted: list[Exhausted]) -> JobOutcome:
    from runner.budget import send_alerts

    # A try says so in its outcome; the once-a-month alert stays for a run of the timer.
    if spec.trial is None and send_alerts(spec, exhausted, record.started):
        record.notes.append("budget alert written to the inbox")
    details = "; ".join(f"{item.budget.scope} budget: {item.detail}" for item in exhausted)
    return JobOutcome("budget", f"model not called ({details})")


def _ledger_unreadable(spec: JobSpec, record: RunRecord, error: StateUnreadable) -> JobOutcome:
    """The spend ledger exists but cannot be read: no call whose spend could not be counted
    (fail closed), one alert a day, and the file is left as it is."""
    from runner.statefile import unreadable

    consequence = "the model is not called until it can be read"
    unreadable(spec.state_dir, error, consequence, record.started)
    return JobOutcome("budget", f"model not called: {error}")


def _ledger_unavailable(spec: JobSpec, record: RunRecord, error: LedgerUnavailable) -> JobOutcome:
    """The spend ledger's store cannot be used (a fleet's NATS out of reach): as for a ledger
    file that cannot be read, no call (fail closed) and one alert a day."""
    from runner.statefile import alert_once_a_day

    text = f"{error}: the model is not called until it can be"
    print(f"vigil: {text}", file=sys.stderr)
    alert_once_a_day(spec.state_dir, "spend-ledger", f"vigil: {text}", record.started)
    return JobOutcome("budget", f"model not called: {error}")


def _settle(reservation: Reservation, record: RunRecord) -> None:
    """Book what the calls used in place of the reservation (also after a failed call)."""
    from runner.history import Usage
    from runner.spend import LedgerUnavailable

    tokens = record.tokens_in + record.tokens_out
    try:
        reservation.settle(Usage(tokens, record.cost_usd, 1 if tokens else 0), record.moment())
    except OSError as error:
        # runs.jsonl still gets the spend; the reservation lapses when this process ends.
        print(f"vigil: could not book the spend: {describe(error)}", file=sys.stderr)
    except (StateUnreadable, LedgerUnavailable) as error:
        # The reservation stays: booked as spent once its run is known to be over.
        print(f"vigil: could not book the spend: {error}", file=sys.stderr)


def _unusable(state_dir: str) -> str | None:
    """Why the state directory takes nothing (read-only, another user's), or None. A run
    that could not record itself is not started: nothing would know it ran."""
    if os.access(state_dir, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(state_dir).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return f"{os.strerror(errno.EROFS if read_only else errno.EACCES)}: {state_dir}"


def _no_room_for_a_finding(spec: JobSpec) -> str | None:
    """Why the model's answer could not be stored (read-only, full, not writable), or None."""
    assert spec.llm is not None
    inbox = os.path.join(spec.state_dir, INBOX)
    where = inbox if os.path.isdir(inbox) else spec.state_dir
    try:
        fs = os.statvfs(where)
    except OSError as error:
        return describe(error)
    if fs.f_flag & os.ST_RDONLY:
        return f"{os.strerror(errno.EROFS)}: {where}"
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
    needed = max(MODEL_SPACE_MIN, MODEL_SPACE_PER_TOKEN * spec.llm.max_tokens)
    if free < needed:
        return (
            f"{os.strerror(errno.ENOSPC)}: {where} "
            f"({free} bytes free; the model's finding may need {needed})"
        )
    for directory in (where, os.path.join(spec.state_dir, TMP)):
        if os.path.isdir(directory) and not os.access(directory, os.W_OK):
            return f"{os.strerror(errno.EACCES)}: {directory}"
    return None


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


def _write_findings(
    spec: JobSpec, record: RunRecord, items: list[dict[str, object]], redactor: Redactor | None
) -> None:
    for index, item in enumerate(items):
        moment = now()
        finding = completed(item, spec.job, moment)
        if redactor:
            cleaned = redactor.data(finding)
            assert isinstance(cleaned, dict)
            finding = cleaned
        try:
            write_finding(spec.outputs_dir, finding, moment)
        except OSError:
            _keep_in_journal([finding, *items[index + 1 :]], redactor)
            raise
        record.findings += 1
    if items:
        where = "the try's directory" if spec.trial else "the inbox"
        print(f"vigil: {len(items)} finding(s) written to {where}", file=sys.stderr)


def _keep_in_journal(unwritten: list[dict[str, object]], redactor: Redactor | None) -> None:
    """Findings the inbox could not take: the journal is the one place left to keep them."""
    print(f"vigil: {len(unwritten)} finding(s) not written; here they are:", file=sys.stderr)
    for finding in unwritten:
        text = _clean(redactor, json.dumps(finding, ensure_ascii=False))
        if len(text) > JOURNAL_FINDING_CHARS:
            text = text[: JOURNAL_FINDING_CHARS - 1] + "…"
        print(f"vigil: unwritten finding: {text}", file=sys.stderr)


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

"""Pausing a job that keeps failing (`pause_after: N`, else `release.pause_after`).

The failure handler counts the job's failures in a row; at N it stops and disables the job's
timer (disabled too, so a reboot or a restarted user manager does not resume it), records why
in state/pauses.json and turns that run's failure alert into the one pause alert. Failures
after that (a `vigil run` of the paused job) alert no more. `vigil enable JOB` starts the timer
and clears the record; `vigil apply` leaves a paused job's timer stopped.

Failures in a row: the job's runs in runs.jsonl whose result failed the unit, newest first up
to its latest `ok` (lines of other results, such as a missed firing, neither count nor break
the row), plus the failures the handler saw without a line of their own (a run systemd killed
before the runner could write one), remembered here by time until a later `ok` outdates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from runner.clock import iso, parse_iso
from runner.contract import PAUSES
from runner.exitcodes import EXIT_CODE, OK
from runner.fsatomic import locked, state_path, write_state
from runner.history import runs_of
from runner.statefile import load_state
from runner.stateshapes import PAUSES as PAUSES_SHAPE
from runner.systemctl import systemctl

PRECISION = "milliseconds"
"""Of the times compared with runs.jsonl's `end` (a run may end in the second of a resume)."""
UNRECORDED_KEPT = 1000
"""The most unrecorded failures remembered per job (pause_after is at most 1000)."""


class Verdict(StrEnum):
    """What the handler does about one failure of a job with a `pause_after`."""

    COUNTED = "counted"
    """Fewer failures in a row than the limit: the usual failure alert."""
    PAUSED = "paused"
    """The limit is reached and the timer is stopped: the pause alert instead."""
    PAUSE_FAILED = "pause-failed"
    """The limit is reached but systemctl could not stop the timer: the failure alert says so,
    and the next failure tries again."""
    ALREADY_PAUSED = "already-paused"
    """The job was paused before (a run started by hand failed): no alert."""


class Outcome:
    def __init__(self, verdict: Verdict, count: int, limit: int, detail: str = "") -> None:
        self.verdict = verdict
        self.count = count
        self.limit = limit
        self.detail = detail
        """PAUSE_FAILED: systemctl's error; ALREADY_PAUSED: since when."""


def resume_command(job: str, scope: str) -> str:
    return f"vigil enable {job}" + (" --system" if scope == "system" else "")


def fails_unit(result: object) -> bool | None:
    """True: a run with this result failed its unit; False: it succeeded; None: the line is
    not a run's end of a known result (a missed firing, a newer vigil's word)."""
    if not isinstance(result, str) or result not in EXIT_CODE:
        return None
    return EXIT_CODE[result] != OK


def failures_in_row(
    records: Iterable[dict[str, object]],
    invocation_id: str,
    unrecorded: list[datetime],
    now: datetime,
    resumed: datetime | None = None,
) -> tuple[int, list[datetime]]:
    """(failures in a row including this one, the unrecorded ones to remember) from the job's
    run records, newest first, and the unrecorded failures remembered so far. The row starts
    after the latest ok run, and after `resumed` (`vigil enable` of a paused job)."""
    count = 0
    seen = False
    start = resumed  # the row begins after this moment
    for record in records:
        fails = fails_unit(record.get("result"))
        if fails is None:
            continue
        end = parse_iso(record.get("end"))
        if resumed is not None and (end is None or end <= resumed):
            break
        if not fails:
            # An ok line with no readable end outdates everything remembered.
            start = end or datetime.max.replace(tzinfo=now.tzinfo)
            break
        count += 1
        seen = seen or record.get("invocation_id") == invocation_id
    if not invocation_id:
        seen = count > 0  # no id to match (an old systemd): the newest failing line is this run
    missing = [moment for moment in unrecorded if start is None or moment > start]
    if not seen:
        missing.append(now)
    missing = missing[-UNRECORDED_KEPT:]
    return count + len(missing), missing


def stop_timers(scope: str, units: list[str]) -> str | None:
    """Stop and disable `units` through the manager; None when done, else why not."""
    return systemctl(scope, "disable", "--now", *units)[1]


def judge_failure(
    state_dir: str,
    scope: str,
    job: str,
    timers: list[str],
    *,
    limit: int,
    invocation_id: str,
    reason: str,
    now: datetime,
) -> Outcome:
    """Count this failure of `job` and pause the job when it reaches `limit`: stop and
    disable `timers`."""
    with locked(state_path(state_dir, PAUSES) + ".lock"):
        state = load_state(state_dir, PAUSES, PAUSES_SHAPE, now)
        jobs = state.setdefault("jobs", {})
        assert isinstance(jobs, dict)
        entry = dict(jobs.get(job) or {})
        paused = entry.get("paused")
        if isinstance(paused, dict):
            # Paused already: keep the timer stopped (someone may have started it by hand).
            stop_timers(scope, timers)
            return Outcome(Verdict.ALREADY_PAUSED, 0, limit, str(paused.get("since")))
        remembered = [parse_iso(moment) for moment in entry.get("unrecorded") or []]
        resumed = parse_iso(entry.get("resumed"))
        count, missing = failures_in_row(
            runs_of(state_dir, job), invocation_id, [m for m in remembered if m], now, resumed
        )
        outcome = Outcome(Verdict.COUNTED, count, limit)
        if count >= limit:
            error = stop_timers(scope, timers)
            if error is None:
                entry["paused"] = {"since": iso(now), "failures": count, "reason": reason}
                missing = []
                outcome = Outcome(Verdict.PAUSED, count, limit)
            else:
                outcome = Outcome(Verdict.PAUSE_FAILED, count, limit, error)
        if missing:
            entry["unrecorded"] = [iso(moment, PRECISION) for moment in missing]
        else:
            entry.pop("unrecorded", None)
        if entry != (jobs.get(job) or {}):
            if entry:
                jobs[job] = entry
            else:
                jobs.pop(job, None)
            state["version"] = PAUSES_SHAPE.version
            write_state(state_dir, PAUSES, state)
    return outcome


def paused_jobs(state_dir: str, now: datetime) -> dict[str, dict[str, object]]:
    """job -> its pause record (`since`, `failures`, `reason`), for the paused jobs."""
    state = load_state(state_dir, PAUSES, PAUSES_SHAPE, now)
    return pause_records(state)


def pause_records(state: dict[str, object]) -> dict[str, dict[str, object]]:
    jobs = state.get("jobs")
    if not isinstance(jobs, dict):
        return {}
    return {
        str(job): entry["paused"]
        for job, entry in jobs.items()
        if isinstance(entry, dict) and isinstance(entry.get("paused"), dict)
    }


def clear_pause(state_dir: str, job: str, now: datetime) -> dict[str, object] | None:
    """Resume a paused `job`: forget its pause, and count its failures in a row afresh from
    `now` (it gets its full `pause_after` again). Its pause record; None, changing nothing,
    when it was not paused."""
    with locked(state_path(state_dir, PAUSES) + ".lock"):
        state = load_state(state_dir, PAUSES, PAUSES_SHAPE, now)
        record = pause_records(state).get(job)
        if record is None:
            return None
        jobs = state["jobs"]
        assert isinstance(jobs, dict)
        jobs[job] = {"resumed": iso(now, PRECISION)}
        state["version"] = PAUSES_SHAPE.version
        write_state(state_dir, PAUSES, state)
    return record

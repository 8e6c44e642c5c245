"""Did it actually run? The heartbeat compares each running timer's firings (systemd's calendar
arithmetic, runner.calendar) with the runs in runs.jsonl. A firing no run followed within the
job's `late` plus `grace` seconds (machine asleep or off, manager down, clock moved) is recorded
as a run with result `missed`, and the first one of an outage is alerted.

Only firings a running timer should have made count: a timer that is stopped now (disabled,
paused, not installed) has its firings skipped, and one started since the last check (apply,
`vigil enable`) counts from its start. A timer the manager started (boot, login) counts from the
last check: the firings while the machine or manager was down were expected.

An outage ends when the job runs again: a missed firing after a recorded missed firing with no
run in between is recorded but not alerted. Both are read from runs.jsonl, so a check killed
halfway, or state/firings.json set aside, records and alerts nothing twice (an alert written
just before a kill may come twice, never not at all).
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta

from runner import stateshapes as shapes
from runner.calendar import CalendarError, firings_between, previous_firing
from runner.clock import iso, parse_iso, zone
from runner.contract import FIRINGS
from runner.exitcodes import MISSED
from runner.fsatomic import write_state
from runner.history import RunRecord, append_line, job_records
from runner.running import running
from runner.spec import DEFAULT_HISTORY_MAX_BYTES
from runner.statefile import StateUnreadable, load_state, own_alert, unreadable
from runner.timers import Timers, ask

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runner.spectypes import CoordinatorSpecJSON, ForwardSpecJSON, JobTimerJSON

    Checked = CoordinatorSpecJSON | ForwardSpecJSON
    """Whose heartbeat checks: the coordinator's, or a fleet host's forwarder's."""

LOOK_BACK = timedelta(days=7)
"""The oldest firing one check looks at (a machine off for a month is not a month of lines)."""
MAX_RECORDED = 100
"""Missed firings one check records one by one per job; the rest go into one more record."""
ALERT_KIND = "missed"
CATCH_UP_WITHIN = timedelta(seconds=60)
"""A run this soon after its timer started is Persistent='s catch-up (a run at start-up)."""


class History:
    """A job's runs (their starts, sorted) and the firings already recorded as missed."""

    def __init__(self) -> None:
        self.runs: list[datetime] = []
        self.missed: list[datetime] = []

    def add(self, record: dict[str, object]) -> None:
        start = parse_iso(record.get("start"))
        if start is not None:
            (self.missed if record.get("result") == MISSED else self.runs).append(start)

    def sort(self) -> None:
        self.runs.sort()
        self.missed.sort()


def check(spec: Checked, now: datetime) -> int:
    """Record and alert the firings missed since the last check; the number recorded."""
    state_dir = spec["state_dir"]
    try:
        state = load_state(state_dir, FIRINGS, shapes.FIRINGS, now)
    except StateUnreadable as error:  # an empty one would judge every firing again
        unreadable(state_dir, error, "missed runs are not looked for", now)
        return 0
    checked = state.get("jobs")
    before: dict[str, object] = checked if isinstance(checked, dict) else {}
    timers: dict[str, JobTimerJSON] = spec.get("timers") or {}
    shown = ask(spec["scope"], [timer["unit"] for timer in timers.values()]) if timers else None
    through: dict[str, object] = {}
    recorded = 0
    if shown is not None:
        histories = _histories(state_dir, timers)
        for job, timer in timers.items():
            entry = before.get(job)
            last = parse_iso(entry.get("through")) if isinstance(entry, dict) else None
            until, count = _check_job(spec, job, timer, shown, last, histories[job], now)
            through[job] = {"through": iso(until, "milliseconds")}
            recorded += count
    else:  # systemd cannot say which timers run: judge nothing, forget nothing
        through = {job: entry for job, entry in before.items() if job in timers}
    write_state(state_dir, FIRINGS, {"version": 1, "checked": iso(now), "jobs": through})
    return recorded


def _histories(state_dir: str, timers: dict[str, JobTimerJSON]) -> dict[str, History]:
    histories = {job: History() for job in timers}
    for record in job_records(state_dir):
        history = histories.get(str(record.get("job")))
        if history is not None:
            history.add(record)
    for job, history in histories.items():
        marker = running(state_dir, job)  # a run in progress has no line yet
        start = parse_iso(marker.get("start")) if marker else None
        if start is not None and start not in history.runs:
            history.runs.append(start)
        history.sort()
    return histories


def _check_job(
    spec: Checked,
    job: str,
    timer: JobTimerJSON,
    shown: Timers,
    through: datetime | None,
    history: History,
    now: datetime,
) -> tuple[datetime, int]:
    """(up to when firings are judged now, how many were recorded missed)."""
    unit = shown.state(timer["unit"])
    if not unit.active:  # stopped: disabled, paused or not installed; its firings are not due
        return now, 0
    start = _first_due(through, unit.since, shown.started_with_manager(timer["unit"]), now)
    window = timedelta(seconds=timer["late"] + timer["grace"])
    horizon = now - window  # a firing after it may still get its run
    if horizon <= start:
        return start, 0
    calendar = timer["calendar"]
    lines, zone_name = calendar["on_calendar"], calendar["timezone"]
    try:
        firings = firings_between(lines, zone_name, start, horizon)
    except (CalendarError, LookupError, ValueError) as error:
        print(f"vigil: {job}: cannot read its calendar ({error}): not checked", file=sys.stderr)
        return horizon, 0
    known = {iso(moment, "milliseconds") for moment in history.missed}
    missed = [
        firing
        for firing in _unmatched(firings, history.runs, window)
        if iso(firing, "milliseconds") not in known
    ]
    if missed:
        _alert_outages(spec, job, timer, missed, history, unit.since, now)
        _record(spec, job, missed, window)
    return horizon, len(missed)


def _first_due(
    through: datetime | None, since: datetime | None, with_manager: bool, now: datetime
) -> datetime:
    """The moment after which firings count: the last check, or the timer's start when it was
    started since by other than the manager (or never checked); never before LOOK_BACK."""
    start = through if through is not None and through <= now else None  # clock went back
    if since is not None and (start is None or (since > start and not with_manager)):
        start = since
    return max(start or now, now - LOOK_BACK)


def _unmatched(firings: list[datetime], runs: list[datetime], window: timedelta) -> list[datetime]:
    """The firings no run started within `window` after. Latest first, each takes the
    earliest run of its window no later firing took: after a frozen manager woke, its one run
    is the latest firing's, and the earlier ones are missed."""
    used: set[int] = set()
    missed: list[datetime] = []
    for firing in reversed(firings):
        index = bisect_left(runs, firing)
        while index < len(runs) and runs[index] < firing + window and index in used:
            index += 1
        if index < len(runs) and runs[index] < firing + window:
            used.add(index)
        else:
            missed.append(firing)
    return missed[::-1]


def _alert_outages(
    spec: Checked,
    job: str,
    timer: JobTimerJSON,
    missed: list[datetime],
    history: History,
    timer_since: datetime | None,
    now: datetime,
) -> None:
    """One alert per outage: at a missed firing with no missed firing before it since the
    job's last run."""
    earlier = sorted([*history.missed, *missed])
    for firing in missed:
        before = bisect_left(earlier, firing)
        previous_missed = earlier[before - 1] if before else None
        ran = bisect_left(history.runs, firing)
        previous_run = history.runs[ran - 1] if ran else None
        if previous_missed is not None and (previous_run is None or previous_run < previous_missed):
            continue  # the same outage: said already
        text = _outage_text(job, timer, firing, missed, history, timer_since, now)
        own_alert(spec["state_dir"], f"missed:{job}:{iso(firing)}", text, now, ALERT_KIND, job)
        print(f"vigil: {text}", file=sys.stderr)


def _outage_text(
    job: str,
    timer: JobTimerJSON,
    first: datetime,
    missed: list[datetime],
    history: History,
    timer_since: datetime | None,
    now: datetime,
) -> str:
    after = bisect_right(history.runs, first)
    again = history.runs[after] if after < len(history.runs) else None
    count = sum(1 for m in missed if m >= first and (again is None or m < again))
    where = timer["calendar"]["timezone"]
    text = f"{job} did not run at {_local(first, where, now)}"
    if count == 2:
        text += " (nor at the next firing)"
    elif count > 2:
        text += f" (nor at the {count - 1} firings after it)"
    if again is None:
        return text + "; it has not run since"
    if _caught_up(timer, again, timer_since):
        return text + f"; caught up at {_local(again, where, now)}"
    return text + f"; it ran again at {_local(again, where, now)}"


def _caught_up(timer: JobTimerJSON, run: datetime, timer_since: datetime | None) -> bool:
    """Whether `run` made up for a missed firing: it started as its timer did (catch_up,
    Persistent=) or outside every firing's window (a realtime timer fires once on waking)."""
    if (
        timer["catch_up"]
        and timer_since is not None
        and timedelta(0) <= run - timer_since <= CATCH_UP_WITHIN
    ):
        return True
    calendar = timer["calendar"]
    try:
        firing = previous_firing(
            calendar["on_calendar"], calendar["timezone"], run + timedelta(milliseconds=1)
        )
    except (CalendarError, LookupError, ValueError):
        return False
    return firing is None or run - firing >= timedelta(seconds=timer["late"] + timer["grace"])


def _local(moment: datetime, where: str, now: datetime) -> str:
    """07:00 today, Mon 2 Feb 07:00 another day (in the timer's zone)."""
    local, today = moment.astimezone(zone(where)), now.astimezone(zone(where)).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _record(spec: Checked, job: str, missed: list[datetime], window: timedelta) -> None:
    """A `missed` line per firing (MAX_RECORDED at most, then one for the rest)."""
    limit = int(spec.get("history_max_bytes") or DEFAULT_HISTORY_MAX_BYTES)
    seconds = int(window.total_seconds())
    for firing in missed[:MAX_RECORDED]:
        _append(spec, job, firing, f"no run started within {seconds}s of this firing", limit)
    rest = missed[MAX_RECORDED:]
    if rest:
        why = f"{len(rest)} firings from {iso(rest[0])} to {iso(rest[-1])} had no run"
        _append(spec, job, rest[0], why, limit)


def _append(spec: Checked, job: str, firing: datetime, why: str, limit: int) -> None:
    record = RunRecord(job=job, kind="job", config=spec["config"], started=firing)
    record.invocation_id = None  # the coordinator's run, not the job's
    line = record.as_json(result=MISSED, exit_code=None, reason=why, ended=firing)
    append_line(spec["state_dir"], line, limit)

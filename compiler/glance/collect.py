"""Gather a Glance: one config's lanes (firings ahead from systemd's calendar arithmetic, runs
behind from runs.jsonl), its quiet hours and maintenance windows, open nag items, watch
instances, this month's spend against the budgets and the installed generation. Read only:
nothing here writes a file or starts a unit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from compiler.errors import VigilError, Warn
from compiler.glance.installed import installed_generation
from compiler.glance.model import (
    BudgetUse,
    Glance,
    Lane,
    LaneKind,
    Mark,
    Run,
    Spend,
    day_start,
)
from compiler.glance.shades import shades
from compiler.layout import Scope
from compiler.operate.setup import ConfigView
from compiler.operate.setup import Installed as Found
from runner.clock import parse_iso, zone
from runner.contract import RUNS
from runner.exitcodes import MISSED, OK_RESULT, SKIPPED_RESULTS
from runner.history import Usage, runs
from runner.spend import month_end, month_start

if TYPE_CHECKING:
    from compiler.language.schedule import FiringsCache


def collect(
    setup: ConfigView,
    *,
    now: datetime,
    days: int,
    past: int,
    scope: Scope | None = None,
    found: Found | None = None,
    warn: Warn,
    firings: FiringsCache | None = None,
) -> Glance:
    """The picture of `setup` at `now`: today and `days` - 1 calendar days ahead, `past` days
    behind, in the config's timezone. `scope` (live) asks systemd which timers are paused or
    disabled and when the heartbeat fires next; `found` is the installation `setup` was read
    from (None: the config file as written); `firings` keeps the timers' firings between calls
    (`vigil serve`: computed once a day)."""
    where = zone(setup.timezone)
    today = now.astimezone(where).date()
    since = day_start(today - timedelta(days=past), where)
    until = day_start(today + timedelta(days=days), where)
    problems: list[str] = []

    def keep(problem: str) -> None:
        problems.append(problem)
        warn(problem)

    status = _status_rows(setup, scope, now, keep)
    history = _history(setup, since, now, keep)
    lanes = [*_job_lanes(setup, now, until, history.runs, status, firings)]
    lanes += _watch_lanes(setup, now, until, firings)
    if setup.coordinator_units:
        lanes.append(_coordinator_lane(setup, now, until, history.runs, status))
    from compiler.operate.inspect_state import nag_rows
    from compiler.operate.watchctl import watch_rows

    return Glance(
        name=setup.name,
        timezone=setup.timezone,
        now=now,
        since=since,
        until=until,
        lanes=tuple(lanes),
        shades=tuple(shades(setup, since, until)),
        nag=tuple(row for row in nag_rows(setup, setup.state, keep) if _open(row)),
        watches=tuple(watch_rows(setup, setup.state, keep)),
        spend=_spend(setup, now, history, keep),
        generation=installed_generation(found.installation, found.changed) if found else None,
        problems=tuple(problems),
    )


def _open(row: dict[str, Any]) -> bool:
    return row.get("status") not in ("stopped", "resolved")


# --- lanes -------------------------------------------------------------------------------------


def _status_rows(
    setup: ConfigView, scope: Scope | None, now: datetime, warn: Warn
) -> dict[str, Any]:
    """systemd's view of each timer (enabled, paused, next elapse), when it is asked."""
    if scope is None or not scope.live:
        return {}
    from compiler.operate.status import collect as status_rows

    try:
        rows = status_rows(setup, scope, setup.state, now=now, warn=lambda _: None)
    except VigilError as error:  # systemctl failed: the picture is drawn without its view
        warn(f"systemd's view of the timers could not be read: {error}")
        return {}
    return {row.name: row for row in rows}


def _job_lanes(
    setup: ConfigView,
    now: datetime,
    until: datetime,
    history: dict[str, list[Run]],
    status: dict[str, Any],
    cache: FiringsCache | None,
) -> Iterator[Lane]:
    from compiler.language.schedule import firings_within

    timers = {
        name: (job.calendar["on_calendar"], job.calendar["timezone"])
        for name, job in setup.jobs.items()
        if job.calendar
    }
    ahead = firings_within(timers, now, until, cache=cache) if timers else {}
    for name, job in setup.jobs.items():
        firings, cut = ahead.get(name, ([], False))
        note = _stopped(status.get(name))
        yield Lane(
            name=name,
            kind=LaneKind.JOB,
            firings=() if note else tuple(firings),
            runs=tuple(history.get(name, ())),
            cut=cut and not note,
            schedule=_schedule_words(job.calendar) if job.calendar else "at boot",
            note=note,
        )


def _stopped(row: Any) -> str:
    """Why an installed timer will not fire as its calendar says; "" when it will."""
    if row is None:
        return ""
    if row.enabled == "paused":
        return row.note or "paused"
    if row.enabled not in ("enabled", "static", "-"):
        return f"timer {row.enabled}"
    return ""


def _schedule_words(calendar: Any) -> str:
    return "; ".join(calendar["on_calendar"])


def _watch_lanes(
    setup: ConfigView, now: datetime, until: datetime, cache: FiringsCache | None
) -> list[Lane]:
    """A watch's deadlines ahead; it has no runs behind (its timer's run drops a finding and
    records nothing: what it found is in the watch's instances)."""
    from compiler.language.schedule import firings_within
    from compiler.operate.watchctl import awaits

    timers = {
        name: (calendar["on_calendar"], calendar["timezone"])
        for name, calendar in setup.deadlines.items()
    }
    deadlines = firings_within(timers, now, until, cache=cache) if timers else {}
    lanes = []
    for name, watch in setup.watches.items():
        firings, cut = deadlines.get(name, ([], False))
        lanes.append(
            Lane(
                name=name,
                kind=LaneKind.WATCH,
                firings=tuple(firings),
                cut=cut,
                schedule=awaits(watch),
            )
        )
    return lanes


def _coordinator_lane(
    setup: ConfigView,
    now: datetime,
    until: datetime,
    history: dict[str, list[Run]],
    status: dict[str, Any],
) -> Lane:
    """The heartbeat fires `heartbeat` seconds after the last (a monotonic timer): from
    systemd's next elapse when it is known, else from now."""
    row = status.get("coordinator")
    first = parse_iso(row.next_run) if row is not None and row.next_run else None
    step = timedelta(seconds=setup.heartbeat)
    moment = (first or now + step).astimezone(UTC)  # UTC: adding a step adds real time
    firings = []
    while moment.timestamp() <= until.timestamp():
        firings.append(moment)
        moment += step
    minutes = setup.heartbeat / 60
    every = f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
    return Lane(
        name="coordinator",
        kind=LaneKind.COORDINATOR,
        firings=tuple(firings),
        runs=tuple(history.get("coordinator", ())),
        schedule=f"heartbeat every {every}, and at each finding",
        note=_stopped(row),
    )


@dataclass
class WindowRuns:
    """What one pass over runs.jsonl (streamed, the config's own lines) finds."""

    runs: dict[str, list[Run]] = field(default_factory=dict)
    """target -> its runs in [since, now], oldest first."""
    by_day: dict[date, dict[str, float]] = field(default_factory=dict)
    """This month's days -> job -> USD, up to now."""
    month: dict[str, Usage] = field(default_factory=dict)
    """job -> this month's usage (what the ledger holds when there is none yet)."""


def _history(setup: ConfigView, since: datetime, now: datetime, warn: Warn) -> WindowRuns:
    """The window's runs and the month's spend, in one pass (runs.jsonl and its rotated half):
    a history of many megabytes is read once, a line at a time."""
    where = zone(setup.timezone)
    month, _ = month_start(now, setup.timezone)
    first, last = since.timestamp(), now.timestamp()
    opens, closes = month.timestamp(), month_end(month).timestamp()
    found = WindowRuns()
    try:
        for record in runs(str(setup.state)):
            if record.get("config", setup.name) != setup.name:
                continue
            start = parse_iso(record.get("start"))
            if start is None:
                continue
            instant = start.timestamp()
            if first <= instant <= last:
                found.runs.setdefault(str(record.get("job")), []).append(_run(record, start))
            if opens <= instant < closes:
                _count_spend(found, record, start, where, instant <= last)
    except OSError as error:
        warn(f"{setup.state / RUNS} cannot be read ({error.strerror or error}): no runs shown")
    for listed in found.runs.values():
        listed.sort(key=lambda run: run.start.timestamp())
    return found


def _count_spend(
    found: WindowRuns, record: dict[str, Any], start: datetime, where: tzinfo, by_now: bool
) -> None:
    usage = Usage.of_run(record)
    if not (usage.tokens or usage.usd):
        return
    job = record.get("job")
    found.month.setdefault(job if isinstance(job, str) else "?", Usage()).merge(usage)
    if by_now and usage.usd > 0:
        day = found.by_day.setdefault(start.astimezone(where).date(), {})
        day[str(job)] = day.get(str(job), 0.0) + usage.usd


def _run(record: dict[str, Any], start: datetime) -> Run:
    result = str(record.get("result") or "failed")
    if result == OK_RESULT:
        mark = Mark.OK
    elif result == MISSED:
        mark = Mark.MISSED
    elif result in SKIPPED_RESULTS:
        mark = Mark.SKIPPED
    else:
        mark = Mark.FAILED
    usage = Usage.of_run(record)
    duration = record.get("duration_s")
    exit_status = record.get("exit_status")
    return Run(
        start=start,
        mark=mark,
        result=result,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        reason=str(record["reason"]) if record.get("reason") else None,
        exit_status=exit_status if isinstance(exit_status, int) else None,
        tokens=usage.tokens,
        cost_usd=usage.usd,
    )


# --- spend and budgets ---------------------------------------------------------------------------


def _spend(setup: ConfigView, now: datetime, history: WindowRuns, warn: Warn) -> Spend:
    """This month per day (the run history) and per job (the ledger budgets count): what the
    ledger holds beyond the history is kept apart as unrecorded, so the days add up to it."""
    from compiler.operate.cost import month_to_date

    _, month = month_start(now, setup.timezone)
    by_job = month_to_date(
        setup.state, setup.name, setup.timezone, now, warn=warn, history=history.month
    )
    by_day = history.by_day
    recorded: dict[str, float] = {}
    for jobs in by_day.values():
        for job, usd in jobs.items():
            recorded[job] = recorded.get(job, 0.0) + usd
    unrecorded = {
        job: round(usd - recorded.get(job, 0.0), 6)
        for job, (usd, _, _) in by_job.items()
        if usd - recorded.get(job, 0.0) > 1e-6
    }
    return Spend(month, by_day, by_job, unrecorded, tuple(_budgets(setup, by_job)))


def _budgets(setup: ConfigView, by_job: dict[str, tuple[float, int, int]]) -> Iterator[BudgetUse]:
    seen: set[str] = set()
    for name, job in setup.jobs.items():
        for budget in job.budgets:
            scope = name if budget["scope"] != "global" else "global"
            if scope in seen:
                continue
            seen.add(scope)
            counted = by_job.values() if scope == "global" else [by_job.get(name, (0.0, 0, 0))]
            yield BudgetUse(
                scope=scope,
                monthly_usd=budget.get("monthly_usd"),
                monthly_tokens=budget.get("monthly_tokens"),
                spent_usd=sum(usd for usd, _, _ in counted),
                spent_tokens=sum(tokens for _, tokens, _ in counted),
            )

"""`vigil status`: every job, watch and the coordinator in one table, from systemd's own view
(`systemctl show`) and runs.jsonl. Anything failed makes the command exit 1."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from compiler.errors import Warn
from compiler.install.pauses import read_pauses
from compiler.install.systemctl import Systemctl
from compiler.layout import Scope
from compiler.operate.control import units_of
from compiler.operate.setup import ConfigView
from runner import stateshapes as shapes
from runner.contract import (
    PREFLIGHT_STATE,
    coordinator_unit,
    job_unit,
    path_unit,
    reply_state_file,
    reply_unit,
    service,
    timer,
    watch_unit,
)
from runner.exitcodes import MISSED
from runner.fsatomic import read_state
from runner.history import runs
from runner.spend import read_ledger
from runner.statefile import StateUnreadable, peek_state

PROPERTIES = (
    "ActiveState",
    "Result",
    "UnitFileState",
    "NextElapseUSecRealtime",
    "NextElapseUSecMonotonic",
    "ExecMainStartTimestamp",
    "ExecMainStatus",
    "InvocationID",
)


@dataclass
class Row:
    name: str
    kind: str  # job, watch, coordinator
    enabled: str
    last_run: str | None
    result: str | None
    duration_s: float | None
    next_run: str | None
    failures_in_row: int
    tokens_month: int
    cost_month: float
    failed: bool
    note: str = ""
    paused: dict[str, object] | None = None
    """Since when, after how many failures and why the job is paused (`pause_after`)."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def collect(
    config: ConfigView,
    scope: Scope,
    state: Path,
    only: str | None = None,
    now: datetime | None = None,
    *,
    warn: Warn,
) -> list[Row]:
    name = config.name
    targets = [(job, "job", job_unit(name, job)) for job in config.jobs]
    targets += [
        (watch, "watch", watch_unit(name, watch))
        for watch in config.watches
        if watch in config.timed_watches
    ]
    if config.coordinator_units:  # none on a fleet host that does not run it
        targets.append(("coordinator", "coordinator", coordinator_unit(name)))
    replies = [(source, "reply", reply_unit(name, source)) for source in config.replies]
    if only is not None:
        targets = [t for t in targets if t[0] == only]
        replies = [t for t in replies if t[0] == only]
    units = [unit for target, _, _ in targets for unit in units_of(config, target)]
    units += [service(unit) for _, _, unit in replies]
    shown = (
        Systemctl(scope).show_many(units, *PROPERTIES, timezone=config.timezone)
        if scope.live
        else {}
    )
    _monotonic_next_runs(shown, config.timezone)
    history = _history(state, now or datetime.now(UTC), config, warn)
    scope_word = "system" if scope.system else "user"
    pauses = {p.job: p for p in read_pauses(state, name, scope_word, warn)}
    rows = [_row(target, kind, unit, shown, history) for target, kind, unit in targets]
    for row in rows:
        pause = pauses.get(row.name) if row.kind == "job" else None
        if pause is not None:
            row.enabled, row.paused = "paused", pause.as_json()
            row.note = "; ".join(
                filter(None, [f"paused {pause.words()}; `{pause.resume}` resumes", row.note])
            )
    rows += [_reply_row(source, unit, shown, state) for source, _, unit in replies]
    failing = _preflights_failing(state, warn)
    for row in rows:
        if row.kind == "job" and row.name in failing:
            row.note = "; ".join(filter(None, [failing[row.name], row.note]))
    return rows


def _preflights_failing(state: Path, warn: Warn) -> dict[str, str]:
    """job -> "preflight failing since ...: reason", from state/preflight.json."""
    try:
        usable, problem = peek_state(str(state), PREFLIGHT_STATE, shapes.PREFLIGHT)
    except StateUnreadable as error:
        warn(str(error))
        return {}
    if problem is not None:
        warn(f"state/{PREFLIGHT_STATE} {problem}")
    entries = (usable or {}).get("failing")
    return {
        job: f"preflight failing since {entry.get('since')}: {entry.get('reason')}"
        for job, entry in (entries.items() if isinstance(entries, dict) else [])
        if isinstance(entry, dict)
    }


# systemd's timespan units, as `systemctl show` prints them ("1h 49min 38.476707s").
_SPAN_UNITS = {
    "y": 31557600.0,
    "month": 2629800.0,
    "w": 604800.0,
    "d": 86400.0,
    "h": 3600.0,
    "min": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
}


def _monotonic_next_runs(shown: dict[str, dict[str, str]], timezone: str) -> None:
    """A monotonic timer (the coordinator's heartbeat) has no realtime next elapse: derive one
    from its monotonic one, printed like systemctl prints realtime timestamps."""
    for values in shown.values():
        if _when(values.get("NextElapseUSecRealtime")):
            continue
        seconds = _span_seconds(values.get("NextElapseUSecMonotonic") or "")
        if seconds is None:
            continue
        moment = datetime.now(ZoneInfo(timezone)) + timedelta(seconds=seconds - time.monotonic())
        values["NextElapseUSecRealtime"] = moment.strftime("%a %Y-%m-%d %H:%M:%S %Z")


def _span_seconds(span: str) -> float | None:
    parts = span.split()
    total = 0.0
    for part in parts:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", part)
        if match is None or match[2] not in _SPAN_UNITS:
            return None
        total += float(match[1]) * _SPAN_UNITS[match[2]]
    return total if parts else None


def _history(
    state: Path, now: datetime, config: ConfigView, warn: Warn
) -> dict[str, dict[str, Any]]:
    """job -> last run, failures in a row, tokens and cost this month (the spend ledger's
    month, in the config's timezone)."""
    summary: dict[str, dict[str, Any]] = {}
    for run in runs(str(state)):
        entry = summary.setdefault(str(run.get("job")), {"row": 0})
        if run.get("result") == MISSED:  # a firing with no run: said in the note, no failure
            entry["missed"] = run
            continue
        entry["last"] = run
        entry["row"] = 0 if run.get("result") == "ok" else entry["row"] + 1
    ledger = read_ledger(str(state), config.name, config.timezone, now)
    if ledger.problem:
        warn(f"{ledger.problem} (shown from runs.jsonl)")
    for job, used in ledger.jobs.items():
        summary.setdefault(job, {"row": 0}).update(tokens=used.tokens, cost=used.usd)
    return summary


def _row(
    target: str,
    kind: str,
    unit: str,
    shown: dict[str, dict[str, str]],
    history: dict[str, dict[str, Any]],
) -> Row:
    main = shown.get(service(unit), {})
    clock = shown.get(timer(unit), {})
    entry = history.get(target, {})
    last = entry.get("last") or {}
    notes = []
    failed = bool(entry.get("row"))
    if main.get("ActiveState") == "failed":
        failed = True
        notes.append(f"{service(unit)} failed ({main.get('Result')})")
    if main.get("ActiveState") == "activating":  # a oneshot's run in progress
        # A coordinator run that recorded a pass lingers for the next finding (runner.warm).
        warm = kind == "coordinator" and last.get("invocation_id") == main.get("InvocationID")
        notes.append("warm: takes the next finding at once (`linger`)" if warm else "running now")
    enabled = clock.get("UnitFileState") or "-"
    if kind == "coordinator":
        path = shown.get(path_unit(unit), {})
        if path and path.get("ActiveState") != "active":
            failed = True
            notes.append(f"path unit {path.get('ActiveState')} ({path.get('Result')})")
        # A fleet coordinator has no path unit: its service is what is enabled.
        enabled = path.get("UnitFileState") or main.get("UnitFileState") or enabled
    if shown and clock.get("ActiveState") not in (None, "active") and enabled == "enabled":
        notes.append(f"timer {clock.get('ActiveState')}")
    skipped = entry.get("missed")
    if skipped and str(skipped.get("start")) > str(last.get("start") or ""):
        notes.append(f"missed its {skipped.get('start')} firing; no run since")
    return Row(
        name=target,
        kind=kind,
        enabled=enabled,
        last_run=last.get("start") or _when(main.get("ExecMainStartTimestamp")),
        result=last.get("result") or _systemd_result(main),
        duration_s=last.get("duration_s"),
        next_run=_when(clock.get("NextElapseUSecRealtime")),
        failures_in_row=int(entry.get("row") or 0),
        tokens_month=int(entry.get("tokens") or 0),
        cost_month=round(float(entry.get("cost") or 0.0), 4),
        failed=failed,
        note="; ".join(notes),
    )


def _reply_row(source: str, unit: str, shown: dict[str, dict[str, str]], state: Path) -> Row:
    """A reply source: its long-running service, and what its state file counts."""
    main = shown.get(service(unit), {})
    counts = read_state(str(state), reply_state_file(source))
    ignored = counts.get("ignored")
    ignored_total = (
        sum(v for v in ignored.values() if isinstance(v, int)) if isinstance(ignored, dict) else 0
    )
    active = main.get("ActiveState")
    last = counts.get("lastReply")
    notes = [f"received {counts.get('received') or 0}, ignored {ignored_total}"]
    if active and active != "active":
        notes.append(f"{service(unit)} {active} ({main.get('Result')})")
    return Row(
        name=source,
        kind="reply",
        enabled=main.get("UnitFileState") or "-",
        last_run=last if isinstance(last, str) else None,
        result=active,
        duration_s=None,
        next_run=None,
        failures_in_row=0,
        tokens_month=0,
        cost_month=0.0,
        failed=active == "failed",
        note="; ".join(notes),
    )


def _when(value: str | None) -> str | None:
    return value if value and value not in ("n/a", "0") else None


def _systemd_result(main: dict[str, str]) -> str | None:
    if not main.get("ExecMainStartTimestamp"):
        return None
    return main.get("Result")

"""A host's report to the fleet: its generation, config hash, and each of its jobs' last run,
failures in a row and next firing, put under its own name in the hosts bucket by every
heartbeat of its forwarder. `vigil status --fleet` reads them on any host; the active
coordinator alerts when one stops coming (runner.fleet.silence).
"""

from __future__ import annotations

import json
import os

from runner.clock import iso
from runner.contract import OUTGOING
from runner.exitcodes import MISSED
from runner.fleet.names import hosts_bucket
from runner.history import runs_of

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

    from runner.fleet.jetstream import JetStream
    from runner.spectypes import ForwardSpecJSON

REPORT_VERSION = 1


def build(spec: ForwardSpecJSON, generation: int | None, now: datetime) -> dict[str, object]:
    fleet = spec["fleet"]
    jobs = spec.get("jobs") or {}
    timers = _next_firings(spec["scope"], [t for job in jobs.values() if (t := job.get("timer"))])
    report: dict[str, object] = {
        "version": REPORT_VERSION,
        "host": fleet["host"],
        "config": spec["config"],
        "config_hash": fleet["config_hash"],
        "generation": generation,
        "reported": iso(now),
        "heartbeat": spec["heartbeat"],
        "waiting": _count(os.path.join(spec["state_dir"], OUTGOING)),
        "coordinator": fleet["host"] in fleet["coordinator_hosts"],
        "jobs": {
            job: _job(spec["state_dir"], job, timers.get(entry.get("timer") or ""))
            for job, entry in jobs.items()
        },
    }
    return report


def publish_report(
    stream: JetStream, spec: ForwardSpecJSON, generation: int | None, now: datetime
) -> None:
    data = json.dumps(build(spec, generation, now), sort_keys=True, separators=(",", ":")).encode()
    stream.put(hosts_bucket(spec["config"]), spec["fleet"]["host"], data)


def _job(state_dir: str, job: str, next_firing: str | None) -> dict[str, object]:
    last: dict[str, object] | None = None
    failures = 0
    for record in runs_of(state_dir, job):
        if record.get("result") == MISSED:
            continue
        if last is None:
            last = {k: record.get(k) for k in ("start", "end", "result", "exit_status", "reason")}
        if record.get("result") == "ok":
            break
        failures += 1
        if failures >= 100:
            break
    return {"last": last, "failures": failures, "next": next_firing}


def _next_firings(scope: str, timers: list[str]) -> dict[str, str | None]:
    """timer -> its next firing (ISO), asked of systemd in one call; {} when it cannot be."""
    if not timers:
        return {}
    from runner.systemctl import systemctl
    from runner.timers import shown_units, timestamp

    shown, why = systemctl(
        scope, "show", "--timestamp=unix", "-p", "Id,NextElapseUSecRealtime", *timers
    )
    if why is not None:
        return {}
    found: dict[str, str | None] = {}
    for unit, values in shown_units(shown).items():
        moment = timestamp(values.get("NextElapseUSecRealtime"))
        found[unit] = iso(moment) if moment else None
    return found


def generation_of(spec_path: str) -> int | None:
    """The number of the generation a spec belongs to (`<generations>/N/specs/...`)."""
    try:
        return int(os.path.basename(os.path.dirname(os.path.dirname(os.path.realpath(spec_path)))))
    except ValueError:
        return None


def _count(directory: str) -> int:
    try:
        return sum(1 for name in os.listdir(directory) if name[0] != ".")
    except FileNotFoundError:
        return 0

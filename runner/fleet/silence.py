"""A host that stopped reporting: one alert when its report is older than two of its
heartbeats ("vps has not reported since 14:05"), built in; said again only after it reported
in between. A host that never reported counts from when this coordinator took office."""

from __future__ import annotations

import json
from datetime import datetime

from runner.clock import iso, parse_iso, zone
from runner.fleet.names import hosts_bucket
from runner.fsatomic import read_state, write_state
from runner.statefile import own_alert

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.fleet.jetstream import JetStream
    from runner.spectypes import CoordinatorSpecJSON

SILENT = "fleet-silent.json"
"""Under state/: host -> the report time its silence was said for."""
ALERT_KIND = "host-silent"


def reports(stream: JetStream, config: str, hosts: list[str]) -> dict[str, dict[str, object]]:
    found = {}
    for host in hosts:
        entry = stream.get(hosts_bucket(config), host)
        try:
            report = json.loads(entry.value) if entry is not None and entry.value else None
        except ValueError:
            report = None
        if isinstance(report, dict):
            found[host] = report
    return found


def check(
    stream: JetStream, spec: CoordinatorSpecJSON, work_dir: str, now: datetime, since: datetime
) -> dict[str, str] | None:
    """Alert (into the working inbox) for each host newly silent; the silences to keep once
    those alerts are delivered, or None when nothing changed."""
    fleet = spec["fleet"]
    heartbeat = int(spec["coordinator"]["heartbeat"])
    said = read_state(work_dir, SILENT).get("silent")
    silent = {str(k): str(v) for k, v in said.items()} if isinstance(said, dict) else {}
    before = dict(silent)
    found = reports(stream, spec["config"], fleet["hosts"])
    for host in fleet["hosts"]:
        report = found.get(host) or {}
        reported = parse_iso(report.get("reported"))
        every = report.get("heartbeat")
        limit = 2 * (every if isinstance(every, int) and every > 0 else heartbeat)
        last = reported or since
        if (now - last).total_seconds() <= limit:
            silent.pop(host, None)
            continue
        if host in silent:
            continue
        when = _shown(last, spec.get("timezone") or "UTC", now)
        text = f"{host} has not reported since {when}" if reported else f"{host} has never reported"
        own_alert(work_dir, f"{ALERT_KIND}:{host}:{iso(last)}", text, now, kind=ALERT_KIND)
        silent[host] = iso(last)
    return silent if silent != before else None


def save(work_dir: str, silent: dict[str, str]) -> None:
    write_state(work_dir, SILENT, {"version": 1, "silent": silent})


def _shown(moment: datetime, timezone: str, now: datetime) -> str:
    """14:05 today, else 2026-03-02 14:05, in the config's timezone."""
    try:
        tz = zone(timezone)
    except (LookupError, ValueError):
        tz = None
    local, today = (moment.astimezone(tz), now.astimezone(tz)) if tz else (moment, now)
    return local.strftime("%H:%M" if local.date() == today.date() else "%Y-%m-%d %H:%M")

"""`vigil status --fleet`: every fleet host's jobs, from the reports the hosts' forwarders put
in the fleet's hosts bucket (runner.fleet.report), read from any machine with the config and
NATS, and who holds the coordinator's lease.

The connection comes from the installed generation: its forwarder's spec (`fleet`) and the
credential file its forwarder's `LoadCredential=` names (this command runs outside systemd,
so it reads that file itself). A config never applied on this machine gives the same from its
model. Stdlib only on the installed path: `vigil status` starts without the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import VigilError
from compiler.operate.setup import FORWARD_SPEC
from runner.clock import parse_iso, zone
from runner.fleet.names import LEASE_KEY, hosts_bucket, inbox_prefix, lease_bucket

if TYPE_CHECKING:
    from compiler.language.model import Config
    from compiler.operate.setup import Installed
    from runner.fleet.client import Credentials
    from runner.fleet.jetstream import JetStream

HASH_SHOWN = 8
"""Hex digits of a config hash shown in the table."""
SILENT_AFTER = 2
"""Heartbeats without a report after which a host is silent (as runner.fleet.silence)."""


class FleetUnreachable(VigilError):
    """NATS did not answer or refused: exit 1, one line, no secret in it."""


@dataclass(frozen=True)
class FleetSettings:
    """What `status --fleet` needs of a fleet config: where NATS is and who should report."""

    config: str
    servers: tuple[str, ...]
    credential: str | None
    """The secret's name (`fleet.credentials`)."""
    credential_file: str | None
    """Where that secret lives on this machine, `~` expanded."""
    host: str | None
    """This machine's host, when the config is installed here."""
    hosts: tuple[str, ...]
    coordinator_hosts: tuple[str, ...]
    config_hash: str
    """sha256 of the config file this machine runs (or, not installed, of the file)."""
    heartbeat: int
    timezone: str
    tls_ca: str | None = None
    """The servers' certificate authorities (`fleet.tls_ca`, `~` expanded); None: the system's."""


@dataclass
class JobRow:
    job: str
    last_run: str | None
    result: str | None
    next_run: str | None
    failures_in_row: int
    note: str = ""


@dataclass
class HostRow:
    host: str
    reported: str | None
    """When its last report was made (ISO); None: never."""
    age_s: int | None
    silent: bool
    """Its report is older than two of its heartbeats, or it never reported."""
    generation: int | None = None
    config_hash: str | None = None
    drift: bool = False
    """It runs another config than this one."""
    heartbeat: int | None = None
    waiting: int = 0
    """Findings in its outgoing/ that NATS has not taken yet."""
    coordinator: str | None = None
    """`active` (holds the lease), `standby`, or None: it does not run the coordinator."""
    in_config: bool = True
    """False: it reports under this config's name but is not one of its hosts."""
    jobs: list[JobRow] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.silent or any(job.failures_in_row for job in self.jobs)


@dataclass
class FleetStatus:
    config: str
    config_hash: str
    lease: dict[str, Any] | None
    """The lease's value: the active coordinator's host, pid and since when."""
    hosts: list[HostRow]
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(host.failed for host in self.hosts if host.in_config)

    def reporting(self) -> int:
        return sum(host.reported is not None for host in self.hosts)

    def majority_hash(self) -> str | None:
        """The config hash most hosts report (None when none reported)."""
        counted = Counter(host.config_hash for host in self.hosts if host.config_hash)
        return counted.most_common(1)[0][0] if counted else None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the settings ------------------------------------------------------------------------------


def installed_settings(found: Installed) -> FleetSettings | None:
    """The fleet of an installed generation; None for a config without `fleet:`."""
    directory = found.installation.generation_dir(found.generation)
    try:
        spec = json.loads((directory / FORWARD_SPEC).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None  # every fleet host has a forwarder
    fleet = spec["fleet"]
    credential = fleet.get("credential")
    unit = directory / "units" / spec["unit"]
    return FleetSettings(
        config=spec["config"],
        servers=tuple(fleet["servers"]),
        credential=credential,
        credential_file=_loaded_credential(unit, credential) if credential else None,
        host=fleet["host"],
        hosts=tuple(fleet["hosts"]),
        coordinator_hosts=tuple(fleet["coordinator_hosts"]),
        config_hash=fleet["config_hash"],
        tls_ca=_expanded(fleet.get("tls_ca")),
        heartbeat=int(spec["heartbeat"]),
        timezone=spec.get("timezone") or "UTC",
    )


def _loaded_credential(unit: Path, credential: str) -> str | None:
    """The file the unit's `LoadCredential=NAME:PATH` passes, its `%h` and `%%` undone."""
    prefix = f"LoadCredential={credential}:"
    try:
        lines = unit.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.startswith(prefix):
            path = line.removeprefix(prefix)
            home = os.path.expanduser("~")
            return "%".join(part.replace("%h", home) for part in path.split("%%"))
    return None


def file_settings(config: Config, path: Path) -> FleetSettings | None:
    """The fleet of a config file never applied here; None without `fleet:`."""
    if config.fleet is None:
        return None
    from compiler.generate.fleet import coordinator_hosts

    credential = config.fleet.credentials
    secret = config.secrets.get(credential) if credential else None
    machine = socket.gethostname()
    hosts = list(config.hosts or [])
    here = next((n for n in (machine, machine.split(".", 1)[0]) if n in hosts), None)
    return FleetSettings(
        config=config.name,
        servers=tuple(config.fleet.servers),
        credential=credential,
        credential_file=os.path.expanduser(str(secret)) if secret else None,
        host=here,
        hosts=tuple(hosts),
        coordinator_hosts=tuple(coordinator_hosts(config)),
        config_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        tls_ca=_expanded(config.fleet.tls_ca),
        heartbeat=config.coordinator.heartbeat,
        timezone=config.timezone,
    )


# --- reading the fleet -------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    reports: dict[str, dict[str, Any]]
    lease: dict[str, Any] | None
    problems: list[str]


def _expanded(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None


def fetch(settings: FleetSettings) -> Snapshot:
    """Every report in the hosts bucket and the lease, on one connection."""
    from runner.fleet.client import Connection, NatsError, Refused, Unreachable
    from runner.fleet.jetstream import JetStream

    inbox = inbox_prefix(settings.config, settings.host) if settings.host else "_INBOX"
    connection = Connection(
        list(settings.servers),
        _credentials(settings),
        inbox=inbox,
        name=f"vigil status {settings.config}/{settings.host or socket.gethostname()}",
        ca_file=settings.tls_ca,
    )
    try:
        with connection:
            stream = JetStream(connection)
            reports, problems = _reports(stream, settings.config)
            return Snapshot(reports, _lease(stream, settings.config), problems)
    except Unreachable as error:
        raise FleetUnreachable(f"vigil: cannot reach the fleet's NATS: {error}") from None
    except Refused as error:
        raise FleetUnreachable(f"vigil: the fleet's NATS refused this machine: {error}") from None
    except NatsError as error:
        servers = ", ".join(_shown(url) for url in settings.servers)
        raise FleetUnreachable(f"vigil: the fleet's NATS ({servers}): {error}") from None


def _credentials(settings: FleetSettings) -> Credentials:
    from runner.fleet.client import Credentials

    if not settings.credential:
        return Credentials()
    if not settings.credential_file:
        raise VigilError(
            f"vigil: the fleet credential {settings.credential!r} names no file (`secrets:`)"
        )
    from runner.fleet.connect import CredentialsMissing, usable

    try:
        with open(settings.credential_file, encoding="utf-8") as handle:
            return usable(handle.read(), settings.credential)
    except OSError as error:
        raise VigilError(
            f"vigil: cannot read the fleet credential {settings.credential!r} "
            f"({settings.credential_file}): {error.strerror or error}"
        ) from None
    except CredentialsMissing as error:
        raise VigilError(f"vigil: {error}") from None


def _reports(stream: JetStream, config: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    from runner.fleet.jetstream import STREAM_NOT_FOUND, JetStreamError

    try:
        entries = stream.entries(hosts_bucket(config))
    except JetStreamError as error:
        if error.err_code == STREAM_NOT_FOUND:  # no coordinator has set the fleet up yet
            return {}, [f"no host has reported: {hosts_bucket(config)} does not exist yet"]
        raise
    reports, problems = {}, []
    for host, entry in sorted(entries.items()):
        try:
            report = json.loads(entry.value or b"")
        except ValueError:
            report = None
        if isinstance(report, dict) and isinstance(report.get("jobs"), dict):
            reports[host] = report
        else:
            problems.append(f"the report of {host} is not one vigil reads; left out")
    return reports, problems


def _lease(stream: JetStream, config: str) -> dict[str, Any] | None:
    from runner.fleet.jetstream import STREAM_NOT_FOUND, JetStreamError

    try:
        entry = stream.get(lease_bucket(config), LEASE_KEY)
    except JetStreamError as error:
        if error.err_code == STREAM_NOT_FOUND:
            return None
        raise
    if entry is None or entry.value is None:
        return None
    try:
        value = json.loads(entry.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("host"), str) else None


def _shown(url: str) -> str:
    from runner.fleet.client import _shown as without_password

    return without_password(url)


# --- the view ----------------------------------------------------------------------------------


def fleet_status(settings: FleetSettings, snapshot: Snapshot, now: datetime) -> FleetStatus:
    """The config's hosts in its order, then hosts reporting under its name it does not list."""
    active = snapshot.lease["host"] if snapshot.lease else None
    names = list(settings.hosts)
    names += [h for h in snapshot.reports if h not in settings.hosts]
    if active and active not in names:
        names.append(active)
    rows = []
    for host in names:
        row = _host_row(host, snapshot.reports.get(host), settings, now)
        row.in_config = host in settings.hosts
        runs_coordinator = host in settings.coordinator_hosts or host == active
        if row.reported and snapshot.reports[host].get("coordinator") is True:
            runs_coordinator = True
        if runs_coordinator:
            row.coordinator = "active" if host == active else "standby"
        rows.append(row)
    return FleetStatus(
        settings.config, settings.config_hash, snapshot.lease, rows, list(snapshot.problems)
    )


def _host_row(
    host: str, report: dict[str, Any] | None, settings: FleetSettings, now: datetime
) -> HostRow:
    if report is None:
        return HostRow(host, reported=None, age_s=None, silent=True)
    reported = parse_iso(report.get("reported"))
    every = report.get("heartbeat")
    heartbeat = every if isinstance(every, int) and every > 0 else settings.heartbeat
    age = int((now - reported).total_seconds()) if reported else None
    config_hash = report.get("config_hash")
    generation = report.get("generation")
    waiting = report.get("waiting")
    return HostRow(
        host,
        reported=report.get("reported") if reported else None,
        age_s=age,
        silent=age is None or age > SILENT_AFTER * heartbeat,
        generation=generation if isinstance(generation, int) else None,
        config_hash=config_hash if isinstance(config_hash, str) else None,
        drift=isinstance(config_hash, str) and config_hash != settings.config_hash,
        heartbeat=heartbeat,
        waiting=waiting if isinstance(waiting, int) else 0,
        jobs=[_job_row(job, entry) for job, entry in report["jobs"].items()],
    )


def _job_row(job: str, entry: object) -> JobRow:
    entry = entry if isinstance(entry, dict) else {}
    found = entry.get("last")
    last: dict[str, Any] = found if isinstance(found, dict) else {}
    failures = entry.get("failures")
    result = last.get("result")
    reason = last.get("reason")
    return JobRow(
        job,
        last_run=last.get("start"),
        result=result,
        next_run=entry.get("next"),
        failures_in_row=failures if isinstance(failures, int) else 0,
        note=str(reason) if reason and result != "ok" else "",
    )


def local_time(text: str | None, timezone: str) -> str | None:
    """An ISO time from a report as `2026-12-07 11:00:00 CET`, in the config's timezone."""
    moment = parse_iso(text)
    if moment is None:
        return text
    try:
        tz = zone(timezone)
    except (LookupError, ValueError):
        tz = zone("UTC")
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def age(seconds: int) -> str:
    """32s, 5m, 3h, 2d: the largest unit that makes a whole figure of at least two (one
    for minutes)."""
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"

"""Render a validated config into the generated tree: units, runner scripts, specs, manifest.

Pure: no disk, no clock, no environment. The same config and options give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from compiler import __version__
from compiler.generate import fleet as fleets
from compiler.generate import jsontext, sandbox, specs, unitfile
from compiler.generate.templating import fill
from compiler.language.model import Config, Job
from compiler.language.model.types import format_duration
from compiler.language.preflight import preflight_calendar
from compiler.language.schedule import parse_schedule
from compiler.layout import unit_prefix
from runner.contract import (
    COORDINATOR_LINGER_MAX,
    COORDINATOR_PASS_TIMEOUT,
    FORWARD_TIMEOUT,
    INBOX,
    PREFLIGHT_ARG,
    RUNNER_ENTRY,
    coordinator_unit,
    failure_instance,
    failure_unit,
    forward_unit,
    job_unit,
    path_unit,
    preflight_unit,
    reply_unit,
    rollback_unit,
    service,
    timer,
    watch_unit,
)
from runner.spectypes import FleetJSON, SpecJSON, SpecKind

# Runner scripts are executable; specs and the config copy may hold inline tokens.
SCRIPT_MODE = 0o755
PRIVATE_MODE = 0o600
UNIT_MODE = 0o644


@dataclass(frozen=True)
class GeneratedFile:
    content: bytes
    mode: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


Tree = dict[str, GeneratedFile]


@dataclass(frozen=True)
class Source:
    """Where the config came from, for headers and the manifest."""

    label: str  # how the manifest names it: a path, or path@revision
    text: bytes  # the config file's bytes, copied into the tree
    git: dict[str, Any] | None = None  # {"revision": ..., "dirty": ...} when it lives in git
    path: str = ""
    """How headers name it (default: the label): the path alone, so the same config applied
    from the working tree or from a git revision gives the same units (restarting an unchanged
    timer can fire it off-schedule)."""


@dataclass(frozen=True)
class Target:
    """What one render is for: the whole config, and the part of it this machine runs (all of
    it without `fleet:`; a fleet host's jobs, and watches on a coordinator host, with it)."""

    config: Config
    local: Config
    system: bool
    fleet: FleetJSON | None = None
    """The fleet as this host is compiled, None without `fleet:`."""

    @property
    def host(self) -> str | None:
        return self.fleet["host"] if self.fleet else None

    @property
    def runs_coordinator(self) -> bool:
        return self.fleet is None or self.fleet["host"] in self.fleet["coordinator_hosts"]


def _target(config: Config, source: Source, system: bool, host: str | None) -> Target:
    if config.fleet is None:
        return Target(config, config, system)
    if host is None:
        raise ValueError("a fleet config is rendered for one of its hosts")
    fleet = specs.fleet_json(config, host, hashlib.sha256(source.text).hexdigest())
    return Target(config, fleets.host_view(config, host), system, fleet)


@dataclass(frozen=True)
class Unit:
    """One unit in the manifest: what apply enables and starts."""

    name: str
    start: bool  # enabled and started by apply (timers and paths of enabled things)


def render(
    config: Config,
    source: Source,
    *,
    python: str,
    system: bool = False,
    runtime: Sequence[str] = (),
    host: str | None = None,
) -> Tree:
    """Everything `vigil compile` writes, keyed by path relative to the generation.

    `runtime`: directories the interpreter needs that a strict sandbox would hide (its
    installation and packages below a home directory); strict services bind them read-only.
    `host`: the fleet host to compile for (a config with `fleet:` only; see fleet.choose_host).
    """
    target = _target(config, source, system, host)
    base = {
        "version": __version__,
        "source": unitfile.literal(_one_line(source.path or source.label)),
        "name": config.name,
        "prefix": unit_prefix(system, config.name),
        "on_failure": failure_instance(config.name, "%n"),
    }
    tree: Tree = {}
    units: list[Unit] = []
    for unit, kind, spec_name, spec in _runnables(target):
        tree[f"bin/{unit}"] = _text(
            fill(
                "runner.sh.j2", base, python=python, entry=RUNNER_ENTRY, kind=kind, spec=spec_name
            ),
            SCRIPT_MODE,
        )
        tree[f"specs/{spec_name}"] = _json(spec, PRIVATE_MODE)
    for filename, template, values, start in _units(target, runtime):
        text = fill(template, base, **values)
        tree[f"units/{filename}"] = _text(text, UNIT_MODE)
        units.append(Unit(filename, start))
    if config.release.auto_rollback:
        unit = rollback_unit(config.name)
        script = fill("rollback.sh.j2", base, python=python, unit=unit, system=system)
        tree[f"bin/{unit}"] = _text(script, SCRIPT_MODE)
        text = fill("rollback.service.j2", base, unit=unit)
        tree[f"units/{service(unit + '@')}"] = _text(text, UNIT_MODE)
        units.append(Unit(service(unit + "@"), False))
    tree["config.yaml"] = GeneratedFile(source.text, PRIVATE_MODE)
    manifest = _manifest(target, source, tree, units, python)
    tree["manifest.json"] = _json(manifest, UNIT_MODE)
    return tree


def _one_line(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text).rstrip("\\")


def _text(text: str, mode: int) -> GeneratedFile:
    return GeneratedFile(text.encode("utf-8"), mode)


def _json(data: Any, mode: int) -> GeneratedFile:
    text = jsontext.dumps(data) + "\n"
    return _text(text, mode)


def _runnables(target: Target) -> Iterator[tuple[str, SpecKind, str, SpecJSON]]:
    """(unit, runner kind, spec file, spec) for every unit that runs the runner."""
    config, system = target.local, target.system
    name = config.name
    for job_name, job in config.jobs.items():
        spec = specs.job_spec(config, job_name, job, system, target.fleet)
        yield job_unit(name, job_name), "job", f"{job_name}.json", spec
    if target.runs_coordinator:  # a fleet's coordinator handles the findings of every host
        coordinator = specs.coordinator_spec(target.config, system, target.fleet)
        yield coordinator_unit(name), "coordinator", "coordinator.json", coordinator
    if target.fleet is not None:
        forward = specs.forward_spec(config, target.fleet, system)
        yield forward_unit(name), "forward", "forward.json", forward
    for source in config.replies:
        reply = specs.reply_spec(config, source, system)
        yield reply_unit(name, source), "reply", f"reply-{source}.json", reply
    for watch_name in _timed_watches(config):
        watch = specs.watch_spec(config, watch_name, system)
        yield watch_unit(name, watch_name), "watch", f"watch-{watch_name}.json", watch
    yield failure_unit(name), "failure", "failure.json", specs.failure_spec(config, system)


def _timed_watches(config: Config) -> list[str]:
    """Watches that need their own timer: deadlines and schedule-armed file watches."""
    return [name for name, watch in config.watches.items() if watch.timer is not None]


UnitPlan = tuple[str, str, dict[str, Any], bool]


def _units(target: Target, runtime: Sequence[str]) -> Iterator[UnitPlan]:
    config, system = target.local, target.system
    internal = sandbox.internal_policy(config, system)
    yield from _job_units(config, system, runtime)
    if target.fleet is None:
        yield from _coordinator_units(config, system, runtime)
    else:
        if target.runs_coordinator:
            yield _fleet_coordinator_service(target, runtime)
        yield from _forward_units(target, runtime)
    yield from _watch_units(config, internal)
    yield from _reply_units(config, system, runtime)
    unit = failure_unit(config.name)
    yield service(f"{unit}@"), "failure.service.j2", {"unit": unit, "sandbox": internal}, False


def _job_units(config: Config, system: bool, runtime: Sequence[str]) -> Iterator[UnitPlan]:
    for job_name, job in config.jobs.items():
        unit = job_unit(config.name, job_name)
        words = f"{config.name}: {job_name}" + (f" ({job.description})" if job.description else "")
        credentials = [(secret, config.secrets[secret]) for secret in job.secrets]
        if job.prompt is not None and config.llm.api_key:
            credentials.append((config.llm.api_key, config.secrets[config.llm.api_key]))
        if job.prompt is not None:  # a fleet's spend ledger is in NATS
            credentials += _fleet_credentials(config)
        job_service = {
            "unit": unit,
            "script": unit,
            "arguments": "",
            "description": words,
            "timeout": service_timeout(config, job),
            "after": service(job_unit(config.name, job.after)) if job.after else None,
            "credentials": sorted(set(credentials)),
            "sandbox": sandbox.job_policy(config, job, system, runtime),
        }
        yield service(unit), "job.service.j2", job_service, False
        timings = [parse_schedule(expression) for expression in job.schedule]
        job_timer = {
            "unit": unit,
            "description": f"{config.name}: {job_name} schedule ({'; '.join(job.schedule)})",
            "on_calendar": [line for timing in timings for line in timing.on_calendar],
            "on_startup": any(timing.kind == "reboot" for timing in timings),
            "timezone": job.timezone or config.timezone,
            "persistent": job.catch_up,
            "accuracy": job.accuracy,
            "randomized_delay": job.randomized_delay,
        }
        yield timer(unit), "calendar.timer.j2", job_timer, job.enabled
        if job.preflight is not None:
            yield from _preflight_units(config, job_name, job_service, job_timer, job.enabled)


def _preflight_units(
    config: Config,
    job_name: str,
    job_service: dict[str, Any],
    job_timer: dict[str, Any],
    enabled: bool,
) -> Iterator[UnitPlan]:
    """The job's check, in the job's own service settings, `preflight:` before each firing.
    It raises its own alert (runner.preflight): no OnFailure=."""
    job = config.jobs[job_name]
    assert job.preflight is not None
    unit = preflight_unit(config.name, job_name)
    preflight_service = {
        **job_service,
        "unit": unit,
        "script": job_unit(config.name, job_name),
        "arguments": PREFLIGHT_ARG,
        "description": f"{config.name}: {job_name} preflight (its check, "
        f"{format_duration(job.preflight)} before each run)",
        "on_failure": None,
        "after": None,
        "timeout": job.timeout + 30,
    }
    yield service(unit), "job.service.j2", preflight_service, False
    preflight_timer = {
        **job_timer,
        "unit": unit,
        "description": f"{config.name}: {job_name} preflight",
        "on_calendar": preflight_calendar(job.schedule, job.preflight),
        "on_startup": False,
        "persistent": False,  # a preflight after the firing it was for says nothing
        "randomized_delay": 0,
    }
    yield timer(unit), "calendar.timer.j2", preflight_timer, enabled


def service_timeout(config: Config, job: Job) -> int:
    # The runner enforces the command's timeout itself and records why; systemd's limit is the
    # backstop, with room for the model call (one retry) and the runner's bookkeeping. A chain
    # step may first wait up to its timeout for a predecessor still running (one started by
    # hand, which After= does not order): the limit covers that wait as well.
    model_time = 2 * config.llm.timeout if job.prompt is not None else 0
    wait_time = job.timeout if job.after is not None else 0
    return wait_time + job.timeout + model_time + 30


def _channel_credentials(config: Config) -> list[tuple[str, str]]:
    """LoadCredential= pairs of the secrets the coordinator's channels read."""
    channel_secrets = [c.apprise_secret for c in config.channels.values() if c.apprise_secret]
    return [(s, config.secrets[s]) for s in channel_secrets]


def _fleet_credentials(config: Config) -> list[tuple[str, str]]:
    credentials = config.fleet.credentials if config.fleet else None
    return [(credentials, config.secrets[credentials])] if credentials else []


COORDINATOR_TRIGGERS = (
    "start the coordinator when a finding lands in the inbox",
    "coordinator heartbeat (retries, deadlines; no tokens)",
)
FORWARD_TRIGGERS = (
    "start the forwarder when a finding lands in the inbox",
    "forwarder heartbeat (this host's runs to the fleet)",
)


def _inbox_and_heartbeat(
    config: Config, system: bool, unit: str, purposes: tuple[str, str]
) -> Iterator[UnitPlan]:
    """What starts a service that empties the inbox: a path unit on the inbox, and a timer
    every coordinator.heartbeat (the purposes are their descriptions)."""
    inbox = specs.state_dir(config, system).rstrip("/") + "/" + INBOX
    yield (
        path_unit(unit),
        "inbox.path.j2",
        {"unit": unit, "inbox": inbox, "purpose": purposes[0]},
        True,
    )
    heartbeat = config.coordinator.heartbeat
    heartbeat_timer = {
        "unit": unit,
        "heartbeat": heartbeat,
        "accuracy": max(1, min(60, heartbeat // 10)),
        "purpose": purposes[1],
    }
    yield timer(unit), "heartbeat.timer.j2", heartbeat_timer, True


def _coordinator_units(config: Config, system: bool, runtime: Sequence[str]) -> Iterator[UnitPlan]:
    unit = coordinator_unit(config.name)
    # A warm run (runner.warm) is one activation of the oneshot: its first pass, up to
    # COORDINATOR_LINGER_MAX of lingering and one last pass begun just before that ends. The
    # runner limits each pass itself; this is the backstop.
    warm = COORDINATOR_LINGER_MAX + COORDINATOR_PASS_TIMEOUT if config.coordinator.linger else 0
    coordinator_service = {
        "unit": unit,
        "timeout": COORDINATOR_PASS_TIMEOUT + warm,
        "credentials": sorted(set(_channel_credentials(config))),
        "sandbox": sandbox.coordinator_policy(config, system, runtime),
    }
    yield service(unit), "coordinator.service.j2", coordinator_service, False
    yield from _inbox_and_heartbeat(config, system, unit, COORDINATOR_TRIGGERS)


def _fleet_coordinator_service(target: Target, runtime: Sequence[str]) -> UnitPlan:
    """A fleet's coordinator: long-running (it takes findings from NATS and keeps its own
    heartbeat), so no path unit and no timer; enabled and started by apply."""
    config = target.config
    unit = coordinator_unit(config.name)
    values = {
        "unit": unit,
        "credentials": sorted(set(_channel_credentials(config) + _fleet_credentials(config))),
        "sandbox": sandbox.coordinator_policy(config, target.system, runtime),
    }
    return service(unit), "fleet-coordinator.service.j2", values, True


def _forward_units(target: Target, runtime: Sequence[str]) -> Iterator[UnitPlan]:
    """A fleet host's forwarder: started by its inbox (as the coordinator is without a fleet)
    and by its heartbeat, which reports the host's runs."""
    config, system = target.local, target.system
    unit = forward_unit(config.name)
    # A warm forwarder is one activation: its first run, lingering, one last run.
    warm = COORDINATOR_LINGER_MAX + FORWARD_TIMEOUT if config.coordinator.linger else 0
    values = {
        "unit": unit,
        "timeout": FORWARD_TIMEOUT + warm,
        "credentials": _fleet_credentials(config),
        "sandbox": sandbox.forward_policy(config, system, runtime),
    }
    yield service(unit), "forward.service.j2", values, False
    yield from _inbox_and_heartbeat(config, system, unit, FORWARD_TRIGGERS)


def _reply_units(config: Config, system: bool, runtime: Sequence[str]) -> Iterator[UnitPlan]:
    """Each reply source: long-running, enabled and started by apply, restarted when it
    fails. Its unit names its spec's digest, so that apply restarts it when only the spec
    changed (a chat added): a service that runs for weeks reads its spec once."""
    for source, settings in config.replies.items():
        unit = reply_unit(config.name, source)
        spec = jsontext.dumps(specs.reply_spec(config, source, system)) + "\n"
        telegram = settings.telegram
        credentials = [(telegram.token, config.secrets[telegram.token])] if telegram else []
        values = {
            "unit": unit,
            "reply_source": source,
            "kind": settings.kind,
            "spec_sha256": hashlib.sha256(spec.encode("utf-8")).hexdigest()[:16],
            "credentials": credentials,
            "sandbox": sandbox.reply_policy(config, settings, system, runtime),
        }
        yield service(unit), "reply.service.j2", values, True


def _watch_units(config: Config, internal: sandbox.Policy) -> Iterator[UnitPlan]:
    for watch_name in _timed_watches(config):
        watch = config.watches[watch_name]
        unit = watch_unit(config.name, watch_name)
        what = watch.description or f"watch {watch_name}"
        yield (
            service(unit),
            "watch.service.j2",
            {"unit": unit, "description": f"{config.name}: {what}", "sandbox": internal},
            False,
        )
        assert watch.timer is not None
        expression, when = watch.timer
        timing = parse_schedule(expression)
        watch_timer = {
            "unit": unit,
            "description": f"{config.name}: {watch_name} {when} ({expression})",
            "on_calendar": list(timing.on_calendar),
            "on_startup": timing.kind == "reboot",
            "timezone": watch.timezone or config.timezone,
            "persistent": True,
            "accuracy": 1,
            "randomized_delay": 0,
        }
        yield timer(unit), "calendar.timer.j2", watch_timer, True


def _manifest(
    target: Target, source: Source, tree: Tree, units: list[Unit], python: str
) -> dict[str, Any]:
    config = target.local
    manifest = {
        "manifest": 1,
        "vigil": __version__,
        "name": config.name,
        "scope": "system" if target.system else "user",
        "python": python,
        "config": {
            "path": source.label,
            "file": source.path or source.label,  # the file alone (path@revision for --git)
            "sha256": hashlib.sha256(source.text).hexdigest(),
            "git": source.git,
        },
        "files": {
            path: {"sha256": generated.sha256, "mode": f"{generated.mode:04o}"}
            for path, generated in sorted(tree.items())
        },
        "units": {unit.name: {"start": unit.start} for unit in sorted(units, key=lambda u: u.name)},
        "inventory": specs.inventory(config),
    }
    if target.host is not None:  # which of the fleet's hosts this tree is for
        manifest["host"] = target.host
    return manifest

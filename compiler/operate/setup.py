"""One config as the inspecting commands see it (status, logs, history, watches, inbox, outbox,
state, cost, and run, enable, disable, ack): read from its installed generation's manifest and
specs, never from its YAML, so that these commands start without the model (stdlib only;
tests/test_cli_imports.py checks it).

A config file names its installation through the manifest's record of the file it was applied
from: the same content (sha256), wherever the file lives now, or else the same file, changed
since. A file that is not installed is validated and its specs are built in memory
(`ConfigView.of_config`), the same documents an apply would install.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import UsageError, VigilError, did_you_mean
from compiler.install.generations import Installation, installed_names
from compiler.layout import Scope
from runner.contract import coordinator_unit, path_unit, service, timer
from runner.findings import VIGIL_SOURCE

if TYPE_CHECKING:
    from compiler.language.model import Config
    from runner.spectypes import (
        BudgetJSON,
        CalendarJSON,
        MaintenanceJSON,
        NagRuleJSON,
        QuietHoursJSON,
        WatchJSON,
    )

MANIFEST = "manifest.json"
COORDINATOR_SPEC = "specs/coordinator.json"
FORWARD_SPEC = "specs/forward.json"
"""A fleet host's forwarder: what a host that runs no coordinator is read from."""


def job_spec_path(job: str) -> str:
    return f"specs/{job}.json"


def watch_spec_path(watch: str) -> str:
    """Only a watch with a timer of its own has a spec (and units)."""
    return f"specs/watch-{watch}.json"


@dataclass(frozen=True)
class JobInfo:
    name: str
    schedule: tuple[str, ...]
    timezone: str
    """The job's own, else the config's."""
    expected_tokens: tuple[int, int] | None
    """(input, output) per model call, from `expected_tokens`."""
    model: str | None
    """None: the job has no prompt."""
    price: tuple[float, float] | None
    """USD per million (input, output) tokens; None: not known."""
    preflight: bool
    calendar: CalendarJSON | None = None
    """Its timer's OnCalendar= lines and their zone (None: a job that runs at boot only)."""
    budgets: tuple[BudgetJSON, ...] = ()
    """The monthly budgets its model calls count against: its own and the config's."""


@dataclass(frozen=True)
class ConfigView:
    name: str
    system: bool
    timezone: str
    state_dir: str
    """As written, `~` kept (the `state` property expands it for the user running vigil)."""
    jobs: dict[str, JobInfo]
    """In the config's order, as are the watches."""
    watches: dict[str, WatchJSON]
    timed_watches: frozenset[str]
    """The watches with a timer (and units) of their own."""
    nag: dict[str, NagRuleJSON]
    heartbeat: int
    """The coordinator's, in seconds."""
    coordinator_units: tuple[str, ...]
    """The coordinator's units on this machine, its service first: service, path unit and
    heartbeat timer; a fleet coordinator's service alone (long-running); none on a fleet host
    that does not run the coordinator."""
    sources: tuple[str, ...] = ()
    """Where findings come from: the jobs, the external sources and vigil itself."""
    replies: dict[str, str] = field(default_factory=dict)
    """The reply sources (`replies:`), name -> kind, each a long-running service."""
    fleet: bool = False
    """Several machines share the coordinator (`fleet:`): its state is in NATS, not here."""
    quiet_hours: QuietHoursJSON | None = None
    maintenance: dict[str, MaintenanceJSON] = field(default_factory=dict)
    deadlines: dict[str, CalendarJSON] = field(default_factory=dict)
    """The deadline watches' calendars (`deadline.at`), by watch."""

    def check_local(self, what: str) -> None:
        """UsageError for what works only where the coordinator's state is on this machine."""
        if self.fleet:
            raise UsageError(
                f"{what} is not supported on a fleet yet: the coordinator's state is in NATS, "
                "not in this machine's state directory (`vigil status --fleet` shows the fleet)"
            )

    @property
    def state(self) -> Path:
        return Path(os.path.expanduser(self.state_dir))

    @property
    def targets(self) -> list[str]:
        """What `status JOB`, `logs JOB`, `run JOB`... may name."""
        return [*self.jobs, *self.watches, *(["coordinator"] if self.coordinator_units else [])]

    def check_target(self, name: str | None) -> None:
        if name is not None and name not in self.targets:
            raise UsageError(did_you_mean(name, self.targets, "job or watch", "jobs and watches"))

    @classmethod
    def of_config(cls, config: Config, system: bool = False) -> ConfigView:
        """The setup an apply of `config` would install, from the specs built in memory. A
        fleet config is seen whole: every job, and the coordinator as its first coordinator
        host runs it."""
        from compiler.generate import specs
        from compiler.generate.fleet import coordinator_hosts

        fleet = None
        if config.fleet is not None:
            fleet = specs.fleet_json(config, coordinator_hosts(config)[0], "")
        documents: dict[str, Any] = {
            MANIFEST: {"inventory": specs.inventory(config)},
            COORDINATOR_SPEC: specs.coordinator_spec(config, system, fleet),
        }
        for name, job in config.jobs.items():
            documents[job_spec_path(name)] = specs.job_spec(config, name, job, system)
        for name, watch in config.watches.items():
            if watch.timer is not None:
                documents[watch_spec_path(name)] = specs.watch_spec(config, name, system)
        return read_setup(documents.__getitem__, documents)

    @classmethod
    def of_tree(cls, documents: dict[str, bytes]) -> ConfigView:
        """The setup of a rendered tree (relative path -> content)."""
        return read_setup(lambda relative: json.loads(documents[relative]), documents)


def read_setup(load: Callable[[str], Any], present: Container[str]) -> ConfigView:
    """A setup from a generation's documents: `load` parses one (a path relative to the tree),
    `present` says which exist."""
    runs_coordinator = COORDINATOR_SPEC in present
    coordinator = load(COORDINATOR_SPEC if runs_coordinator else FORWARD_SPEC)
    inventory = load(MANIFEST).get("inventory")
    if not isinstance(inventory, dict):  # installed by a vigil from before inventories
        raise KeyError("inventory")
    timers = coordinator.get("timers") or {}
    jobs = {}
    for entry in inventory["jobs"]:
        spec = load(job_spec_path(entry["name"]))
        llm = spec.get("llm")
        price = (llm or {}).get("price_per_mtok")
        tokens = entry.get("expected_tokens")
        jobs[entry["name"]] = JobInfo(
            name=entry["name"],
            schedule=tuple(entry["schedule"]),
            timezone=entry["timezone"],
            expected_tokens=(tokens["input"], tokens["output"]) if tokens else None,
            model=llm["model"] if llm else None,
            price=(price["input"], price["output"]) if price else None,
            preflight=spec.get("preflight") is not None,
            calendar=(timers.get(entry["name"]) or {}).get("calendar"),
            budgets=tuple(spec.get("budgets") or ()),
        )
    watches = {name: coordinator["watches"][name] for name in inventory["watches"]}
    timed = frozenset(name for name in watches if watch_spec_path(name) in present)
    deadlines = {
        name: load(watch_spec_path(name))["calendar"]
        for name in sorted(timed)
        if watches[name].get("deadline")
    }
    return ConfigView(
        name=coordinator["config"],
        system=coordinator["scope"] == "system",
        timezone=coordinator["timezone"],
        state_dir=coordinator["state_dir"],
        jobs=jobs,
        watches=watches,
        timed_watches=timed,
        nag=coordinator.get("nag", {}),
        heartbeat=coordinator["coordinator"]["heartbeat"]
        if runs_coordinator
        else coordinator["heartbeat"],
        coordinator_units=_coordinator_units(coordinator["config"], coordinator)
        if runs_coordinator
        else (),
        sources=_sources(jobs, coordinator if runs_coordinator else None),
        replies={n: r["kind"] for n, r in (coordinator.get("replies") or {}).items()},
        fleet=bool(coordinator.get("fleet")),
        quiet_hours=(coordinator.get("coordinator") or {}).get("quiet_hours"),
        maintenance=coordinator.get("maintenance") or {},
        deadlines=deadlines,
    )


def _sources(jobs: dict[str, JobInfo], coordinator: dict[str, Any] | None) -> tuple[str, ...]:
    policies = coordinator["coordinator"]["sources"] if coordinator else {}
    external = sorted(name for name, policy in policies.items() if policy.get("external"))
    return (*jobs, *external, VIGIL_SOURCE)  # the spec's JSON sorts its keys: sorted here too


def _coordinator_units(name: str, spec: dict[str, Any]) -> tuple[str, ...]:
    stem = coordinator_unit(name)
    if "fleet" in spec:  # long-running: no path unit, its own heartbeat
        return (service(stem),)
    return (service(stem), path_unit(stem), timer(stem))


# --- from a config file to its installation ----------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """The installation a config file was applied to, and its current generation."""

    installation: Installation
    generation: int
    setup: ConfigView
    changed: bool
    """The file's content is not what that generation was applied from."""


def find_installed(path: Path, system: bool, scope: Scope | None = None) -> Installed | None:
    """The installation (in the scope; `scope` for a `--root` tree) applied from `path`'s
    content, or else from `path` itself; None when neither, or when it was installed by a vigil
    that wrote no inventory. A config that cannot be read is a bad argument (exit 2)."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the config: {error.strerror or error}") from None
    given = os.path.abspath(path)
    scope = scope or Scope(system=system)
    same_file = None
    for name in installed_names(scope):
        installation = Installation(scope, name)
        number = installation.current()
        if number is None:
            continue
        try:
            source = installation.manifest(number).get("config") or {}
        except VigilError:
            continue
        if source.get("sha256") == digest:
            return _read(installation, number, changed=False)
        if _same_file(source.get("file"), given):
            same_file = (installation, number)
    return _read(*same_file, changed=True) if same_file else None


def _same_file(recorded: object, given: str) -> bool:
    if not isinstance(recorded, str) or not os.path.isabs(recorded):
        return False
    return recorded == given or os.path.realpath(recorded) == os.path.realpath(given)


def read_installed(installation: Installation) -> Installed | None:
    """An installation's current generation, found by its name; None: not installed."""
    number = installation.current()
    return None if number is None else _read(installation, number, changed=False)


def _read(installation: Installation, number: int, *, changed: bool) -> Installed | None:
    directory = installation.generation_dir(number)
    files = installation.manifest(number).get("files") or {}

    def load(relative: str) -> Any:
        return json.loads((directory / relative).read_text(encoding="utf-8"))

    try:
        setup = read_setup(load, files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # an older or damaged generation: the file itself is read instead
    return Installed(installation, number, setup, changed)

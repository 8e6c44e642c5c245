"""Several machines (`fleet:`): which host a fleet config is compiled for, and what of the
config that host runs. Pure but for the machine's own name, read once by `choose_host`."""

from __future__ import annotations

import socket

from compiler.errors import UsageError
from compiler.language.model import Config, Job


def choose_host(config: Config, host: str | None) -> str | None:
    """The host to compile `config` for: `--host`, else this machine when it is one of the
    fleet's hosts (its name, or the part before the first dot); None for a config without
    `fleet:`. Raises UsageError (exit 2) when there is no such host."""
    hosts = config.hosts or []
    if config.fleet is None:
        if host is not None:
            raise UsageError(
                f"vigil: --host {host}: {config.name} has no `fleet:` (it runs on one machine)"
            )
        return None
    listed = ", ".join(hosts)
    if host is not None:
        if host not in hosts:
            raise UsageError(f"vigil: --host {host} is not one of the fleet's hosts: {listed}")
        return host
    machine = socket.gethostname()
    for candidate in (machine, machine.split(".", 1)[0]):
        if candidate in hosts:
            return candidate
    raise UsageError(
        f"vigil: this machine ({machine}) is not one of the fleet's hosts: {listed}; pass --host"
    )


def runs_on(job: Job, host: str) -> bool:
    return job.hosts == "all" or job.host == host


def coordinator_hosts(config: Config) -> list[str]:
    """The hosts that may run the coordinator, in order of preference."""
    return list(config.coordinator.hosts or config.hosts or [])


def host_view(config: Config, host: str) -> Config:
    """`config` as `host` runs it: only its jobs, and the watches with timers of their own only
    on a coordinator host (the coordinator evaluates them)."""
    jobs = {name: job for name, job in config.jobs.items() if runs_on(job, host)}
    watches = config.watches if host in coordinator_hosts(config) else {}
    return config.model_copy(update={"jobs": jobs, "watches": watches})

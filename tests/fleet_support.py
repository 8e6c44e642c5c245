"""Fleet tests without systemd: "hosts" as state directories of their own, the runner's
forwarder and fleet coordinator as real processes (`python -m runner ...`) against the real
three-node cluster of tests/nats_cluster.py, and the specs the compiler makes for each host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.coordinator_support import drop
from tests.runner_support import ROOT, real_spec

LEASE = 3
HEARTBEAT = 900


def fleet_json(servers: list[str], host: str, hosts: list[str], coordinators: list[str],
               credential: str | None = None, lease: int = LEASE) -> dict[str, Any]:  # fmt: skip
    return {
        "servers": servers,
        "credential": credential,
        "host": host,
        "hosts": hosts,
        "coordinator_hosts": coordinators,
        "lease": lease,
        "config_hash": "0" * 64,
    }


class Host:
    """One machine: its state directory, its specs, its processes."""

    def __init__(self, root: Path, name: str, fleet: dict[str, Any], sink: Path) -> None:
        self.name = name
        self.root = root / name
        self.state = self.root / "state"
        self.state.mkdir(parents=True)
        self.fleet = fleet
        self.sink = sink
        self.timers: dict[str, Any] = {}
        """The forwarder's `timers` (its heartbeat checks they ran)."""
        self.environment: dict[str, str] = {}
        """Added to the environment of the host's processes (CREDENTIALS_DIRECTORY)."""
        self.rewrite_specs()
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.log = self.root / "coordinator.log"

    def rewrite_specs(self, heartbeat: int = HEARTBEAT) -> None:
        """(Re)write the host's specs from its `fleet` (a test may change it)."""
        coordinator = real_spec("minimal/specs/coordinator.json")
        coordinator.update(state_dir=str(self.state), fleet=self.fleet, timers={})
        coordinator["channels"]["sink"]["file"] = str(self.sink)
        coordinator["coordinator"]["heartbeat"] = heartbeat
        self.coordinator_spec = self._write("coordinator.json", coordinator)
        forward = {
            "spec": 1,
            "kind": "forward",
            "config": coordinator["config"],
            "scope": "user",
            "state_dir": str(self.state),
            "timezone": "UTC",
            "unit": "demo-forward.service",
            "fleet": self.fleet,
            "heartbeat": heartbeat,
            "jobs": {},
            "timers": self.timers,
        }
        self.forward_spec = self._write("forward.json", forward)

    def _write(self, name: str, spec: dict[str, Any]) -> Path:
        path = self.root / name
        path.write_text(json.dumps(spec))
        return path

    def drop(self, finding: dict[str, Any]) -> Path:
        return drop(self.state, finding)

    def forward(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", "forward", str(self.forward_spec)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            env=_env({**self.environment, **(env or {})}),
        )  # fmt: skip

    def forward_in_background(self) -> subprocess.Popen[bytes]:
        with open(self.root / "forward.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "runner", "forward", str(self.forward_spec)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env(self.environment),
            )  # fmt: skip

    def start_coordinator(self, env: dict[str, str] | None = None) -> None:
        with open(self.log, "ab") as log:
            self.coordinator = subprocess.Popen(
                [sys.executable, "-m", "runner", "coordinator", str(self.coordinator_spec)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env=_env({**self.environment, **(env or {})}),
            )  # fmt: skip

    def kill_coordinator(self) -> None:
        if self.coordinator is not None and self.coordinator.poll() is None:
            self.coordinator.send_signal(signal.SIGKILL)
            self.coordinator.wait(10)
        self.coordinator = None

    def stop_coordinator(self) -> None:
        if self.coordinator is not None and self.coordinator.poll() is None:
            self.coordinator.terminate()
            self.coordinator.wait(30)
        self.coordinator = None

    def active(self) -> bool:
        """Whether this host's coordinator has been active at all."""
        return self.log.exists() and f"active on {self.name}" in self.log.read_text()


def set_up(connection: Any, config: str = "demo") -> None:
    """What the coordinator makes when it starts (stream, buckets, consumer), waiting for a
    cluster that has just started to answer the JetStream API."""
    from runner.fleet.client import NatsError
    from runner.fleet.jetstream import JetStream
    from runner.fleet.leader import setup

    deadline = time.monotonic() + 60
    while True:
        try:
            setup(JetStream(connection), config, 3)
            return
        except NatsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def patiently(operation: Callable[[], Any], timeout: float = 60) -> Any:
    """`operation()`, again while a stream just made has no leader yet (no responders, no
    answer): what the runner's own callers wait for too."""
    from runner.fleet.client import NoResponders, Timeout

    deadline = time.monotonic() + timeout
    while True:
        try:
            return operation()
        except (NoResponders, Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def lease_holder(
    servers: list[str], config: str = "demo", as_host: tuple[str, str] | None = None
) -> tuple[str, int] | None:
    """(host, pid) of the coordinator holding the lease now, as the lease bucket says; read
    as the host `as_host` (name, password) where the cluster wants credentials."""
    from runner.fleet.client import Connection, Credentials, NatsError
    from runner.fleet.jetstream import JetStream
    from runner.fleet.names import LEASE_KEY, inbox_prefix, lease_bucket

    credentials, inbox = None, "_INBOX"
    if as_host is not None:
        credentials = Credentials(user=as_host[0], password=as_host[1])
        inbox = inbox_prefix(config, as_host[0])
    try:
        with Connection(servers, credentials, inbox=inbox) as connection:
            entry = JetStream(connection).get(lease_bucket(config), LEASE_KEY)
    except NatsError:
        return None
    if entry is None or entry.value is None:
        return None
    value = json.loads(entry.value)
    return str(value["host"]), int(value["pid"])


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "TRIGGER_UNIT")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **(extra or {})}


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()

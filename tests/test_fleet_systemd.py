"""A fleet of three "machines", each a private systemd user manager with its own home, each
applying the same config with its own `--host`, on a real three-node NATS cluster that
enforces per-host permissions and passwords (given to units with LoadCredential=): a job's
finding on the laptop goes through the laptop's forwarder path unit and is delivered by the
coordinator service on the vps; the vps dies (its coordinator killed, never restarted) and the
homeserver's standby delivers the next finding; the passwords are nowhere in the units, the
specs, the journals or the deliveries."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fleet_support import lease_holder, lines
from tests.nats_cluster import NatsCluster, running_cluster
from tests.systemd_manager import (
    ManagerUnavailable,
    UserManager,
    private_user_manager,
    skip_or_fail,
)

pytestmark = pytest.mark.systemd

HOSTS = ["laptop", "vps", "homeserver"]
COORDINATORS = ["vps", "homeserver"]
PASSWORDS = {host: f"{host}-pw-{time.time_ns() % 10**8}" for host in HOSTS}
NAME = "fl"
CONFIG = """\
name: fl
secrets:
  nats: ~/.config/vigil/secrets/nats
fleet:
  servers: {servers}
  credentials: nats
  lease: 3s
hosts: [laptop, vps, homeserver]
jobs:
  probe:
    description: A detector on the laptop, started by hand
    host: laptop
    schedule: "0 3 1 1 *"
    run: "echo probe on laptop"
    output: message
channels:
  sink: {{file: {sink}}}
coordinator:
  deliver_to: [sink]
  hosts: [vps, homeserver]
"""


class Fleet:
    def __init__(self, cluster: NatsCluster, managers: dict[str, UserManager], root: Path):
        self.cluster = cluster
        self.managers = managers
        self.sink = root / "sink.jsonl"
        self.config = root / "fl.yaml"

    def vigil(self, host: str, *args: str | Path) -> str:
        manager = self.managers[host]
        result = manager.run(
            "env", f"PYTHONPATH={ROOT}", sys.executable, "-c",
            "from compiler.cli.commands import main; main()", *map(str, args),
        )  # fmt: skip
        return result.stdout + result.stderr

    def delivered(self) -> list[str]:
        return [line["body"] for line in lines(self.sink)]


def authorization() -> str:
    from runner.fleet.names import permissions

    users = [
        {"user": h, "password": PASSWORDS[h],
         "permissions": permissions(NAME, h, coordinator=h in COORDINATORS)}
        for h in HOSTS
    ]  # fmt: skip
    return "\nauthorization: " + json.dumps({"users": users}) + "\n"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(running_cluster(root / "nats", authorization()))
        managers = {}
        for host in HOSTS:
            try:
                managers[host] = stack.enter_context(private_user_manager())
            except ManagerUnavailable as error:
                skip_or_fail(f"no private systemd user manager: {error}")
        fleet = Fleet(cluster, managers, root)
        fleet.config.write_text(CONFIG.format(servers=json.dumps(cluster.urls), sink=fleet.sink))
        for host, manager in managers.items():
            secret = Path(manager.env["HOME"]) / ".config/vigil/secrets/nats"
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text(f"{host}:{PASSWORDS[host]}\n")
            secret.chmod(0o600)
            fleet.vigil(host, "apply", fleet.config, "--host", host, "--yes")
        yield fleet


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_each_host_got_its_part(fleet: Fleet) -> None:
    laptop, vps = fleet.managers["laptop"], fleet.managers["vps"]
    assert laptop.show("fl-forward.path", "ActiveState")["ActiveState"] == "active"
    assert laptop.show("fl-probe.timer", "ActiveState")["ActiveState"] == "active"
    assert laptop.show("fl-coordinator.service", "LoadState")["LoadState"] == "not-found"
    assert vps.show("fl-probe.timer", "LoadState")["LoadState"] == "not-found"
    for host in COORDINATORS:  # a busy machine may see one step down and come back
        manager = fleet.managers[host]
        wait_for(
            lambda m=manager: m.show("fl-coordinator.service", "SubState")["SubState"] == "running",
            30,
            f"{host}'s coordinator running",
        )


def test_a_finding_on_the_laptop_is_delivered_by_the_coordinator_on_another_machine(
    fleet: Fleet,
) -> None:
    wait_for(lambda: lease_holder_as("vps", fleet), 60, "a coordinator to take the lease")
    fleet.managers["laptop"].systemctl("start", "fl-probe.service")
    wait_for(lambda: any("probe on laptop" in b for b in fleet.delivered()), 30, "delivery")
    holder = lease_holder_as("vps", fleet)
    assert holder is not None and holder[0] in COORDINATORS
    laptop = fleet.managers["laptop"]
    laptop.sync_journal()
    said = laptop.journalctl("--output=cat", "-t", "fl-forward").stdout
    assert "finding(s) to the fleet" in said


def test_the_standby_delivers_when_the_active_machine_dies(fleet: Fleet) -> None:
    holder = wait_for(lambda: lease_holder_as("vps", fleet), 60, "an active coordinator")
    active, standby = holder[0], next(h for h in COORDINATORS if h != holder[0])
    dead = fleet.managers[active]
    dead.systemctl("kill", "--signal=SIGKILL", "fl-coordinator.service")
    dead.systemctl("stop", "fl-coordinator.service")  # the machine is gone: no restart
    before = len(fleet.delivered())
    killed = time.monotonic()
    wait_for(lambda: (lease_holder_as(standby, fleet) or ("",))[0] == standby, 10,
             f"{standby} to take over")  # fmt: skip
    took = time.monotonic() - killed
    fleet.managers["laptop"].systemctl("start", "fl-probe.service")
    wait_for(lambda: len(fleet.delivered()) > before, 30, "delivery by the standby")
    assert took <= 3.5  # the lease is 3s
    dead.systemctl("start", "fl-coordinator.service")  # back, as the standby


def test_no_password_anywhere(fleet: Fleet) -> None:
    for host, manager in fleet.managers.items():
        manager.sync_journal()
        journal = manager.journalctl("--output=cat").stdout
        home = Path(manager.env["HOME"])
        written = [
            p.read_text(errors="replace")
            for p in (home / ".config/systemd/user").rglob("*") if p.is_file()
        ] + [
            p.read_text(errors="replace")
            for p in (home / ".local").rglob("*") if p.is_file() and p.stat().st_size < 1 << 20
        ]  # fmt: skip
        for password in PASSWORDS.values():
            assert password not in journal, host
            assert not any(password in text for text in written), host
    assert not any(p in fleet.sink.read_text() for p in PASSWORDS.values())


def lease_holder_as(host: str, fleet: Fleet) -> tuple[str, int] | None:
    """The lease holder, read with `host`'s credentials (every host may read it)."""
    return lease_holder(fleet.cluster.urls, NAME, (host, PASSWORDS[host]))


def test_status_fleet_shows_every_host_from_a_job_host(fleet: Fleet) -> None:
    """Each forwarder started by hand reports; the laptop (a job host, whose NATS user may
    only read the reports and the lease) shows them all."""
    for manager in fleet.managers.values():
        manager.systemctl("stop", "fl-forward.service")  # a warm one ends: a start by hand
        manager.systemctl("start", "fl-forward.service")
    shown = fleet.vigil("laptop", "status", "--fleet", fleet.config)
    for host in HOSTS:
        assert f"\n{host}: generation 1, config " in shown, shown
    assert "never reported" not in shown
    assert "probe" in shown and "ok" in shown
    holder = lease_holder_as("laptop", fleet)
    assert holder is not None
    assert f"coordinator active on {holder[0]}" in shown
    assert not any(password in shown for password in PASSWORDS.values())


def test_a_burst_on_the_laptop_is_delivered_once_and_the_path_unit_stays(fleet: Fleet) -> None:
    """2,000 findings renamed into the laptop's inbox at once: its forwarder's path unit keeps
    watching (no start limit), and every finding reaches the channel exactly once."""
    laptop = fleet.managers["laptop"]
    inbox = Path(laptop.env["HOME"]) / ".local/state/vigil/fl/inbox"
    scratch = inbox.parent / "writer"
    scratch.mkdir(exist_ok=True)
    count = 2000
    for n in range(count):
        (scratch / f"b{n:05d}.json").write_text(
            json.dumps(
                {
                    "source": "burst",
                    "timestamp": "2026-12-07T10:00:00Z",
                    "message": f"burst {n:05d} end",
                }
            )
        )
    for n in range(count):
        (scratch / f"b{n:05d}.json").rename(inbox / f"b{n:05d}.json")

    def seen() -> list[str]:
        return re.findall(r"burst (\d{5}) end", "".join(fleet.delivered()))

    wait_for(lambda: len(seen()) >= count, 300, "the burst delivered")
    assert sorted(seen()) == [f"{n:05d}" for n in range(count)]
    shown = laptop.show("fl-forward.path", "ActiveState", "Result")
    assert shown == {"ActiveState": "active", "Result": "success"}

"""Several machines under real systemd: a finding on one host delivered by the coordinator on
another, through a real three-node NATS JetStream cluster, beside the local file-inbox path on
the same machine, measured interleaved in the same run.

Three private user managers are the machines (tests/systemd_manager.py): `laptop` runs a job
host's part of a fleet config (its forwarder's path unit on the inbox), `vps` and `homeserver`
the coordinator (one active, one standby). The laptop also has a plain single-machine config,
the local path: warm (its coordinator lingers after a finding) and cold (the first finding after
an idle period). Each sample renames a finding into an inbox and waits for its line in the
file channel (inotify on the channel's directory).

Also measured: failover (the active coordinator SIGKILLed and never restarted, as a machine that
dies: seconds until the standby holds the lease, and until it has delivered a finding sent
after the kill), and throughput (a burst of findings renamed into the laptop's inbox at once:
findings per second until the last is delivered).

Target: fleet median at most 1.5x the local path's. Root only.

    python -m tests.bench --only fleet [--quick]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.bench import latency
from tests.bench.latency import ColdRoute, LineWatch, Route, WarmRoute, interleave, summary
from tests.fleet_support import lease_holder
from tests.systemd_manager import UserManager, private_user_manager

NAME = "flb"
LEASE_S = 3
TARGET = 1.5
"""Fleet median / the local path's median."""
HOSTS = ("laptop", "vps", "homeserver")
COORDINATORS = ("vps", "homeserver")
CONFIG = """\
name: {name}
fleet:
  servers: {servers}
  lease: {lease}s
hosts: [laptop, vps, homeserver]
jobs:
  idle:
    host: laptop
    schedule: "0 3 1 1 *"
    run: "true"
channels:
  sink: {{file: {sink}}}
coordinator:
  deliver_to: [sink]
  hosts: [vps, homeserver]
  sources:
    bench: {{external: true}}
"""


def apply_fleet(managers: dict[str, UserManager], config: Path, python: str) -> None:
    from typer.testing import CliRunner

    from compiler.cli.commands import app

    for host, manager in managers.items():
        with latency.manager_environment(manager):
            argv = ["apply", str(config), "--host", host, "--yes", "--python", python]
            result = CliRunner().invoke(app, argv, catch_exceptions=False)
        if result.exit_code != 0:
            raise RuntimeError(f"vigil apply --host {host} failed:\n{result.stdout}{result.stderr}")


def holder(servers: list[str]) -> str | None:
    held = lease_holder(servers, NAME)
    return held[0] if held else None


def stream_leader(servers: list[str]) -> str | None:
    """The node leading the findings stream's replicas (None while they elect one)."""
    from runner.fleet.client import Connection, NatsError
    from runner.fleet.jetstream import JetStream
    from runner.fleet.names import findings_stream

    try:
        with Connection(servers) as connection:
            info = JetStream(connection).api(f"STREAM.INFO.{findings_stream(NAME)}")
    except NatsError:
        return None
    return (info.get("cluster") or {}).get("leader")


def journals(managers: dict[str, UserManager]) -> str:
    """The forwarders' and coordinators' journals, for a failure report."""
    said = []
    for host, manager in managers.items():
        manager.sync_journal()
        for unit in (f"{NAME}-forward", f"{NAME}-coordinator"):
            text = manager.journalctl("--output=cat", "-t", unit, check=False).stdout
            said.append(f"--- {host} {unit}\n{text[-1500:]}")
    return "\n".join(said)


def wait(condition: Any, timeout: float, what: str, every: float = 0.01) -> Any:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def failover(
    managers: dict[str, UserManager], servers: list[str], route: Route, trials: int
) -> dict[str, Any]:
    """SIGKILL the active coordinator, never restarted until the standby delivered."""
    unit = f"{NAME}-coordinator.service"
    taken, delivered = [], []
    for trial in range(trials):
        active = wait(lambda: holder(servers), 60, "a lease holder")
        standby = next(h for h in COORDINATORS if h != active)
        dead = managers[active]
        killed = time.perf_counter()
        dead.systemctl("kill", "--signal=SIGKILL", unit)
        dead.systemctl("stop", unit)
        wait(lambda s=standby: holder(servers) == s, 4 * LEASE_S, f"{standby} to take over")
        taken.append(time.perf_counter() - killed)
        marker = f"failover-{trial}-{os.urandom(3).hex()}"
        temp = route.scratch / f"{marker}.json"
        temp.write_text(json.dumps({"source": "bench", "timestamp": "2026-01-01T00:00:00Z",
                                    "message": marker}))  # fmt: skip
        os.rename(temp, route.inbox / temp.name)
        # The standby creates its consumer first (JetStream API calls retried every 5 s).
        route.watch.wait(lambda m=marker: route.sink.has(m), latency.WARM_UP_TIMEOUT_S)
        delivered.append(time.perf_counter() - killed)
        dead.systemctl("start", unit)  # back, as the standby
    return {"trials": trials, "lease_s": LEASE_S, "takeover": summary(taken),
            "delivered_after_kill": summary(delivered)}  # fmt: skip


def throughput(route: Route, count: int) -> dict[str, Any]:
    markers = [f"burst-{n:05d}-{os.urandom(2).hex()}" for n in range(count)]
    for marker in markers:
        (route.scratch / f"{marker}.json").write_text(
            json.dumps({"source": "bench", "timestamp": "2026-01-01T00:00:00Z", "message": marker})
        )
    started = time.perf_counter()
    for marker in markers:
        os.rename(route.scratch / f"{marker}.json", route.inbox / f"{marker}.json")

    def all_there() -> bool:
        route.sink.has("")
        seen = set()
        for line in route.sink.lines:
            seen.update(re.findall(r"burst-\d{5}-[0-9a-f]{4}", line))
        return len(seen) >= count

    ended = route.watch.wait(all_there, timeout=600)
    seconds = ended - started
    return {"findings": count, "seconds": seconds, "per_second": count / seconds}


@contextlib.contextmanager
def machines() -> Iterator[dict[str, UserManager]]:
    with contextlib.ExitStack() as stack:
        yield {host: stack.enter_context(private_user_manager()) for host in HOSTS}


def run_bench(count: int, gap: float, trials: int, burst: int, python: str) -> dict[str, Any]:
    from tests.nats_cluster import running_cluster

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    with running_cluster(work / "nats") as cluster, machines() as managers:
        laptop = managers["laptop"]
        sink = work / "deliveries" / "fleet.jsonl"
        sink.parent.mkdir()
        config = work / f"{NAME}.yaml"
        config.write_text(CONFIG.format(name=NAME, servers=json.dumps(cluster.urls),
                                        lease=LEASE_S, sink=sink))  # fmt: skip
        apply_fleet(managers, config, python)
        local_work = Path(tempfile.mkdtemp(prefix="bench-", dir=laptop.root))
        scratch = local_work / "writer"  # same filesystem as both inboxes on the laptop
        scratch.mkdir()
        with latency.manager_environment(laptop):
            local = latency.install_vigil(laptop, local_work, python)
        inbox = Path(laptop.env["HOME"]) / ".local/state/vigil" / NAME / "inbox"
        wait(inbox.is_dir, 30, "the laptop's inbox")
        wait(lambda: holder(cluster.urls), 90, "a coordinator to take the lease")
        wait(lambda: stream_leader(cluster.urls), 60, "the findings stream to have a leader")
        watch_fleet, watch_local = LineWatch(sink.parent), LineWatch(local["sink"].parent)
        forward = f"{NAME}-forward.service"
        coordinator = f"{latency.NAME}-coordinator.service"
        routes = {
            # A finding on the laptop: its forwarder, NATS, the active coordinator on another
            # machine, the channel; the forwarder warm (lingering after a finding) or cold.
            "fleet_warm": WarmRoute("fleet_warm", forward, inbox, sink, watch_fleet, scratch),
            "fleet_cold": ColdRoute("fleet_cold", forward, inbox, sink, watch_fleet, scratch),
            "warm": WarmRoute(
                "warm", coordinator, local["inbox"], local["sink"], watch_local, scratch
            ),
            "cold": ColdRoute(
                "cold", coordinator, local["inbox"], local["sink"], watch_local, scratch
            ),
        }
        order = list(routes.values())
        try:
            interleave(laptop, order, count, gap)
            fleet_route = routes["fleet_cold"]
            fleet_route.prepare(laptop)
            moved = failover(managers, cluster.urls, fleet_route, trials)
            burst_figures = throughput(fleet_route, burst)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{journals(managers)}") from None
        finally:
            watch_fleet.close()
            watch_local.close()
    figures = {label: summary(route.samples) for label, route in routes.items()}
    warm, cold = figures["warm"], figures["cold"]
    return {
        "findings": count,
        "gap_s": gap,
        "fleet_warm": figures["fleet_warm"],
        "fleet_cold": figures["fleet_cold"],
        "local_warm": warm,
        "local_cold": cold,
        "warm_ratio": figures["fleet_warm"]["median_s"] / warm["median_s"],
        "cold_ratio": figures["fleet_cold"]["median_s"] / cold["median_s"],
        "failover": moved,
        "throughput": burst_figures,
        "samples_s": {label: route.samples for label, route in routes.items()},
    }

"""The fleet's runner parts as real processes on a real three-node NATS cluster: a finding
forwarded from one host is delivered by the coordinator on another, once."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import sized
from tests.fleet_support import LEASE, Host, fleet_json, lease_holder, lines, wait_for
from tests.missed_support import FakeSystemd, missed
from tests.nats_cluster import NatsCluster, nats_cluster  # noqa: F401 (the fixture)
from tests.tcp_proxy import Proxy

HOSTS = ["laptop", "vps", "homeserver"]
COORDINATORS = ["vps", "homeserver"]


def make_hosts(cluster: NatsCluster, tmp_path: Path, lease: int = LEASE) -> dict[str, Host]:
    sink = tmp_path / "sink.jsonl"
    return {
        name: Host(
            tmp_path, name, fleet_json(cluster.urls, name, HOSTS, COORDINATORS, lease=lease), sink
        )
        for name in HOSTS
    }


def test_a_finding_on_one_host_is_delivered_by_the_coordinator_on_another(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    hosts = make_hosts(nats_cluster, tmp_path)
    vps, laptop = hosts["vps"], hosts["laptop"]
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 30), vps.log.read_text()
        laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "disk 91%"})
        result = laptop.forward()
        assert result.returncode == 0, result.stderr
        assert not list((laptop.state / "inbox").iterdir())
        assert not list((laptop.state / "outgoing").iterdir())
        sink = tmp_path / "sink.jsonl"
        assert wait_for(lambda: len(lines(sink)) >= 1, 30), vps.log.read_text()
        assert "disk 91%" in lines(sink)[0]["body"]
    finally:
        vps.stop_coordinator()
    assert len(lines(tmp_path / "sink.jsonl")) == 1


def _active_counts(hosts: list[Host]) -> dict[str, int]:
    return {
        h.name: h.log.read_text().count(f"active on {h.name}") if h.log.exists() else 0
        for h in hosts
    }


@pytest.mark.slow  # the quick variant in CI, 100 trials with VIGIL_LONG=1
def test_killed_active_coordinator_standby_takes_over_nothing_lost_nothing_twice(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """SIGKILL the active coordinator in the middle of its work, again and again: the standby
    takes over within the lease TTL, and every finding reaches the file channel exactly
    once."""
    trials = sized(15, 100)
    hosts = make_hosts(nats_cluster, tmp_path, lease=LEASE)
    laptop = hosts["laptop"]
    coordinators = [hosts[name] for name in COORDINATORS]
    for host in coordinators:
        host.start_coordinator()
    rng = random.Random(18)
    sent: list[str] = []
    takeovers: list[float] = []
    try:
        assert wait_for(lambda: sum(_active_counts(coordinators).values()) == 1, 90)
        for trial in range(trials):
            for n in range(rng.randint(1, 6)):
                token = f"t{trial}-f{n}"
                laptop.drop({"source": f"probe{n % 3}", "timestamp": "2026-12-07T10:00:00Z",
                             "message": f"finding {token} end"})  # fmt: skip
                sent.append(token)
            assert laptop.forward().returncode == 0
            time.sleep(rng.uniform(0, 0.15))  # into the pass, or between two
            before = _active_counts(coordinators)
            holder = lease_holder(nats_cluster.urls)
            assert holder is not None
            active = hosts[holder[0]]
            assert active.coordinator is not None and active.coordinator.pid == holder[1]
            standby = next(h for h in coordinators if h is not active)
            active.kill_coordinator()
            killed = time.monotonic()
            taken = before[standby.name] + 1
            assert wait_for(lambda s=standby, n=taken: _active_counts(coordinators)[s.name] >= n,
                            4 * LEASE), standby.log.read_text()  # fmt: skip
            takeovers.append(time.monotonic() - killed)
            active.start_coordinator()  # systemd's restart: it waits as the standby
        sink = tmp_path / "sink.jsonl"

        def all_there() -> bool:
            text = "".join(line["body"] for line in lines(sink))
            return all(f"finding {token} end" in text for token in sent)

        assert wait_for(all_there, 60), [t for t in sent if t not in sink.read_text()]
    finally:
        for host in coordinators:
            host.stop_coordinator()
    bodies = "".join(line["body"] for line in lines(tmp_path / "sink.jsonl"))
    twice = [token for token in sent if bodies.count(f"finding {token} end") != 1]
    assert twice == []
    takeovers.sort()
    record_property("failover_trials", trials)
    record_property("findings", len(sent))
    record_property("takeover_median_s", round(takeovers[len(takeovers) // 2], 2))
    record_property("takeover_max_s", round(takeovers[-1], 2))
    assert takeovers[-1] <= LEASE + 1.5, takeovers


def _tokens(sink: Path) -> list[str]:
    return [t for line in lines(sink) for t in re.findall(r"finding (\S+) end", line["body"])]


def test_delivery_goes_on_with_a_nats_node_dead(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    hosts = make_hosts(nats_cluster, tmp_path)
    vps, laptop = hosts["vps"], hosts["laptop"]
    sink = tmp_path / "sink.jsonl"
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z",
                     "message": "finding before end"})  # fmt: skip
        assert laptop.forward().returncode == 0
        assert wait_for(lambda: _tokens(sink) == ["before"], 30)
        nats_cluster.nodes[0].kill()  # the first server of every host's list: all were on it
        for n in range(5):
            laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z",
                         "message": f"finding after{n} end"})  # fmt: skip
        result = laptop.forward()
        assert result.returncode == 0, result.stderr
        assert not list((laptop.state / "outgoing").iterdir()), result.stderr
        expected = ["before"] + [f"after{n}" for n in range(5)]
        assert wait_for(lambda: sorted(_tokens(sink)) == sorted(expected), 60), vps.log.read_text()
    finally:
        vps.stop_coordinator()
    assert sorted(_tokens(sink)) == sorted(expected)


def test_a_host_cut_off_keeps_its_findings_and_sends_them_in_order_when_it_heals(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    proxy = Proxy(("127.0.0.1", nats_cluster.nodes[1].client))
    hosts = make_hosts(nats_cluster, tmp_path)
    vps, laptop = hosts["vps"], hosts["laptop"]
    laptop.fleet["servers"] = [proxy.url]
    laptop.rewrite_specs()
    sink = tmp_path / "sink.jsonl"
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        vps.stop_coordinator()  # findings stay in the stream, to be read back in order below
        proxy.cut()
        for n in range(20):
            laptop.drop({"source": f"probe{n % 4}", "timestamp": "2026-12-07T10:00:00Z",
                         "message": f"finding cut{n:02d} end"})  # fmt: skip
            time.sleep(0.002)  # the inbox's order is the files' times
            if n % 5 == 4:
                result = laptop.forward()
                assert result.returncode == 0, result.stderr  # unreachable is no failure
                assert "wait in outgoing/" in result.stderr
        assert not list((laptop.state / "inbox").iterdir())
        assert len(list((laptop.state / "outgoing").iterdir())) == 20
        proxy.heal()
        result = laptop.forward()
        assert result.returncode == 0, result.stderr
        assert not list((laptop.state / "outgoing").iterdir()), result.stderr
        assert stream_tokens(nats_cluster.urls) == [f"cut{n:02d}" for n in range(20)]
        vps.start_coordinator()
        assert wait_for(lambda: len(_tokens(sink)) == 20, 60), vps.log.read_text()
    finally:
        vps.stop_coordinator()
        proxy.close()
    assert sorted(_tokens(sink)) == [f"cut{n:02d}" for n in range(20)]


def stream_tokens(servers: list[str]) -> list[str]:
    """The findings in the stream, in stream order (read by sequence, no consumer)."""
    from runner.fleet.client import Connection
    from runner.fleet.jetstream import JetStream, JetStreamError
    from runner.fleet.names import findings_stream

    found = []
    with Connection(servers) as connection:
        stream = JetStream(connection)
        name = findings_stream("demo")
        state = stream.api(f"STREAM.INFO.{name}")["state"]
        for sequence in range(state["first_seq"], state["last_seq"] + 1):
            try:
                message = stream.api(f"STREAM.MSG.GET.{name}", {"seq": sequence})["message"]
            except JetStreamError:
                continue
            finding = json.loads(base64.b64decode(message["data"]))
            found += re.findall(r"finding (\S+) end", finding["message"])
    return found


def test_a_host_silent_for_two_heartbeats_raises_one_alert(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    hosts = make_hosts(nats_cluster, tmp_path)
    for host in hosts.values():
        host.rewrite_specs(heartbeat=2)
    vps = hosts["vps"]
    sink = tmp_path / "sink.jsonl"
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:  # laptop reports once, the others every second
            for host in hosts.values():
                if host.name != "laptop" or not host.root.joinpath("reported").exists():
                    assert host.forward().returncode == 0
                    host.root.joinpath("reported").touch()
            time.sleep(1)
        alerts = [line["body"] for line in lines(sink)]
    finally:
        vps.stop_coordinator()
    silent = [body for body in alerts if "has not reported since" in body]
    assert len(silent) == 1, alerts
    assert "laptop has not reported since" in silent[0]
    assert not any("vps" in body or "homeserver" in body for body in alerts), alerts


@pytest.mark.slow  # the quick variant in CI, 5 x 2,000 with VIGIL_LONG=1
def test_five_hosts_findings_at_once_are_each_delivered_once(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    each = sized(300, 2000)
    names = ["vps", "homeserver", "laptop", "pi", "nas"]
    sink = tmp_path / "sink.jsonl"
    hosts = [
        Host(tmp_path, name, fleet_json(nats_cluster.urls, name, names, names[:2]), sink)
        for name in names
    ]
    for host in hosts:
        for n in range(each):
            host.drop({"source": f"probe{n % 7}", "timestamp": "2026-12-07T10:00:00Z",
                       "message": f"finding {host.name}-{n} end"})  # fmt: skip
    hosts[0].start_coordinator()
    try:
        assert wait_for(hosts[0].active, 90), hosts[0].log.read_text()
        started = time.monotonic()
        forwarders = [host.forward_in_background() for host in hosts]
        for process in forwarders:
            assert process.wait(600) == 0
        total = each * len(hosts)
        assert wait_for(lambda: len(_tokens(sink)) >= total, 600), hosts[0].log.read_text()[-2000:]
        seconds = time.monotonic() - started
    finally:
        hosts[0].stop_coordinator()
    tokens = _tokens(sink)
    assert len(tokens) == total
    assert sorted(set(tokens)) == sorted(f"{h.name}-{n}" for h in hosts for n in range(each))
    record_property("findings", total)
    record_property("findings_per_second", round(total / seconds))


def test_a_hosts_heartbeat_alerts_the_runs_its_timers_missed(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The coordinator cannot ask another machine's systemd, so each host's forwarder
    heartbeat checks its own timers' firings; the alert reaches the fleet's channel."""
    hosts = make_hosts(nats_cluster, tmp_path)
    vps, laptop = hosts["vps"], hosts["laptop"]
    laptop.timers = {
        "probe": {
            "unit": "demo-probe.timer",
            "calendar": {"on_calendar": ["*-*-* *:00/15:00"], "timezone": "UTC"},
            "late": 60,
            "grace": 300,
            "catch_up": True,
        }
    }
    laptop.rewrite_specs()
    systemd = FakeSystemd(tmp_path, monkeypatch)
    systemd.enabled.add("demo-probe.timer")
    systemd.boot(datetime.now(UTC) - timedelta(hours=2))
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        result = laptop.forward({"INVOCATION_ID": "0" * 32})  # the heartbeat timer's run
        assert result.returncode == 0, result.stderr
        sink = tmp_path / "sink.jsonl"
        assert wait_for(lambda: "probe" in "".join(b["body"] for b in lines(sink)), 30), (
            result.stderr + vps.log.read_text()
        )
    finally:
        vps.stop_coordinator()
    said = "".join(line["body"] for line in lines(tmp_path / "sink.jsonl"))
    assert "did not run" in said or "missed" in said, said
    assert missed(laptop.state, "probe")  # recorded in the host's own runs.jsonl


def test_odd_inbox_names_do_not_stop_a_host(nats_cluster: NatsCluster, tmp_path: Path) -> None:  # noqa: F811
    """Names a writer may use (bytes that are no UTF-8, a newline, 250 characters) go out
    like any other, each once, and leave no header or id broken."""
    hosts = make_hosts(nats_cluster, tmp_path)
    vps, laptop = hosts["vps"], hosts["laptop"]
    inbox = laptop.state / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    odd = [b"\xff\xfe.json", b"line\nbreak.json", b"x" * 250 + b".json"]
    for n, raw in enumerate(odd):
        finding = {
            "source": "odd",
            "timestamp": "2026-12-07T10:00:00Z",
            "message": f"finding odd{n} end",
        }
        (laptop.root / "tmp.json").write_text(json.dumps(finding))
        os.rename(laptop.root / "tmp.json", os.path.join(os.fsencode(inbox), raw))
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        result = laptop.forward()
        assert result.returncode == 0, result.stderr
        assert "3 finding(s) to the fleet" in result.stderr, result.stderr
        sink = tmp_path / "sink.jsonl"
        assert wait_for(lambda: len(_tokens(sink)) == 3, 30), vps.log.read_text()
    finally:
        vps.stop_coordinator()
    assert sorted(_tokens(tmp_path / "sink.jsonl")) == ["odd0", "odd1", "odd2"]


def test_a_mirrored_ledger_keeps_its_newest_entries_within_the_limit(tmp_path: Path) -> None:
    """A month of deliveries outgrows a NATS message: the oldest are forgotten first."""
    from runner import fsatomic
    from runner.delivery.ledger import DeliveryLedger

    class Limited:
        limit = 20_000

        def wrote(self, _path: str, data: bytes) -> None:
            assert len(data) <= self.limit

        def settle(self) -> None:
            pass

    entries = {
        f"id-{n:05d}": {"at": f"2026-12-{1 + n // 1000:02d}T00:00:{n % 60:02d}Z",
                        "channel": "sink", "exit_status": 0}
        for n in range(3000)
    }  # fmt: skip
    ledger = DeliveryLedger(str(tmp_path), dict(entries))
    fsatomic.mirror_to(Limited())
    try:
        ledger.save()
    finally:
        fsatomic.mirror_to(None)
    kept = json.loads((tmp_path / "state" / "delivered.json").read_text())["delivered"]
    assert 0 < len(kept) < 3000
    assert "id-02999" in kept and "id-00000" not in kept
    newest = sorted(entries, key=lambda k: entries[k]["at"])[-len(kept) :]
    assert set(kept) == set(newest)


def test_the_mirror_keeps_claim_strikes_on_the_host(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    """What the coordinator writes reaches KV, but for its count of tries per claim: a pass
    cut by NATS must not leave a strike in KV that three such passes make a quarantine."""
    from runner import fsatomic
    from runner.fleet.client import Connection
    from runner.fleet.jetstream import JetStream
    from runner.fleet.mirror import Mirror
    from tests.fleet_support import set_up

    work = tmp_path / "work"
    with Connection(nats_cluster.urls) as connection:
        set_up(connection)
        stream = JetStream(connection)
        mirror = Mirror(stream, "vigil-demo-state", str(work), lambda: True)
        mirror.load()
        mirror.attach()
        try:
            fsatomic.write_state(str(work), "nag-x.json", {"version": 1})
            fsatomic.write_state(str(work), "claims.json", {"version": 1, "attempts": {"c": 1}})
            mirror.settle()
        finally:
            mirror.detach()
        assert sorted(stream.keys("vigil-demo-state")) == ["state/nag-x.json"]
        (work / "state" / "nag-x.json").unlink()
        assert Mirror(stream, "vigil-demo-state", str(work), lambda: True).load() == 1
    assert json.loads((work / "state" / "nag-x.json").read_text()) == {"version": 1}
    assert json.loads((work / "state" / "claims.json").read_text())["attempts"] == {"c": 1}

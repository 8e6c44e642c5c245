"""The fleet's runner parts as real processes on a real three-node NATS cluster: a finding
forwarded from one host is delivered by the coordinator on another, once."""

from __future__ import annotations

from pathlib import Path

from tests.fleet_support import Host, fleet_json, lines, wait_for
from tests.nats_cluster import NatsCluster, nats_cluster  # noqa: F401 (the fixture)

HOSTS = ["laptop", "vps", "homeserver"]
COORDINATORS = ["vps", "homeserver"]


def make_hosts(cluster: NatsCluster, tmp_path: Path) -> dict[str, Host]:
    sink = tmp_path / "sink.jsonl"
    return {
        name: Host(tmp_path, name, fleet_json(cluster.urls, name, HOSTS, COORDINATORS), sink)
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

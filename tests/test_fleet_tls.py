"""A fleet whose NATS servers speak TLS with certificates of a private CA (`fleet.tls_ca`):
hosts trusting that CA forward and deliver; a host trusting only the system's CAs refuses the
servers' certificate and keeps its findings."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet_support import Host, fleet_json, lines, wait_for
from tests.nats_cluster import NatsCluster, running_cluster

HOSTS = ["laptop", "vps"]


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: (ca, certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make test certificates")
    directory.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=vigil test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "san.cnf")  # fmt: skip
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[tuple[NatsCluster, Path]]:
    ca, certificate, key = make_certificates(tmp_path / "certs")
    extra = f'\ntls {{ cert_file: "{certificate}", key_file: "{key}" }}\n'
    with running_cluster(tmp_path / "nats", extra) as cluster:
        yield cluster, ca


def tls_urls(cluster: NatsCluster) -> list[str]:
    return [url.replace("nats://", "tls://") for url in cluster.urls]


def test_hosts_trusting_the_private_ca_forward_and_deliver(
    tls_cluster: tuple[NatsCluster, Path], tmp_path: Path
) -> None:
    cluster, ca = tls_cluster
    sink = tmp_path / "sink.jsonl"
    hosts = {}
    for name in HOSTS:
        fleet = fleet_json(tls_urls(cluster), name, HOSTS, ["vps"])
        fleet["tls_ca"] = str(ca)
        hosts[name] = Host(tmp_path, name, fleet, sink)
    vps, laptop = hosts["vps"], hosts["laptop"]
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "over tls"})
        result = laptop.forward()
        assert "forward: 1 finding(s) to the fleet" in result.stderr, result.stderr
        assert wait_for(lambda: len(lines(sink)) == 1, 30), vps.log.read_text()
    finally:
        vps.stop_coordinator()
    assert "over tls" in lines(sink)[0]["body"]


def test_a_host_without_the_ca_refuses_the_servers_and_keeps_its_findings(
    tls_cluster: tuple[NatsCluster, Path], tmp_path: Path
) -> None:
    cluster, _ = tls_cluster
    laptop = Host(tmp_path, "laptop", fleet_json(tls_urls(cluster), "laptop", HOSTS, ["vps"]),
                  tmp_path / "sink.jsonl")  # fmt: skip
    laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "kept"})
    result = laptop.forward()
    assert result.returncode == 0
    assert "certificate verify failed" in result.stderr, result.stderr
    assert len(list((laptop.state / "outgoing").iterdir())) == 1

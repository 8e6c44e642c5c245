"""NATS permissions per host (runner.fleet.names.permissions) on a real cluster that enforces
them: each host's forwarder publishes its own findings and report with its own credentials
(from $CREDENTIALS_DIRECTORY, as LoadCredential= gives them), the coordinator host delivers
them, and a host publishing as another, or reading others' findings or the coordinator's
state, is refused. Credentials never appear in what the runner prints."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.fleet import nkeys
from runner.fleet.client import Connection, Credentials, Refused
from runner.fleet.jetstream import JetStream
from runner.fleet.names import (
    CONSUMER,
    findings_stream,
    findings_subject,
    inbox_prefix,
    permissions,
    state_bucket,
)
from tests.fleet_support import Host, fleet_json, lines, patiently, set_up, wait_for
from tests.nats_cluster import NatsCluster, running_cluster

PASSWORDS = {"laptop": "laptop-secret-4f1c", "vps": "vps-secret-9a0e"}
HOSTS = ["laptop", "vps"]


def authorization() -> str:
    users = [
        {
            "user": host,
            "password": PASSWORDS[host],
            "permissions": permissions("demo", host, coordinator=host == "vps"),
        }
        for host in HOSTS
    ]
    return "\nauthorization: " + json.dumps({"users": users}) + "\n"


@pytest.fixture
def secure_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    with running_cluster(tmp_path / "nats", authorization()) as cluster:
        yield cluster


def connect_as(cluster: NatsCluster, host: str, password: str | None = None) -> Connection:
    credentials = Credentials(user=host, password=password or PASSWORDS[host])
    connection = Connection(cluster.urls, credentials, inbox=inbox_prefix("demo", host))
    connection.connect()
    return connection


def make_host(cluster: NatsCluster, tmp_path: Path, name: str) -> Host:
    fleet = fleet_json(cluster.urls, name, HOSTS, ["vps"], credential="nats")
    host = Host(tmp_path, name, fleet, tmp_path / "sink.jsonl")
    credentials = host.root / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "nats").write_text(f"{name}:{PASSWORDS[name]}\n")
    host.environment = {"CREDENTIALS_DIRECTORY": str(credentials)}
    return host


def test_each_host_sends_with_its_own_credentials_and_the_coordinator_delivers(
    secure_cluster: NatsCluster, tmp_path: Path
) -> None:
    laptop, vps = (
        make_host(secure_cluster, tmp_path, "laptop"),
        make_host(secure_cluster, tmp_path, "vps"),
    )
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "disk 97%"})
        result = laptop.forward()
        assert result.returncode == 0, result.stderr
        assert "forward: 1 finding(s) to the fleet" in result.stderr
        assert wait_for(lambda: len(lines(tmp_path / "sink.jsonl")) == 1, 30)
    finally:
        vps.stop_coordinator()
    assert "disk 97%" in lines(tmp_path / "sink.jsonl")[0]["body"]
    said = result.stderr + vps.log.read_text()
    assert not any(password in said for password in PASSWORDS.values())


def test_a_host_cannot_publish_as_another(secure_cluster: NatsCluster) -> None:
    with connect_as(secure_cluster, "laptop") as connection:
        stream = JetStream(connection)
        with pytest.raises(Refused, match="Permissions Violation"):
            stream.publish(findings_subject("demo", "vps"), b'{"source": "x"}')


def test_a_host_cannot_read_the_findings_or_the_coordinators_state(
    secure_cluster: NatsCluster,
) -> None:
    with connect_as(secure_cluster, "vps") as connection:  # the coordinator sets things up
        set_up(connection)
    with connect_as(secure_cluster, "laptop") as connection:
        stream = JetStream(connection)
        with pytest.raises(Refused, match="Permissions Violation"):
            stream.fetch(findings_stream("demo"), CONSUMER, 1, 0)
    with (
        connect_as(secure_cluster, "laptop") as connection,
        pytest.raises(Refused, match="Permissions Violation"),
    ):
        JetStream(connection).get(state_bucket("demo"), "state/delivered.json")
    with connect_as(secure_cluster, "laptop") as connection:
        connection.publish("_INBOX.vigil.demo.vps.1", b"")  # a reply meant for the coordinator
        with pytest.raises(Refused, match="Permissions Violation"):
            connection.flush()


def test_wrong_credentials_are_refused_and_the_findings_wait(
    secure_cluster: NatsCluster, tmp_path: Path
) -> None:
    with pytest.raises(Refused, match="Authorization"):
        connect_as(secure_cluster, "laptop", password="not-the-password")
    laptop = make_host(secure_cluster, tmp_path, "laptop")
    (laptop.root / "credentials" / "nats").write_text("laptop:not-the-password\n")
    laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "disk 97%"})
    result = laptop.forward()
    assert result.returncode == 0
    assert "NATS refused laptop" in result.stderr
    assert len(list((laptop.state / "outgoing").iterdir())) == 1
    assert "not-the-password" not in result.stderr


def test_a_host_reads_every_hosts_report(secure_cluster: NatsCluster) -> None:
    """What `vigil status --fleet` needs from any host: the reports and the lease."""
    from runner.fleet.names import hosts_bucket, lease_bucket

    with connect_as(secure_cluster, "vps") as connection:
        set_up(connection)
        stream = JetStream(connection)
        patiently(lambda: stream.put(hosts_bucket("demo"), "vps", b'{"host": "vps"}'))
    with connect_as(secure_cluster, "laptop") as connection:
        stream = JetStream(connection)
        entry = stream.get(hosts_bucket("demo"), "vps")
        assert entry is not None and entry.value == b'{"host": "vps"}'
        assert stream.keys(hosts_bucket("demo")) == ["vps"]
        assert stream.get(lease_bucket("demo"), "coordinator") is None
        with pytest.raises(Refused, match="Permissions Violation"):
            stream.put(hosts_bucket("demo"), "vps", b'{"host": "laptop pretending"}')


def test_a_job_host_books_spend_in_the_fleets_ledger(secure_cluster: NatsCluster) -> None:
    """Every host's model calls book in one ledger, which a coordinator makes; a job host
    cannot change that stream (it could make it store others' replies), nor touch the
    coordinator's state."""
    from runner.fleet.names import spend_bucket

    with connect_as(secure_cluster, "vps") as connection:
        set_up(connection)
    with connect_as(secure_cluster, "laptop") as connection:
        stream = JetStream(connection)
        revision = patiently(
            lambda: stream.put(spend_bucket("demo"), "spend-2026-12", b'{"jobs": {}}', last=0)
        )
        entry = stream.get(spend_bucket("demo"), "spend-2026-12")
        assert entry is not None and entry.revision == revision
        with pytest.raises(Refused, match="Permissions Violation"):
            stream.put(state_bucket("demo"), "state/delivered.json", b"{}")
    with (
        connect_as(secure_cluster, "laptop") as connection,
        pytest.raises(Refused, match="Permissions Violation"),
    ):
        JetStream(connection).ensure_bucket(spend_bucket("demo"), replicas=3)


def test_the_readme_shows_the_permissions_vigil_needs() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme[readme.index("authorization {") :]
    block = block[: block.index("```")]
    for host, coordinator in (("laptop", False), ("vps", True)):
        shown = block[block.index(f"{{user: {host},") :]
        shown = shown[: shown.index("subscribe:") + 80]
        wanted = permissions("fleet", host, coordinator=coordinator)
        for subject in wanted["publish"]["allow"] + wanted["subscribe"]["allow"]:
            assert f'"{subject}"' in shown, (host, subject)


SEEDS = {host: bytes([n + 1]) * 32 for n, host in enumerate(HOSTS)}


@pytest.fixture
def nkey_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster that knows the hosts by their nkeys (no passwords)."""
    users = [
        {
            "nkey": nkeys.user_public_key(SEEDS[host]),
            "permissions": permissions("demo", host, coordinator=host == "vps"),
        }
        for host in HOSTS
    ]
    extra = "\nauthorization: " + json.dumps({"users": users}) + "\n"
    with running_cluster(tmp_path / "nats", extra) as cluster:
        yield cluster


def test_hosts_known_by_their_nkeys_sign_in_with_their_seeds(
    nkey_cluster: NatsCluster, tmp_path: Path
) -> None:
    hosts = {}
    for name in HOSTS:
        host = make_host(nkey_cluster, tmp_path, name)
        (host.root / "credentials" / "nats").write_text(nkeys.encode_seed(SEEDS[name]) + "\n")
        hosts[name] = host
    vps, laptop = hosts["vps"], hosts["laptop"]
    vps.start_coordinator()
    try:
        assert wait_for(vps.active, 90), vps.log.read_text()
        laptop.drop({"source": "disk", "timestamp": "2026-12-07T10:00:00Z", "message": "signed"})
        result = laptop.forward()
        assert "forward: 1 finding(s) to the fleet" in result.stderr, result.stderr
        assert wait_for(lambda: len(lines(tmp_path / "sink.jsonl")) == 1, 30)
    finally:
        vps.stop_coordinator()
    seed = nkeys.encode_seed(SEEDS["laptop"])
    assert seed not in result.stderr + vps.log.read_text()
    # Another host's seed is another user: it cannot publish as the laptop.
    credentials = Credentials(seed=nkeys.encode_seed(SEEDS["vps"]))
    with (
        Connection(nkey_cluster.urls, credentials, inbox=inbox_prefix("demo", "vps")) as c,
        pytest.raises(Refused, match="Permissions Violation"),
    ):
        JetStream(c).publish(findings_subject("demo", "laptop"), b"{}")
    stranger = Credentials(seed=nkeys.encode_seed(b"\x7f" * 32))
    with pytest.raises(Refused, match="Authorization"):
        Connection(nkey_cluster.urls, stranger).connect()


def test_a_creds_file_signs_in_with_its_jwt_and_seed() -> None:
    """What CONNECT carries for a creds file (`nsc generate creds`): its JWT and the nonce
    signed with its seed, which verifies with the seed's public key."""
    seed = nkeys.encode_seed(SEEDS["laptop"])
    creds = (
        "-----BEGIN NATS USER JWT-----\neyJhbGciOi.payload.signature\n"
        "------END NATS USER JWT------\n"
        "\n************************* IMPORTANT *************************\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
    fields = Credentials.parse(creds).fields("a-nonce")
    assert fields["jwt"] == "eyJhbGciOi.payload.signature"
    assert "nkey" not in fields and "pass" not in fields
    signature = base64.urlsafe_b64decode(fields["sig"] + "==")
    assert signature == nkeys.sign(SEEDS["laptop"], b"a-nonce")
    assert Credentials.parse(seed).fields("n")["nkey"] == nkeys.user_public_key(SEEDS["laptop"])
    with pytest.raises(ValueError, match="JWT and its nkey seed"):
        Credentials.parse("-----BEGIN NATS USER JWT-----\nx\n")


def test_ed25519_signs_as_rfc_8032_says() -> None:
    """RFC 8032, section 7.1, test 2."""
    seed = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    public = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    signature = (
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert nkeys.public_key(seed).hex() == public
    assert nkeys.sign(seed, bytes.fromhex("72")).hex() == signature

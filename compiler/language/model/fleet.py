"""Several machines: the NATS servers a fleet's hosts share, and the coordinator's lease."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from compiler.language.model.types import Duration, FilePathStr, Name, StrictModel, url_parts
from runner.contract import FLEET_LEASE, FLEET_LEASE_MAX, FLEET_LEASE_MIN

SERVER_SCHEMES = ("nats", "tls")


def _check_server(value: str) -> str:
    parts = url_parts(value, SERVER_SCHEMES)
    if parts is None or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(
            f"invalid NATS server {value!r}: use nats://HOST:PORT or tls://HOST:PORT "
            "(credentials go in `credentials:`, a secret)"
        )
    if parts.username or parts.password:
        raise ValueError("a server URL must not hold credentials: use `credentials:`, a secret")
    return value


Server = Annotated[
    str,
    AfterValidator(_check_server),
    WithJsonSchema({"type": "string", "pattern": r"^(nats|tls)://[^\s/]+:\d+/?$"}),
]


def _lease_in_range(seconds: int) -> int:
    if seconds < FLEET_LEASE_MIN:
        raise ValueError(f"at least {FLEET_LEASE_MIN}s")
    if seconds > FLEET_LEASE_MAX:
        raise ValueError(f"at most {FLEET_LEASE_MAX // 60}m")
    return seconds


Lease = Annotated[Duration, AfterValidator(_lease_in_range)]


class Fleet(StrictModel):
    """Several machines sharing one coordinator over NATS JetStream: each host forwards its
    findings and runs; one of `coordinator.hosts` at a time holds the lease and delivers."""

    servers: Annotated[list[Server], Field(min_length=1)]
    """NATS servers (nats://HOST:PORT or tls://HOST:PORT), any of which a host may reach."""
    credentials: Name | None = None
    """A secret (in `secrets:`) holding this host's NATS credentials: a creds file, an nkey
    seed (`SU...`), `user:password` or a token."""
    tls_ca: FilePathStr | None = None
    """A PEM file of the certificate authorities that signed the servers' certificates (a
    private CA); without it, the system's. TLS is used for tls:// servers and for servers that
    require it."""
    lease: Lease = FLEET_LEASE
    """How long the coordinator's leader lease lasts unrenewed: after a coordinator host stops,
    the next one takes over within this long. At least 3s, at most 5m."""

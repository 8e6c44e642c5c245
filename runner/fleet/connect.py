"""A fleet spec's connection: its servers, its credentials (from systemd's LoadCredential=,
never from the spec or the environment) and the host's own reply inbox."""

from __future__ import annotations

import os

from runner.fleet.client import Connection, Credentials, NatsError
from runner.fleet.jetstream import JetStream
from runner.fleet.names import inbox_prefix

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.spectypes import FleetJSON


class CredentialsMissing(NatsError):
    """The unit was not given the fleet's credentials."""


def credentials(fleet: FleetJSON) -> Credentials:
    name = fleet.get("credential")
    if not name:
        return Credentials()
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise CredentialsMissing(
            f"$CREDENTIALS_DIRECTORY is not set: the unit passes the fleet credential {name!r} "
            "with LoadCredential="
        )
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            return usable(handle.read(), name)
    except OSError as error:
        raise CredentialsMissing(
            f"cannot read the fleet credential {name!r}: {error.strerror or error}"
        ) from None


def usable(text: str, name: str) -> Credentials:
    """The credentials a secret's text holds; CredentialsMissing (naming the secret, never
    its content) when it is a creds file or a seed that cannot be used."""
    try:
        parsed = Credentials.parse(text)
        if parsed.seed:
            from runner.fleet.nkeys import decode_seed

            decode_seed(parsed.seed)
    except ValueError as error:
        raise CredentialsMissing(f"the fleet credential {name!r} cannot be used: {error}") from None
    return parsed


def connect(config: str, fleet: FleetJSON, role: str) -> tuple[Connection, JetStream]:
    """A connection for this host (`role` names it to the server: `vigil forward laptop`)."""
    host = fleet["host"]
    ca_file = fleet.get("tls_ca")
    connection = Connection(
        list(fleet["servers"]),
        credentials(fleet),
        inbox=inbox_prefix(config, host),
        name=f"vigil {role} {config}/{host}",
        ca_file=os.path.expanduser(ca_file) if ca_file else None,
    )
    connection.connect()
    return connection, JetStream(connection)

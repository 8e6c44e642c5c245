"""What a reply source's receiver raises: the two ways a read can fail."""

from __future__ import annotations

import os


class Transient(Exception):
    """The read failed for now (the network, the daemon, the program): try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """How long the other side asked to wait (Telegram's 429), else the backoff's."""


class Fatal(Exception):
    """The source cannot work as configured (a refused token): the service exits non-zero."""


def credential(name: str) -> str:
    """A credential's value (LoadCredential=), stripped; Fatal when there is none."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise Fatal(f"no credential {name!r}: $CREDENTIALS_DIRECTORY is not set")
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as error:
        raise Fatal(f"cannot read credential {name!r}: {error.strerror or error}") from None
    if not value:
        raise Fatal(f"credential {name!r} is empty")
    return value

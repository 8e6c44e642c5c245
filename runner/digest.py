"""SHA-256 for ids and keys, without hashlib's start-up: `import hashlib` loads OpenSSL (~3 ms of
a coordinator's start). CPython's own implementation gives the same digests (`_sha2` since 3.12,
`_sha256` before); hashlib where neither is built in."""

from __future__ import annotations

try:
    from _sha2 import sha256  # type: ignore[import-not-found]
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256


def hexdigest(text: str) -> str:
    return str(sha256(text.encode("utf-8")).hexdigest())

"""Credential values kept out of what the runner passes on.

A unit gets its secrets as files in `$CREDENTIALS_DIRECTORY` (LoadCredential=). The runner knows
those values, so it replaces them, wherever it passes text on, with `[redacted]`: in a job's
stderr and log output (the journal), its findings (the inbox, then messages), the run's reason
(runs.jsonl) and a channel's error text (the outbox). A value is matched as it is, percent-
encoded, JSON-escaped and base64-encoded (also inside a longer base64 text, such as HTTP basic
auth); a URL is matched by its pieces too (user, password, token path), each line of a multi-line
value by itself; in a stream (stderr) also across read boundaries. Values shorter than
MIN_LENGTH are left alone: they would garble ordinary text. Text that may quote a URL it was
not given as a credential (a channel's error) has every URL cut to its scheme: cut_urls.
"""

from __future__ import annotations

import binascii
import json
import os
import re

REDACTED = "[redacted]"
MIN_LENGTH = 6
MAX_CREDENTIAL_BYTES = 64 * 1024
"""Larger credential files (certificates, key stores) are not searched for."""
_URL_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")
_ANY_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://[^\s'\"<>()]*")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Iterable


class Redactor:
    def __init__(self, values: Iterable[str]) -> None:
        needles: set[str] = set()
        for value in values:
            needles |= {form for form in _forms(value) if len(form) >= MIN_LENGTH}
        # Longest first: a value's encoded form may contain a shorter needle.
        self.needles = sorted(needles, key=lambda n: (-len(n), n))
        self.byte_needles = [needle.encode("utf-8") for needle in self.needles]

    def __bool__(self) -> bool:
        return bool(self.needles)

    def text(self, text: str) -> str:
        for needle in self.needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text

    def bytes(self, data: bytes) -> bytes:
        for needle in self.byte_needles:
            if needle in data:
                data = data.replace(needle, REDACTED.encode())
        return data

    def stream(self) -> ByteStream:
        """A filter for text that arrives in pieces (a command's stderr)."""
        return ByteStream(self)

    def data(self, value: object) -> object:
        """JSON data with every string (keys too) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.data(v) for k, v in value.items()
            }
        return value


class ByteStream:
    """Redacts bytes that arrive in pieces. A piece's end may hold the start of a value that
    the next piece completes (a 64 KiB read boundary inside a long line): the longest such
    tail that could still become a value is held back until more arrives or the stream ends."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.longest = max((len(n) for n in redactor.byte_needles), default=0)
        self.held = b""

    def feed(self, piece: bytes) -> bytes:
        data = self.redactor.bytes(self.held + piece)
        cut = self._start_of_partial_value(data)
        self.held = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        data, self.held = self.held, b""
        return data

    def _start_of_partial_value(self, data: bytes) -> int:
        """Where the longest tail of `data` that is a proper prefix of a value begins."""
        for start in range(max(0, len(data) - self.longest + 1), len(data)):
            tail = data[start:]
            if any(needle.startswith(tail) for needle in self.redactor.byte_needles):
                return start
        return len(data)


def cut_urls(text: str) -> str:
    """Every URL in `text` cut to its scheme: URLs of notification services carry tokens."""
    return _ANY_URL.sub(lambda match: f"{match.group(1)}://{REDACTED}", text)


def from_credentials(directory: str | None) -> Redactor:
    """The values of the credential files in `directory` (none when it is unset or unreadable)."""
    values: list[str] = []
    if directory:
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        for name in names:
            try:
                with open(os.path.join(directory, name), "rb") as handle:
                    raw = handle.read(MAX_CREDENTIAL_BYTES + 1)
            except OSError:
                continue
            if len(raw) <= MAX_CREDENTIAL_BYTES:
                values.append(raw.decode("utf-8", "replace"))
    return Redactor(values)


def _forms(value: str) -> set[str]:
    value = value.strip()
    if not value:
        return set()
    forms = {value}
    lines = [line.strip() for line in value.splitlines()]
    if len(lines) > 1:
        forms.update(lines)
    if "://" in value:
        forms.update(_URL_SEPARATORS.split(value.partition("://")[2]))
    for piece in list(forms):
        forms |= _encoded(piece)
    return forms


def _encoded(value: str) -> set[str]:
    raw = value.encode("utf-8")
    forms = {
        "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in raw),
        "".join(chr(b) if b in _UNRESERVED else f"%{b:02x}" for b in raw),
        "".join(chr(b) if b in _UNRESERVED or b == 0x2F else f"%{b:02X}" for b in raw),
        "".join(chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in raw),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    # base64 at each of the three alignments: the groups made only of the value's own bytes
    # encode the same whatever comes before it (`user:` in basic auth) or after it.
    for shift in range(3):
        data = b"\0" * shift + raw
        whole = len(data) // 3
        first = 1 if shift else 0
        if whole > first:
            piece = binascii.b2a_base64(data[: whole * 3], newline=False).decode("ascii")
            piece = piece[first * 4 :]
            forms |= {piece, piece.replace("+", "-").replace("/", "_")}
    return forms

"""A NATS client for one thread, stdlib only: the wire protocol (INFO, CONNECT, PUB/HPUB, SUB,
MSG/HMSG, PING/PONG, +OK/-ERR) over one socket, with request/reply on a private inbox.

The runner starts on every finding, and the official client (asyncio) costs more to import
than a whole local delivery; what a forwarder and a coordinator say to NATS is a few
request/replies, which this module does synchronously. Replies arrive on `<inbox>.<n>`: a
host's credentials may subscribe only to its own inbox prefix, so no host reads the replies
(findings, state) meant for another.
"""

from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import unquote, urlsplit

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_PORT = 4222
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 5.0
HEADER_LINE = b"NATS/1.0"
NO_RESPONDERS = "503"
ACK_PREFIX = "$JS.ACK."


class NatsError(Exception):
    """Anything NATS did not do."""


class Unreachable(NatsError):
    """No server could be reached, or the connection broke: try again later, lose nothing."""


class Refused(NatsError):
    """The server refused: bad credentials, or a subject these credentials may not use."""


class NoResponders(NatsError):
    """Nobody answers on the subject: no such stream, or its replicas have no leader yet."""


class Timeout(NatsError):
    """No reply in time."""


class Msg:
    """One message: its subject, the subject to reply to, headers, status (`408`) and data."""

    __slots__ = ("data", "headers", "reply", "status", "subject")

    def __init__(
        self, subject: str, reply: str, data: bytes, headers: dict[str, str], status: str | None
    ) -> None:
        self.subject = subject
        self.reply = reply
        self.data = data
        self.headers = headers
        self.status = status


class Credentials:
    """How to log in: user and password, a token, an nkey seed, a creds file's JWT and seed,
    or nothing."""

    def __init__(
        self,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        *,
        seed: str | None = None,
        jwt: str | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.token = token
        self.seed = seed
        """A user's nkey seed (`SU...`): the server's nonce is signed with it."""
        self.jwt = jwt
        """A user JWT (from a creds file), sent with the signed nonce."""

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """A secret's content: a creds file (`nsc generate creds`: a user JWT and its seed),
        an nkey seed (`SU...`), `user:password`, or a token (one line without a colon)."""
        if CREDS_JWT in text:
            jwt, seed = _creds_block(text, CREDS_JWT), _creds_block(text, CREDS_SEED)
            if not jwt or not seed:
                raise ValueError("a creds file needs its user JWT and its nkey seed")
            return cls(jwt=jwt, seed=seed)
        line = text.strip()
        if line.startswith("SU") and ":" not in line and len(line) == SEED_LENGTH:
            return cls(seed=line)
        if ":" in line:
            user, _, password = line.partition(":")
            return cls(user=user, password=password)
        return cls(token=line or None)

    def fields(self, nonce: str | None) -> dict[str, str]:
        """What CONNECT carries; `nonce` is the server's (INFO), signed for an nkey or JWT."""
        fields: dict[str, str] = {}
        if self.user is not None:
            fields["user"] = self.user
            fields["pass"] = self.password or ""
        if self.token:
            fields["auth_token"] = self.token
        if self.seed:
            from runner.fleet import nkeys

            seed = nkeys.decode_seed(self.seed)
            if nonce:
                fields["sig"] = nkeys.signed_nonce(seed, nonce)
            if self.jwt:
                fields["jwt"] = self.jwt
            else:
                fields["nkey"] = nkeys.user_public_key(seed)
        return fields


CREDS_JWT = "NATS USER JWT"
CREDS_SEED = "USER NKEY SEED"
SEED_LENGTH = 58


def _creds_block(text: str, name: str) -> str | None:
    """The line between `-----BEGIN <name>-----` and its `------END <name>------`."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("-----BEGIN") and name in line:
            for body in lines[index + 1 :]:
                if body.strip():
                    return body.strip()
    return None


def encode_headers(headers: dict[str, str]) -> bytes:
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return HEADER_LINE + b"\r\n" + lines.encode("utf-8") + b"\r\n"


def decode_headers(block: bytes) -> tuple[dict[str, str], str | None]:
    """(headers, status) of an HMSG's header block: `NATS/1.0 503` carries a status."""
    first, *lines = block.decode("utf-8", "replace").split("\r\n")
    parts = first.split(" ", 2)
    status = parts[1] if len(parts) > 1 and parts[1] else None
    headers: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if colon:
            headers[key.strip()] = value.strip()
    return headers, status


class Connection:
    """One connection to the first server of `servers` that answers."""

    def __init__(
        self,
        servers: list[str],
        credentials: Credentials | None = None,
        *,
        inbox: str = "_INBOX",
        name: str = "vigil",
        timeout: float = CONNECT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        self.servers = servers
        self.credentials = credentials or Credentials()
        self.inbox = f"{inbox}.{os.urandom(6).hex()}"
        self.name = name
        self.timeout = timeout
        self.ca_file = ca_file
        """The certificate authorities to trust for TLS (PEM); None: the system's."""
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.counter = 0
        self.server: str | None = None
        self.held: list[Msg] = []
        """Deliveries of a fetch that came while a reply was awaited (see _keep)."""
        self.max_payload = 1 << 20
        """The largest message the server takes (its INFO says; 1 MiB by default)."""

    def __enter__(self) -> Connection:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- connecting ------------------------------------------------------------------------

    def connect(self) -> None:
        problems = []
        for url in self.servers:
            try:
                self._connect_to(url)
            except Refused:
                self.close()
                raise
            except (OSError, NatsError) as error:
                self.close()
                problems.append(f"{_shown(url)}: {_reason(error)}")
                continue
            self.server = url
            return
        raise Unreachable("no NATS server answered (" + "; ".join(problems) + ")")

    def _connect_to(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT
        self.buffer.clear()
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + self.timeout
        op, rest = self._read_op(deadline)
        if op != "INFO":
            raise NatsError(f"not a NATS server (said {op!r})")
        try:
            info = json.loads(rest)
            self.max_payload = int(info.get("max_payload") or self.max_payload)
        except (ValueError, TypeError, AttributeError):
            raise NatsError(f"not a NATS server (its INFO: {rest[:80]!r})") from None
        if parts.scheme == "tls" or info.get("tls_required"):
            import ssl

            context = ssl.create_default_context(cafile=self.ca_file)
            self.sock = context.wrap_socket(self.sock, server_hostname=host)
        fields: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "lang": "python-vigil",
            "version": "1",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
            "name": self.name,
            **self.credentials.fields(info.get("nonce")),
        }
        if parts.username is not None:  # nats://user:password@host in the URL itself
            fields["user"] = unquote(parts.username)
            fields["pass"] = unquote(parts.password or "")
        self._send(
            b"CONNECT " + json.dumps(fields).encode() + b"\r\n"
            b"SUB " + self.inbox.encode() + b".* 1\r\nPING\r\n"
        )
        while True:
            op, rest = self._read_op(deadline)
            if op == "PONG":
                return

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    # -- talking ---------------------------------------------------------------------------

    def publish(
        self,
        subject: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        reply: str = "",
    ) -> None:
        target = f"{subject} {reply}".rstrip() if reply else subject
        if headers:
            block = encode_headers(headers)
            line = f"HPUB {target} {len(block)} {len(block) + len(data)}\r\n".encode()
            self._send(line + block + data + b"\r\n")
        else:
            self._send(f"PUB {target} {len(data)}\r\n".encode() + data + b"\r\n")

    def send(self, subject: str, data: bytes = b"", headers: dict[str, str] | None = None) -> str:
        """Publish a request without waiting; the subject its reply will come on (collect)."""
        self.counter += 1
        reply = f"{self.inbox}.{self.counter}"
        self.publish(subject, data, headers, reply)
        return reply

    def collect(self, replies: list[str], timeout: float = REQUEST_TIMEOUT) -> dict[str, Msg]:
        """The replies to requests sent with `send`, by reply subject; Timeout without all."""
        wanted = set(replies)
        found: dict[str, Msg] = {}
        deadline = time.monotonic() + timeout
        while wanted:
            message = self._next_message(deadline)
            if message.subject in wanted:
                wanted.discard(message.subject)
                found[message.subject] = message
            else:
                self._keep(message)
        return found

    def request(
        self,
        subject: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Msg:
        """The first reply; raises NoResponders when nobody listens, Timeout without one."""
        for message in self.replies(subject, data, headers, timeout):
            if message.status == NO_RESPONDERS:
                raise NoResponders(f"no responders on {subject}")
            return message
        raise Timeout(f"no reply on {subject} within {timeout:g}s")

    def replies(
        self,
        subject: str,
        data: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        *,
        deliveries: bool = False,
    ) -> Iterator[Msg]:
        """Every reply to one request until `timeout`; the caller stops reading when it has
        what it wants. With `deliveries`, also the JetStream messages a fetch brings (they keep
        their own subject, and carry an ack subject as reply)."""
        self.counter += 1
        reply = f"{self.inbox}.{self.counter}"
        self.publish(subject, data, headers, reply)
        while deliveries and self.held:  # came late, while something else was awaited
            yield self.held.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._next_message(deadline)
            except Timeout:
                return
            if message.subject == reply or (deliveries and message.reply.startswith(ACK_PREFIX)):
                yield message
            else:
                self._keep(message)

    def flush(self, timeout: float = REQUEST_TIMEOUT) -> None:
        """Wait until the server has read everything sent so far (and said if it refused)."""
        self._send(b"PING\r\n")
        deadline = time.monotonic() + timeout
        while True:
            op, rest = self._read_op(deadline)
            if op == "PONG":
                return
            if op in ("MSG", "HMSG"):
                self._keep(self._read_payload(op, rest, deadline))

    def _keep(self, message: Msg) -> None:
        """A stream's delivery that arrived while a reply was awaited is kept for the next
        fetch (dropped, it would come again only after the ack wait, behind later findings);
        a late reply nobody waits for is dropped."""
        if message.reply.startswith(ACK_PREFIX) and message.status is None:
            self.held.append(message)

    # -- the wire --------------------------------------------------------------------------

    def _next_message(self, deadline: float) -> Msg:
        while True:
            op, rest = self._read_op(deadline)
            if op in ("MSG", "HMSG"):
                return self._read_payload(op, rest, deadline)

    def _read_payload(self, op: str, rest: str, deadline: float) -> Msg:
        fields = rest.split(" ")
        if op == "MSG":  # subject sid [reply] size
            subject, size = fields[0], int(fields[-1])
            reply = fields[2] if len(fields) == 4 else ""
            header_size = 0
        else:  # subject sid [reply] header-size total-size
            subject, size, header_size = fields[0], int(fields[-1]), int(fields[-2])
            reply = fields[2] if len(fields) == 5 else ""
        payload = self._read_exactly(size + 2, deadline)[:size]
        headers, status = decode_headers(payload[:header_size]) if header_size else ({}, None)
        return Msg(subject, reply, bytes(payload[header_size:]), headers, status)

    def _read_op(self, deadline: float) -> tuple[str, str]:
        """The next protocol line as (operation, the rest); answers PINGs, raises on -ERR."""
        while True:
            line = self._read_line(deadline)
            op, _, rest = line.partition(" ")
            op = op.upper()
            if op == "PING":
                self._send(b"PONG\r\n")
            elif op == "+OK":
                continue
            elif op == "-ERR":
                _raise_error(rest.strip().strip("'"))
            else:
                return op, rest

    def _read_line(self, deadline: float) -> str:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line.decode("utf-8", "replace")
            self._fill(deadline)

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._fill(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _fill(self, deadline: float) -> None:
        if self.sock is None:
            raise Unreachable("not connected")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("timed out")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except TimeoutError:
            raise Timeout("timed out") from None
        except OSError as error:
            self.close()
            raise Unreachable(f"connection lost: {_reason(error)}") from None
        if not chunk:
            self.close()
            raise Unreachable("the server closed the connection")
        self.buffer += chunk

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            raise Unreachable("not connected")
        try:
            self.sock.settimeout(self.timeout)  # not what is left of the last read's deadline
            self.sock.sendall(data)
        except OSError as error:
            self.close()
            raise Unreachable(f"connection lost: {_reason(error)}") from None


def _raise_error(text: str) -> None:
    lowered = text.lower()
    if "permissions violation" in lowered or "authorization" in lowered or "auth" in lowered:
        raise Refused(text)
    raise NatsError(text)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _shown(url: str) -> str:
    """A server URL without the password it may carry (for messages and the journal)."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return f"{parts.scheme}://{parts.hostname}:{parts.port or DEFAULT_PORT}"

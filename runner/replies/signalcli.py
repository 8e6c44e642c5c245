"""A Signal account's messages, from signal-cli's daemon (signal-cli-jsonrpc(5)).

- `--socket`: JSON-RPC over a unix socket, one object a line. Incoming messages arrive as
  `receive` notifications, `{"method": "receive", "params": {"envelope": {...}, "account":
  ...}}`; after `subscribeReceive` (which a daemon started with `--receive-mode=manual` needs)
  wrapped as `params.result`. Both are read (a daemon receiving on start sends both: the same
  envelope twice, the second at the stored offset).
- `--http`: GET /api/v1/events, a Server-Sent Events stream of `receive` events whose data is
  `{"envelope": {...}, "account": ...}`, with a keep-alive comment every 15 s.

An envelope's `timestamp` (milliseconds, set by the sender's clock) and its sender make the
reply's id: the same envelope seen twice is one reply, which the coordinator applies once.
The offset is the latest timestamp of a listed sender; one more than a day older is passed
over as a replay, anything younger is read (a second device's clock may lag). Only listed
senders move it. signal-cli hands a message to the clients connected when it arrives and keeps
no history: what arrives while this service is down is not seen.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

from runner.replies.ledger import Incoming
from runner.replies.sources import Transient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from runner.spectypes import SignalReplyJSON

EVENTS = "/api/v1/events"
CONNECT_SECONDS = 10
QUIET_SECONDS = 60
"""A stream with nothing, not even the daemon's 15-second keep-alive, for this long is dead."""
SUBSCRIBE_ID = "vigil-subscribe"
HANDLED_KEPT = 1000
"""Envelopes one connection remembers, to pass over the same one sent twice."""
SKEW_MS = 86_400_000
"""How much older than the latest handled message one may be and still be read."""


class SignalCli:
    def __init__(self, settings: SignalReplyJSON) -> None:
        self.url = settings["url"]
        socket_path = settings["socket"]
        self.socket = os.path.expanduser(socket_path) if socket_path else None
        self.account = settings["account"]
        self.numbers = frozenset(settings["numbers"])

    def receive(self, offset: int | None) -> Iterator[Incoming]:
        """The messages of one connection, until it ends (Transient: connect again)."""
        notifications = self._socket() if self.socket else self._events()
        seen = offset
        handled: dict[tuple[str, str], None] = {}  # (sender, id): a daemon may send one twice
        for params in notifications:
            incoming = self._incoming(params, seen)
            if incoming is None or (incoming.sender, incoming.number) in handled:
                continue
            handled[incoming.sender, incoming.number] = None
            if len(handled) > HANDLED_KEPT:
                del handled[next(iter(handled))]
            if incoming.accepted and incoming.offset is not None:
                seen = incoming.offset
            yield incoming

    def _incoming(self, params: dict[str, object], seen: int | None) -> Incoming | None:
        result = params.get("result")
        if isinstance(result, dict):  # a subscription's notification
            params = result
        account = params.get("account")
        if self.account and isinstance(account, str) and account != self.account:
            return None
        envelope = params.get("envelope")
        if not isinstance(envelope, dict):
            return None
        stamp = envelope.get("timestamp")
        data = envelope.get("dataMessage")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or not isinstance(data, dict):
            return None  # a receipt, typing, a sync message: nothing the person wrote here
        senders = [envelope.get(k) for k in ("sourceNumber", "source", "sourceUuid")]
        known = [s for s in senders if isinstance(s, str) and s]
        accepted = any(s in self.numbers for s in known)
        if accepted and seen is not None and stamp <= seen - SKEW_MS:
            print(f"vigil: reply source: a message from {stamp} ms, a day before the latest "
                  "handled, is passed over (replayed?)", file=sys.stderr)  # fmt: skip
            return None
        text = data.get("message")
        sender = known[0] if known else "unknown"
        return Incoming(
            # The sender's clock: two senders may share a millisecond, one sender never. A
            # message seen twice has one id (the coordinator applies an id once).
            number=f"{stamp}-{_digits(sender)}",
            sender=sender,
            text=text if isinstance(text, str) and text else None,
            accepted=accepted,
            moment=datetime.fromtimestamp(stamp / 1000, UTC),
            offset=max(stamp, seen or 0) if accepted else None,
        )

    def _socket(self) -> Iterator[dict[str, object]]:
        assert self.socket is not None
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                connection.settimeout(CONNECT_SECONDS)
                connection.connect(self.socket)
                connection.settimeout(None)  # a daemon that goes away closes the socket
                request: dict[str, object] = {
                    "jsonrpc": "2.0",
                    "id": SUBSCRIBE_ID,
                    "method": "subscribeReceive",
                }
                if self.account:
                    request["params"] = {"account": self.account}
                connection.sendall(json.dumps(request).encode() + b"\n")
            except OSError as error:
                raise Transient(f"cannot reach signal-cli at {self.socket}: {error}") from None
            reader = connection.makefile("rb")
            try:
                yield from _notifications(reader)
            except OSError as error:
                raise Transient(f"signal-cli's socket failed: {error}") from None
            raise Transient("signal-cli closed the connection")
        finally:
            connection.close()

    def _events(self) -> Iterator[dict[str, object]]:
        assert self.url is not None
        url = self.url + EVENTS
        if self.account:
            url += "?" + urllib.parse.urlencode({"account": self.account})
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
        try:
            response = urllib.request.urlopen(request, timeout=QUIET_SECONDS)
        except urllib.error.HTTPError as error:
            raise Transient(f"signal-cli's events answered {error.code}") from None
        except (OSError, http.client.HTTPException) as error:
            raise Transient(f"cannot reach signal-cli at {self.url}: {error}") from None
        try:
            yield from _server_sent(response)
        except (OSError, http.client.HTTPException) as error:
            raise Transient(f"signal-cli's event stream failed: {error}") from None
        finally:
            response.close()
        raise Transient("signal-cli ended the event stream")


def _notifications(lines: Iterable[bytes]) -> Iterator[dict[str, object]]:
    """The params of each `receive` notification among JSON-RPC lines."""
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("id") == SUBSCRIBE_ID and "error" in message:
            # A daemon that receives on start for every client may refuse this: fine.
            continue
        params = message.get("params")
        if message.get("method") == "receive" and isinstance(params, dict):
            yield params


def _server_sent(lines: Iterable[bytes]) -> Iterator[dict[str, object]]:
    """The data of each `receive` event of a text/event-stream (the WHATWG format)."""
    event, data = "", list[str]()
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data and event in ("", "receive"):
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    yield payload
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


def _digits(sender: str) -> str:
    """A number's digits, or a short digest of a UUID: part of a reply's id and file name."""
    digits = "".join(c for c in sender if c.isdigit())
    if sender.lstrip("+").isdigit() and digits:
        return digits
    from runner.digest import hexdigest

    return hexdigest(sender)[:12]

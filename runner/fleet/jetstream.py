"""JetStream through its API subjects ($JS.API.*): streams, a durable pull consumer, publishes
acknowledged by the stream, and key-value buckets (streams named KV_<bucket>, as every NATS
client keeps them, so `nats kv` and the official clients read what vigil writes).
"""

from __future__ import annotations

import json
from base64 import b64decode

from runner.fleet.client import NO_RESPONDERS as NO_RESPONDERS_STATUS
from runner.fleet.client import Connection, Msg, NatsError, NoResponders
from runner.fleet.names import kv_subject

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

API = "$JS.API"
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
KV_OPERATION = "KV-Operation"
KV_DELETED = ("DEL", "PURGE")
ACK = b"+ACK"
FETCH_END = ("404", "408", "409")
"""Statuses that end a fetch: no messages, request expired, consumer changed."""
HEARTBEAT = "100"

# JetStream API error codes (err_code) this module tells apart.
WRONG_LAST_SEQUENCE = 10071
STREAM_NOT_FOUND = 10059
NO_MESSAGE_FOUND = 10037
NAME_IN_USE = 10058
REPLICAS_NOT_SUPPORTED = 10074
INSUFFICIENT_RESOURCES = 10023
CONSUMER_NOT_FOUND = 10014


class JetStreamError(NatsError):
    """An error answer of the JetStream API."""

    def __init__(self, error: dict[str, object]) -> None:
        self.code = int(str(error.get("code") or 0))
        self.err_code = int(str(error.get("err_code") or 0))
        self.description = str(error.get("description") or "")
        super().__init__(f"{self.description} (JetStream error {self.err_code})")


class KeyExists(NatsError):
    """A create found the key there: another writer was first."""


class PubAck:
    __slots__ = ("duplicate", "seq", "stream")

    def __init__(self, stream: str, seq: int, duplicate: bool) -> None:
        self.stream = stream
        self.seq = seq
        self.duplicate = duplicate


class Entry:
    """A key's latest value and revision (its stream sequence); `value` None when deleted."""

    __slots__ = ("revision", "value")

    def __init__(self, value: bytes | None, revision: int) -> None:
        self.value = value
        self.revision = revision


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def stream_sequence(ack_subject: str) -> int:
    """The stream sequence of a delivered message, from its ack subject
    ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>... or, with a domain and account,
    $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<stream seq>...)."""
    tokens = ack_subject.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


def delivery_count(ack_subject: str) -> int:
    tokens = ack_subject.split(".")
    return int(tokens[4] if len(tokens) == 9 else tokens[6])


class JetStream:
    def __init__(self, connection: Connection, timeout: float = 5.0) -> None:
        self.connection = connection
        self.timeout = timeout

    def api(self, path: str, body: Mapping[str, object] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        reply = self.connection.request(f"{API}.{path}", data, timeout=self.timeout)
        return _answer(reply)

    # -- streams and consumers ------------------------------------------------------------

    def ensure_stream(self, config: dict[str, object]) -> None:
        """Create the stream, or bring an existing one to `config`. Replicated three times
        where the cluster has the nodes, else once (a single server, or a smaller cluster)."""
        name = str(config["name"])
        for replicas in (int(str(config.get("num_replicas") or 1)), 1):
            wanted = {**config, "num_replicas": replicas}
            try:
                self.api(f"STREAM.CREATE.{name}", wanted)
                return
            except JetStreamError as error:
                if error.err_code == NAME_IN_USE:
                    current = self.api(f"STREAM.INFO.{name}").get("config")
                    replicas = (current or {}).get("num_replicas", replicas)
                    self.api(f"STREAM.UPDATE.{name}", {**wanted, "num_replicas": replicas})
                    return
                if error.err_code not in (REPLICAS_NOT_SUPPORTED, INSUFFICIENT_RESOURCES):
                    raise
        raise NatsError(f"stream {name} cannot be created")

    def ensure_consumer(self, stream: str, config: dict[str, object]) -> None:
        durable = config["durable_name"]
        body = {"stream_name": stream, "config": config}
        self.api(f"CONSUMER.DURABLE.CREATE.{stream}.{durable}", body)

    def fetch(self, stream: str, durable: str, batch: int, wait: float) -> list[Msg]:
        """Up to `batch` messages for the durable pull consumer: what is there at once, else
        the first to arrive within `wait` seconds (and what came with it)."""
        messages = self._next(stream, durable, batch, None)
        if messages or wait <= 0:
            return messages
        messages = self._next(stream, durable, 1, wait)
        if messages and batch > 1:
            messages += self._next(stream, durable, batch - 1, None)
        return messages

    def _next(self, stream: str, durable: str, batch: int, wait: float | None) -> list[Msg]:
        body: dict[str, object] = {"batch": batch}
        if wait is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(wait * 1e9)
        subject = f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        messages: list[Msg] = []
        timeout = (wait or 0) + self.timeout
        data = json.dumps(body).encode()
        for message in self.connection.replies(subject, data, timeout=timeout, deliveries=True):
            if message.status == HEARTBEAT:
                continue
            if message.status is not None:
                if message.status in FETCH_END or message.status == "503":
                    break
                raise NatsError(f"fetch from {stream}/{durable}: status {message.status}")
            messages.append(message)
            if len(messages) >= batch:
                break
        return messages

    def ack(self, message: Msg) -> None:
        """Acknowledge and wait for the server to have taken it (a lost ack redelivers)."""
        self.connection.request(message.reply, ACK, timeout=self.timeout)

    # -- publishing -----------------------------------------------------------------------

    def publish(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        last: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        """Publish to a stream and wait for its acknowledgement. `msg_id` makes a retry a
        duplicate the stream drops; `last` is a compare-and-set on the subject's last
        sequence (0: the subject has no message yet)."""
        sent = _headers(msg_id, last, headers)
        return _ack(self.connection.request(subject, data, sent, timeout=self.timeout))

    def publish_later(self, subject: str, data: bytes, *, last: int | None = None) -> str:
        """Publish without waiting for the acknowledgement (see acknowledged): a stream
        stores one connection's publishes in order, so what it took is always a prefix."""
        return self.connection.send(subject, data, _headers(None, last, None))

    def acknowledged(self, replies: list[str]) -> list[PubAck | JetStreamError]:
        """The acknowledgements (or refusals) of publish_later's publishes, in their order."""
        found = self.connection.collect(replies, timeout=self.timeout)
        results: list[PubAck | JetStreamError] = []
        for reply in replies:
            message = found[reply]
            if message.status == NO_RESPONDERS_STATUS:
                raise NoResponders(f"no responders on {message.subject}")
            try:
                results.append(_ack(message))
            except JetStreamError as error:
                results.append(error)
        return results

    # -- key-value buckets ----------------------------------------------------------------

    def ensure_bucket(self, bucket: str, *, ttl: float | None = None, replicas: int = 3) -> None:
        """A key-value bucket keeping one value per key; with `ttl`, a key not written again
        for that long is gone (a lease)."""
        max_age = int(ttl * 1e9) if ttl else 0
        self.ensure_stream(
            {
                "name": kv_stream(bucket),
                "subjects": [kv_subject(bucket, ">")],
                "max_msgs_per_subject": 1,
                "max_age": max_age,
                "duplicate_window": min(max_age, 120 * 10**9) if max_age else 120 * 10**9,
                "discard": "new",
                "storage": "file",
                "num_replicas": replicas,
                "allow_rollup_hdrs": True,
                "deny_delete": True,
                "allow_direct": True,
                "max_msgs": -1,
                "max_bytes": -1,
                "max_msg_size": -1,
            }
        )

    def get(self, bucket: str, key: str) -> Entry | None:
        """The key's latest entry (a deleted key: value None), None when it never was."""
        try:
            answer = self.api(
                f"STREAM.MSG.GET.{kv_stream(bucket)}", {"last_by_subj": kv_subject(bucket, key)}
            )
        except JetStreamError as error:
            if error.err_code == NO_MESSAGE_FOUND:
                return None
            raise
        message = answer["message"]
        assert isinstance(message, dict)
        revision = int(message["seq"])
        if message.get("hdrs"):
            from runner.fleet.client import decode_headers

            headers, _ = decode_headers(b64decode(message["hdrs"]))
            if headers.get(KV_OPERATION) in KV_DELETED:
                return Entry(None, revision)
        return Entry(b64decode(message.get("data") or ""), revision)

    def put(self, bucket: str, key: str, value: bytes, last: int | None = None) -> int:
        """Write a key (compare-and-set when `last` is given); its new revision."""
        return self.publish(kv_subject(bucket, key), value, last=last).seq

    def create(self, bucket: str, key: str, value: bytes) -> int:
        """Write a key that does not exist (or was deleted); KeyExists when it does."""
        try:
            return self.put(bucket, key, value, last=0)
        except JetStreamError as error:
            if error.err_code != WRONG_LAST_SEQUENCE:
                raise
        entry = self.get(bucket, key)
        if entry is None or entry.value is not None:
            raise KeyExists(key)
        try:
            return self.put(bucket, key, value, last=entry.revision)
        except JetStreamError as error:
            if error.err_code == WRONG_LAST_SEQUENCE:
                raise KeyExists(key) from None
            raise

    def delete(self, bucket: str, key: str, last: int | None = None) -> int:
        headers = {KV_OPERATION: "DEL"}
        return self.publish(kv_subject(bucket, key), b"", last=last, headers=headers).seq

    def keys(self, bucket: str) -> list[str]:
        """Every key with a message in the bucket (deleted ones too: their marker)."""
        prefix = kv_subject(bucket, "")
        found: list[str] = []
        while True:
            answer = self.api(
                f"STREAM.INFO.{kv_stream(bucket)}",
                {"subjects_filter": kv_subject(bucket, ">"), "offset": len(found)},
            )
            state = answer.get("state")
            subjects = (state or {}).get("subjects") or {}
            found += [subject.removeprefix(prefix) for subject in subjects]
            total = int(str(answer.get("total") or 0))
            if not subjects or len(found) >= total:
                return found

    def entries(self, bucket: str) -> dict[str, Entry]:
        """Every key that holds a value, with it."""
        entries = {}
        for key in self.keys(bucket):
            entry = self.get(bucket, key)
            if entry is not None and entry.value is not None:
                entries[key] = entry
        return entries


def _headers(
    msg_id: str | None, last: int | None, headers: dict[str, str] | None
) -> dict[str, str] | None:
    sent = dict(headers or {})
    if msg_id is not None:
        sent[MSG_ID] = msg_id
    if last is not None:
        sent[EXPECTED_LAST_SUBJECT_SEQUENCE] = str(last)
    return sent or None


def _ack(reply: Msg) -> PubAck:
    answer = _answer(reply)
    duplicate = bool(answer.get("duplicate"))
    return PubAck(str(answer.get("stream")), int(str(answer["seq"])), duplicate)


def _answer(reply: Msg) -> dict[str, object]:
    try:
        answer = json.loads(reply.data)
    except ValueError:
        raise NatsError(f"not a JetStream answer: {reply.data[:80]!r}") from None
    if not isinstance(answer, dict):
        raise NatsError(f"not a JetStream answer: {reply.data[:80]!r}")
    error = answer.get("error")
    if isinstance(error, dict):
        raise JetStreamError(error)
    return answer

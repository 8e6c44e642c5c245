"""A message to one channel, as the outbox keeps it, and what one attempt to send it came to."""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any


class Message:
    """One message to one channel: what the outbox queues, the channel sends and the ledger
    records by its id."""

    FIELDS = (
        "id",
        "channel",
        "title",
        "body",
        "urgent",
        "created",
        "sources",
        "evidence",
        "count",
        "named",
        "keys",
    )
    """What to_json writes, in this order."""
    __slots__ = (
        "body",
        "channel",
        "count",
        "created",
        "evidence",
        "id",
        "keys",
        "named",
        "sources",
        "title",
        "urgent",
    )

    def __init__(
        self,
        id: str,
        channel: str,
        title: str,
        body: str,
        urgent: bool,
        created: str,
        sources: list[str],
        evidence: dict[str, Any] | None = None,
        count: int | None = None,
        named: list[str] | None = None,
        keys: list[str] | None = None,
    ) -> None:
        self.id = id
        self.channel = channel
        self.title = title
        self.body = body
        self.urgent = urgent
        self.created = created
        self.sources = sources
        self.evidence = evidence
        self.count = count
        """Alerts in the message, for a command's {count}; None counts the body's lines."""
        self.named = named
        """Keys of the alerts the message names (not those the caps counted as "+N more"):
        what rule state may count as told."""
        self.keys = keys
        """Keys of every alert the message carries, named or counted in "+N more": a rerun
        that composes the same id with alerts this one lacks queues those on their own."""

    def __repr__(self) -> str:
        return f"Message({self.to_json()!r})"

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_json(cls, data: object) -> Message:
        if not isinstance(data, dict):
            raise ValueError("message: expected an object")
        for key in ("id", "channel", "title", "body", "created"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"message.{key}: expected a string")
        sources = data.get("sources")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise ValueError("message.sources: expected a list of strings")
        evidence, count = data.get("evidence"), data.get("count")
        if evidence is not None and not isinstance(evidence, dict):
            raise ValueError("message.evidence: expected an object or null")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError("message.count: expected a whole number or null")
        named, keys = _key_list(data, "named"), _key_list(data, "keys")
        return cls(
            id=data["id"],
            channel=data["channel"],
            title=data["title"],
            body=data["body"],
            urgent=bool(data.get("urgent")),
            created=data["created"],
            sources=list(sources),
            evidence=evidence,
            count=count,
            named=named,
            keys=keys,
        )


def _key_list(data: dict[str, Any], field: str) -> list[str] | None:
    value = data.get(field)
    if value is not None and not (
        isinstance(value, list) and all(isinstance(key, str) for key in value)
    ):
        raise ValueError(f"message.{field}: expected a list of strings or null")
    return value


class DeliveryOutcome:
    """What one attempt to send a message came to; a failure says why."""

    __slots__ = ("error", "exit_status", "ok")

    def __init__(self, ok: bool, error: str = "", exit_status: int | None = None) -> None:
        self.ok = ok
        self.error = error
        self.exit_status = exit_status
        """A command channel's exit status: whether the hand-off was accepted."""

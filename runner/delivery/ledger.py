"""The delivery ledger: which message ids were delivered, and when.

`<state>/state/delivered.json` is `{"delivered": {ID: {"at": ISO, "channel": NAME,
"exit_status": N or null, "named": [KEY, ...], "keys": [KEY, ...]}}}`. A message is recorded
right after its channel accepted it and before its queue file is removed, so a crash in between
costs at most one duplicate, never a loss. Entries older than KEEP are pruned: the file stays
small, and ids are never reused that late.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from runner import clock, stateshapes
from runner.clock import iso, parse_iso
from runner.fsatomic import mirror_limit, write_state
from runner.statefile import load_state

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.delivery.message import Message

LEDGER = "delivered.json"
KEEP = timedelta(days=30)


class DeliveryLedger:
    def __init__(self, state_dir: str, entries: dict[str, dict[str, object]]) -> None:
        self.state_dir = state_dir
        self.entries = entries

    @classmethod
    def load(cls, state_dir: str) -> DeliveryLedger:
        """A ledger that cannot be read or is of another shape is set aside with an alert and
        delivery goes on with a new one: at worst a message goes out twice."""
        delivered = load_state(state_dir, LEDGER, stateshapes.LEDGER, clock.now()).get("delivered")
        entries: dict[str, dict[str, object]] = {}
        if isinstance(delivered, dict):
            entries = {str(k): v for k, v in delivered.items() if isinstance(v, dict)}
        return cls(state_dir, entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self.entries

    def prune(self, now: datetime) -> bool:
        """Forget entries older than KEEP (and ones without a readable time); True if any."""
        cutoff = now - KEEP
        stale = [
            key
            for key, entry in self.entries.items()
            if (moment := parse_iso(entry.get("at"))) is None or moment < cutoff
        ]
        for key in stale:
            del self.entries[key]
        return bool(stale)

    def record(self, message: Message, now: datetime, exit_status: int | None) -> None:
        """Add one delivery and write the ledger at once (atomically), with the keys of the
        alerts the message named and carried, for a rerun that composes the same id again."""
        entry: dict[str, object] = {
            "at": iso(now),
            "channel": message.channel,
            "exit_status": exit_status,
        }
        if message.named is not None:
            entry["named"] = message.named
        if message.keys is not None:
            entry["keys"] = message.keys
        self.entries[message.id] = entry
        self.save()

    def save(self) -> None:
        # Written at every delivery and holding a month of them: compact.
        limit = mirror_limit()
        if limit is not None:
            self._fit(limit)
        write_state(self.state_dir, LEDGER, {"delivered": dict(self.entries)}, compact=True)

    def _fit(self, limit: int) -> None:
        """Forget the oldest entries until the ledger fits what its mirror keeps (a fleet's
        NATS message, 1 MiB by default: a few thousand deliveries). An id is never composed
        again once its claim is done, so only a replay of a claim that old would repeat it."""
        import json

        def size() -> int:
            text = json.dumps({"delivered": self.entries}, sort_keys=True, separators=(",", ":"))
            return len(text.encode()) + 1

        dropped = 0
        while self.entries and size() > limit:
            oldest = sorted(self.entries, key=lambda key: str(self.entries[key].get("at")))
            for key in oldest[: max(1, len(oldest) // 10)]:
                del self.entries[key]
                dropped += 1
        if dropped:
            import sys

            print(f"vigil: the delivery ledger keeps the newest {len(self.entries)} entries "
                  f"(the fleet's store takes {limit} bytes a file)", file=sys.stderr)  # fmt: skip

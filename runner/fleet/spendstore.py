"""The fleet's spend ledger: one per month for every host, in a JetStream KV bucket.

A fleet host's prompt jobs book their model calls here instead of in their state directory
(runner.spend.FileStore), so a budget counts every machine's calls. The bucket is
`vigil-<config>-spend`, made by a coordinator when it starts (or by the first host that
needs it, where its NATS user may: the README's permissions let only coordinators); the key
is `spend-YYYY-MM` and the value the very JSON the ledger file holds, reservations carrying
their host. Every
change is a compare-and-set on the revision read: a write that lost to another host's is read
and made again (runner.spend.book), so runs on several machines at once never reserve the same
remainder. A month without a key starts from zero: a host's runs.jsonl holds only its own runs,
never the fleet's. NATS out of reach, a bucket that does not answer, or a ledger of a shape
this runner does not know (one a newer vigil wrote) is LedgerUnavailable: no model call, the
ledger left as it is.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

from runner import stateshapes
from runner.fleet.client import NatsError, NoResponders, Timeout
from runner.fleet.connect import connect
from runner.fleet.jetstream import STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE, JetStreamError
from runner.fleet.names import REPLICAS, spend_bucket
from runner.fsatomic import locked, state_path
from runner.spend import LOCK, LedgerUnavailable, SpendLedger, month_start

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime
    from typing import TypeVar

    from runner.fleet.jetstream import JetStream
    from runner.spectypes import FleetJSON

    R = TypeVar("R")

PATIENCE = 10.0
"""Seconds a booking waits for a cluster that answers nothing (electing a leader after a node
died) before the run gives up its call."""
RETRY = 0.25


def ledger_key(month: str) -> str:
    return f"spend-{month}"


class KvStore:
    """The month's ledger in the fleet's bucket (the methods of runner.spend.FileStore)."""

    def __init__(self, state_dir: str, config: str, timezone: str, fleet: FleetJSON) -> None:
        self.state_dir = state_dir
        self.config = config
        self.timezone = timezone
        self.fleet = fleet
        self.host = fleet["host"]
        self.bucket = spend_bucket(config)
        self.stream: JetStream | None = None

    @contextmanager
    def session(self) -> Iterator[object]:
        """One connection from the read to the write. This host's runs also take the state
        directory's lock: they book one after the other, and only other hosts' writes are
        ever a conflict."""
        with locked(state_path(self.state_dir, LOCK)):
            try:
                connection, self.stream = connect(self.config, self.fleet, "budget")
            except NatsError as error:
                raise self._unavailable(error) from None
            try:
                yield self
            finally:
                connection.close()
                self.stream = None

    def load(self, started: datetime) -> tuple[SpendLedger, int]:
        _, month = month_start(started, self.timezone)
        key = ledger_key(month)
        entry = self._patiently(lambda stream: stream.get(self.bucket, key), create=True)
        if entry is None or entry.value is None:
            return SpendLedger(month, {}, self.host), entry.revision if entry else 0
        try:
            data = json.loads(entry.value)
        except ValueError:
            data = None
        problem, usable = stateshapes.SPEND.check(data)
        if problem is not None or usable is None:
            raise LedgerUnavailable(
                f"the fleet's spend ledger ({key} in the NATS bucket {self.bucket}) "
                f"{problem or 'is not a JSON object'}: it is left as it is"
            )
        return SpendLedger(month, usable, self.host), entry.revision

    def save(self, ledger: SpendLedger, revision: int) -> bool:
        data = json.dumps(ledger.as_json(), sort_keys=True, separators=(",", ":")).encode()
        key = ledger_key(ledger.month)
        try:
            self._patiently(lambda stream: stream.put(self.bucket, key, data, last=revision))
        except LedgerUnavailable as error:
            cause = error.__cause__
            if isinstance(cause, JetStreamError) and cause.err_code == WRONG_LAST_SEQUENCE:
                return False  # another host wrote first: read it again
            raise
        return True

    def peek(self, now: datetime) -> SpendLedger:
        """This month's ledger for reports; LedgerUnavailable when it cannot be read."""
        with self.session():
            ledger, _ = self.load(now)
        ledger.release_abandoned(now)  # in memory: what the next booking will count
        return ledger

    def _patiently(self, operation: Callable[[JetStream], R], create: bool = False) -> R:
        """`operation` on the stream, again while the cluster elects a leader (up to
        PATIENCE); the bucket made first when it does not exist yet and `create`."""
        assert self.stream is not None
        give_up = time.monotonic() + PATIENCE
        while True:
            try:
                return operation(self.stream)
            except JetStreamError as error:
                if create and error.err_code == STREAM_NOT_FOUND:
                    self._create_bucket()
                    continue
                if error.err_code == WRONG_LAST_SEQUENCE or time.monotonic() >= give_up:
                    raise self._unavailable(error) from error
            except (NoResponders, Timeout) as error:
                if time.monotonic() >= give_up:
                    raise self._unavailable(error) from error
            except NatsError as error:
                raise self._unavailable(error) from error
            time.sleep(RETRY)

    def _create_bucket(self) -> None:
        assert self.stream is not None
        try:
            self.stream.ensure_bucket(self.bucket, replicas=REPLICAS)
        except NatsError as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: NatsError) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"the fleet's spend ledger (NATS bucket {self.bucket}) cannot be used: {error}"
        )

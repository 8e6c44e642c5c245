"""One active coordinator: a key in a KV bucket whose entries vanish 60% of `fleet.lease`
after their last write. The active coordinator renews it three times as often; a
standby looks every POLL and takes it with a create, which only one can win, once it is gone:
when the active coordinator dies, a standby is active within `fleet.lease`. At a cold start
(no holder seen yet) standbys lower in `coordinator.hosts` wait a little longer, so the
preferred one usually wins. A coordinator restarted on the host that holds the lease takes
it back at once (systemd runs one per host).
"""

from __future__ import annotations

import json
import os
import threading
import time

from runner.clock import iso, utc_now
from runner.fleet.client import NatsError
from runner.fleet.jetstream import WRONG_LAST_SEQUENCE, JetStream, JetStreamError, KeyExists
from runner.fleet.names import LEASE_KEY, lease_bucket

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable

PREFERENCE_STEP = 1.0
"""Seconds each place lower in coordinator.hosts waits at a cold start."""
POLL = 0.25
"""Seconds between a standby's looks at the lease."""
EXPIRY = 0.6
"""The share of `fleet.lease` a lease lasts unrenewed: the rest covers the server's expiry, a
standby's look and its taking office (loading the state), on a busy machine too."""
RENEWALS = 3
"""Renewals per expiry: two may fail (a slow node, a leader election) before it is lost."""


def expiry(lease: int) -> float:
    """Seconds the lease bucket keeps an entry: what a dead coordinator's lease lasts."""
    return lease * EXPIRY


def clock() -> float:
    """Seconds on a clock that also counts a suspended machine (a laptop's closed lid): a
    lease that ran out while asleep is out when it wakes."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Lease:
    def __init__(self, stream: JetStream, config: str, host: str, ttl: int, rank: int) -> None:
        self.stream = stream
        self.bucket = lease_bucket(config)
        self.host = host
        self.ttl = ttl
        self.rank = rank
        self.revision: int | None = None
        self.renewed = 0.0
        """clock() when the last successful write of the lease was sent."""
        self.absent_since: float | None = None
        self.seen_holder = False
        """A holder was seen: its lease ran out, so no one is waiting for a preferred host."""

    def value(self) -> bytes:
        return json.dumps({"host": self.host, "pid": os.getpid(), "since": iso(utc_now())}).encode()

    def valid_until(self) -> float:
        """clock() up to which this coordinator may write: its lease expires a renewal later
        (the margin covers a write on its way)."""
        lasts = expiry(self.ttl)
        return self.renewed + lasts - lasts / RENEWALS

    def valid(self) -> bool:
        return clock() < self.valid_until()

    def try_take(self) -> bool:
        """Take the lease if it is free (or this host's, from a coordinator that is gone: a
        restart); True when held."""
        entry = self.stream.get(self.bucket, LEASE_KEY)
        now = clock()
        try:
            if entry is not None and entry.value is not None:
                self.absent_since = None
                if holder(entry.value) != self.host or _alive_elsewhere(entry.value):
                    self.seen_holder = True
                    return False
                self.revision = self.stream.put(
                    self.bucket, LEASE_KEY, self.value(), last=entry.revision
                )
            else:
                if self.absent_since is None:
                    self.absent_since = now
                patience = 0 if self.seen_holder else self.rank * PREFERENCE_STEP
                if now - self.absent_since < patience:
                    return False
                self.revision = self.stream.create(self.bucket, LEASE_KEY, self.value())
        except KeyExists:
            return False
        except JetStreamError as error:
            if error.err_code == WRONG_LAST_SEQUENCE:
                return False
            raise
        self.renewed = now
        return True

    def renew(self) -> None:
        """Write the lease again, waiting no longer than it stays valid; JetStreamError (wrong
        last sequence) when it is not ours."""
        started = clock()
        self.stream.timeout = max(0.05, self.valid_until() - started)
        self.revision = self.stream.put(self.bucket, LEASE_KEY, self.value(), last=self.revision)
        self.renewed = started

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby need not wait for it to expire."""
        if self.revision is not None:
            self.stream.delete(self.bucket, LEASE_KEY, last=self.revision)
            self.revision = None


def _alive_elsewhere(value: bytes) -> bool:
    """Whether the lease names a live process of this host other than this one (a second
    coordinator started by hand)."""
    from runner.running import process_alive

    try:
        pid = json.loads(value).get("pid")
    except (ValueError, AttributeError):
        return False
    return isinstance(pid, int) and pid != os.getpid() and process_alive(pid)


def holder(value: bytes) -> str | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    host = data.get("host") if isinstance(data, dict) else None
    return host if isinstance(host, str) else None


class Renewer(threading.Thread):
    """Renews the lease on a connection of its own while the coordinator works. When the
    lease is lost (another host holds it) or cannot be renewed before it would expire, it
    calls `lost` at once: the coordinator must stop writing before a successor starts."""

    def __init__(self, lease: Lease, lost: Callable[[str], None]) -> None:
        super().__init__(name="lease", daemon=True)
        self.lease = lease
        self.lost = lost
        self.stopping = threading.Event()

    def run(self) -> None:
        every = expiry(self.lease.ttl) / RENEWALS
        while not self.stopping.wait(every):
            try:
                self.lease.renew()
            except NatsError as error:
                wrong = isinstance(error, JetStreamError) and error.err_code == WRONG_LAST_SEQUENCE
                if wrong or not self.lease.valid():
                    self.lost(str(error))
                    return
            if not self.lease.valid():  # renewed too late (a suspended machine, a stall)
                self.lost("renewed after it ran out")
                return

"""The spend ledger: model tokens and US dollars per job and calendar month, in the config's
timezone, kept in `state/spend-YYYY-MM.json`, which the rotation of runs.jsonl never touches.

Every model call is booked here under the ledger's lock: before the call its worst case is
reserved (runner.budget decides whether it fits), after it the reservation is replaced by what the
call used. Runs started together (a Persistent= catch-up) see each other's reservations, so they
cannot all spend the same remainder. A reservation whose run died is booked as spent (its worst
case, with a note: the call may have completed before the end); one whose live run is past its
time is released. A month without a ledger yet starts from what runs.jsonl holds for it
(a state directory from before the ledger keeps its spend). A ledger of another shape or
version is set aside with an alert (runner.statefile) and the month counted again the same way;
one that cannot be read stops every model call of the config (fail closed) and is never
overwritten.

Where the ledger is kept is a store's business: FileStore (the state directory, above) or, for
a fleet host, runner.fleet.spendstore.KvStore (one ledger for every host, in NATS). A booking
(`book`) reads the month's ledger from its store, changes it and writes it back; a store whose
write can lose to another writer's (a compare-and-set) makes `book` read and change it again.
A store that cannot be used raises LedgerUnavailable: no model call, as for an unreadable file.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from runner import stateshapes
from runner.clock import iso, parse_iso, zone
from runner.fsatomic import locked, state_path, write_state
from runner.history import Usage, usage_since
from runner.running import process_alive
from runner.statefile import StateUnreadable, load_state, peek_state

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Protocol, TypeVar

    T = TypeVar("T")

    class LedgerStore(Protocol):
        """Where a ledger is kept: FileStore, or runner.fleet.spendstore.KvStore."""

        def session(self) -> AbstractContextManager[object]: ...
        def load(self, started: datetime) -> tuple[SpendLedger, int]: ...
        def save(self, ledger: SpendLedger, revision: int) -> bool: ...
        def peek(self, now: datetime) -> SpendLedger: ...


LOCK = "spend.lock"
BOOKING_ATTEMPTS = 25
"""How often a booking reads and changes the ledger again when another writer was first."""


class LedgerUnavailable(Exception):
    """The ledger's store cannot be used now (for a fleet: NATS out of reach, the bucket not
    answering, or a ledger this runner cannot read): no model call whose spend could not be
    counted (fail closed). The message says why, for the run's reason and the journal."""


def month_start(now: datetime, timezone: str) -> tuple[datetime, str]:
    """The start of the calendar month of `now` in `timezone`, and its label (2026-02): the one
    definition of "this month" for budgets, `vigil cost` and `vigil status`."""
    try:
        local = now.astimezone(zone(timezone))
    except (LookupError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        local = now
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, start.strftime("%Y-%m")


def ledger_name(month: str) -> str:
    return f"spend-{month}.json"


class SpendLedger:
    """One month's spend (settled, per job) and the reservations of calls in flight.

    `host`: the fleet host booking (None: one machine). Its reservations carry it, and only
    this host's own reservations are judged by whether their process lives: another host's pid
    means nothing here. Another host's reservation stands until its `until` (the longest its
    calls may take, and a minute) and is booked as spent after it, with a note: still there
    then, its run ended without booking (its machine died, or it lost NATS), or is slow to;
    the one it may count twice is that late run's, never one it does not count."""

    def __init__(self, month: str, data: dict[str, object], host: str | None = None) -> None:
        self.month = month
        self.host = host
        self.problem: str | None = None
        """For reports: why the ledger file itself could not be used (shown from runs.jsonl)."""
        jobs = data.get("jobs")
        self.jobs: dict[str, Usage] = {}
        self.notes: dict[str, list[str]] = {}
        """Per job: how spend not known exactly was booked (a run that died holding one)."""
        for job, figures in (jobs if isinstance(jobs, dict) else {}).items():
            self.jobs[str(job)] = Usage.of(figures)
            notes = figures.get("notes") if isinstance(figures, dict) else None
            if isinstance(notes, list):
                self.notes[str(job)] = [str(note) for note in notes]
        held = data.get("reservations")
        self.reservations: dict[str, dict[str, object]] = {
            str(key): value
            for key, value in (held if isinstance(held, dict) else {}).items()
            if isinstance(value, dict)
        }

    def spent(self, job: str | None = None, *, reserved: bool = True) -> Usage:
        """Settled spend plus reservations, of `job` or (None) of every job."""
        total = Usage()
        for name, usage in self.jobs.items():
            if job is None or name == job:
                total.merge(usage)
        if reserved:
            for item in self.reservations.values():
                if job is None or item.get("job") == job:
                    total.merge(Usage.of(item))
        return total

    def reserve(self, key: str, job: str, worst: Usage, until: datetime) -> None:
        self.reservations[key] = {
            "job": job,
            "tokens": worst.tokens,
            "usd": worst.usd,
            "calls": worst.calls,
            "pid": os.getpid(),
            "until": iso(until),
            **({"host": self.host} if self.host is not None else {}),
        }

    def settle(self, key: str, job: str, used: Usage) -> None:
        self.reservations.pop(key, None)
        self.jobs.setdefault(job, Usage()).merge(used)

    def release_abandoned(self, now: datetime) -> list[str]:
        """Book the reservations of runs that died as spent, and drop those of live runs whose
        time is up; returns their keys. A run killed after its call completed never settled
        it: its worst case is booked, which can only overcount."""
        gone = []
        for key, item in list(self.reservations.items()):
            lapsed = (parse_iso(item.get("until")) or now) <= now
            host = item.get("host", self.host)
            if host != self.host:  # another machine's run: only its time tells
                if not lapsed:
                    continue
                self._book_dead(item, now, f"a run on {host} (pid {item.get('pid')})")
            elif not process_alive(item.get("pid")):
                self._book_dead(item, now, f"a run (pid {item.get('pid')})")
            elif not lapsed:
                continue
            del self.reservations[key]
            gone.append(key)
        return gone

    def _book_dead(self, item: dict[str, object], now: datetime, run: str) -> None:
        job = str(item.get("job"))
        worst = Usage.of(item)
        self.jobs.setdefault(job, Usage()).merge(worst)
        self.notes.setdefault(job, []).append(
            f"{iso(now)}: {run} ended without booking its calls: its reservation of "
            f"{worst.tokens} tokens, {worst.usd:.4f} USD is booked as spent (it may have used "
            "less)"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "version": stateshapes.SPEND.version,
            "month": self.month,
            "jobs": {job: self._entry(job, usage) for job, usage in sorted(self.jobs.items())},
            "reservations": {key: dict(item) for key, item in self.reservations.items()},
        }

    def _entry(self, job: str, usage: Usage) -> dict[str, object]:
        notes = self.notes.get(job)
        return {**usage.as_json(), "notes": list(notes)} if notes else usage.as_json()


def read_ledger(
    state_dir: str,
    config: str,
    timezone: str,
    now: datetime,
    history: dict[str, Usage] | None = None,
) -> SpendLedger:
    """This month's ledger as the next run will find it, for reports: no lock, nothing
    written. A ledger of another shape, or one that cannot be read, is shown from runs.jsonl,
    with `problem` saying why; `history` is the month's usage per job from runs.jsonl when the
    caller has already read it (then it is not read again)."""
    since, month = month_start(now, timezone)
    name = ledger_name(month)
    try:
        data, problem = peek_state(state_dir, name, stateshapes.SPEND)
    except StateUnreadable as error:
        ledger = _from_history(state_dir, config, since, month, history)
        ledger.problem = f"{error}: the model is not called until it can be read"
        return ledger
    if not data:
        ledger = _from_history(state_dir, config, since, month, history)
        if problem is not None:
            ledger.problem = f"state/{name} {problem}; {stateshapes.SPEND.reset}"
        return ledger
    ledger = SpendLedger(month, data)
    ledger.release_abandoned(now)  # in memory: what the next booking will count
    return ledger


def open_ledger(state_dir: str, config: str, timezone: str, now: datetime) -> SpendLedger:
    """This month's ledger for booking (under its lock): one of another shape is set aside
    with an alert and the month counted again from runs.jsonl (as for a month without a
    ledger yet). Raises StateUnreadable when it cannot be read: it is never overwritten."""
    since, month = month_start(now, timezone)
    data = load_state(state_dir, ledger_name(month), stateshapes.SPEND, now)
    return SpendLedger(month, data) if data else _from_history(state_dir, config, since, month)


def _from_history(
    state_dir: str,
    config: str,
    since: datetime,
    month: str,
    history: dict[str, Usage] | None = None,
) -> SpendLedger:
    ledger = SpendLedger(month, {})
    if history is None:
        history, _ = usage_since(state_dir, config, since, month_end(since))
    ledger.jobs = history
    return ledger


def month_end(since: datetime) -> datetime:
    """The start of the month after the one `since` (a month's start) begins."""
    return (since + timedelta(days=32)).replace(day=1)


class FileStore:
    """The ledger in `<state>/state/spend-YYYY-MM.json`, changed under `state/spend.lock`: no
    other writer can come between the read and the write."""

    def __init__(self, state_dir: str, config: str, timezone: str) -> None:
        self.state_dir = state_dir
        self.config = config
        self.timezone = timezone

    def session(self) -> AbstractContextManager[object]:
        """Held from the read to the write."""
        return locked(state_path(self.state_dir, LOCK))

    def load(self, started: datetime) -> tuple[SpendLedger, int]:
        """The ledger of `started`'s month and its revision (files have none: 0)."""
        return open_ledger(self.state_dir, self.config, self.timezone, started), 0

    def save(self, ledger: SpendLedger, revision: int) -> bool:
        """Write `ledger` back; False when another writer was first (never, under the lock)."""
        del revision  # a file has none: the lock keeps other writers out
        write_state(self.state_dir, ledger_name(ledger.month), ledger.as_json())
        return True

    def peek(self, now: datetime) -> SpendLedger:
        """This month's ledger for reports (nothing written)."""
        return read_ledger(self.state_dir, self.config, self.timezone, now)


class Booking:
    """The ledger of the month a run started in (`started`), open under its store's session
    at `now` (the run's clock); written back when it was changed. Without `store`, the state
    directory's file. A store whose write lost to another writer raises Conflict on exit:
    `book` reads and changes the ledger again."""

    def __init__(
        self,
        state_dir: str,
        config: str,
        timezone: str,
        started: datetime,
        now: datetime,
        store: LedgerStore | None = None,
    ) -> None:
        self.store = store or FileStore(state_dir, config, timezone)
        self.started = started
        self.now = now

    def __enter__(self) -> SpendLedger:
        self._session = self.store.session()
        self._session.__enter__()
        try:
            self.ledger, self.revision = self.store.load(self.started)
            self.before = self.ledger.as_json()
            self.ledger.release_abandoned(self.now)  # written back even when nothing is reserved
        except BaseException:
            self._session.__exit__(None, None, None)
            raise
        return self.ledger

    def __exit__(self, *error: object) -> None:
        try:
            changed = error[0] is None and self.ledger.as_json() != self.before
            if changed and not self.store.save(self.ledger, self.revision):
                raise Conflict(self.ledger.month)
        finally:
            self._session.__exit__(None, None, None)


class Conflict(Exception):
    """Another writer changed the ledger between this booking's read and its write."""


def book(
    store: LedgerStore, started: datetime, now: datetime, change: Callable[[SpendLedger], T]
) -> T:
    """`change` the ledger of `started`'s month at `now` and write it back if it changed;
    read and changed again (up to BOOKING_ATTEMPTS times) when another writer was first, so
    `change` must only change the ledger. Its result."""
    with store.session():
        for attempt in range(BOOKING_ATTEMPTS):
            ledger, revision = store.load(started)
            before = ledger.as_json()
            ledger.release_abandoned(now)  # written back even when nothing is reserved
            result = change(ledger)
            if ledger.as_json() == before or store.save(ledger, revision):
                return result
            time.sleep(os.urandom(1)[0] / 255 * 0.01 * (attempt + 1))  # let the other writer by
    raise LedgerUnavailable(
        f"the spend ledger changed under every one of {BOOKING_ATTEMPTS} tries to book"
    )

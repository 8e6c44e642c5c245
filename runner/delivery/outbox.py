"""The outbox: messages waiting for their channel, with retries, backoff and dead letters.

`<state>/outbox/<id>.json` holds one message and its delivery bookkeeping (attempts, last error,
next attempt). A delivery run sends every message that is due: success is recorded in the ledger
and then the queue file goes; a failure waits `backoff * 2**(attempts-1)` (at most
`max_backoff`); after `attempts` failures the file moves to `<state>/outbox/dead/` and the
`fallback` channel hears about it once. Nothing is dropped silently: at least once. A `file`
channel is exactly once even when a run dies between sending and recording: the queue file is
marked `sending` first, and the next run looks for the message's line before appending it again.
A command or apprise channel cannot be asked, so it may get a message twice (same {id}).
A queue file's MessageState (queued, retrying, sending, dead) follows from that bookkeeping
alone: message_state() reads it, for delivery and for `vigil outbox`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from enum import StrEnum

from runner import clock
from runner.clock import iso, parse_iso
from runner.contract import (
    DEAD,
    DELIVERY_ATTEMPTS,
    DELIVERY_BACKOFF,
    DELIVERY_MAX_BACKOFF,
    OUTBOX,
)
from runner.delivery.channels import SendContext, file_end, file_holds, prune_evidence, send
from runner.delivery.ledger import DeliveryLedger
from runner.delivery.message import DeliveryOutcome, Message
from runner.fsatomic import describe, ensure_dir, fsync_dir, locked, settle_mirror, write_atomic

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import ChannelJSON, CoordinatorSpecJSON

LOCK = ".lock"
SAFE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class MessageState(StrEnum):
    """Where a queue file's message is in its delivery, as message_state() reads it from the
    file's bookkeeping and folder (a delivered message has no queue file: the ledger has it)."""

    QUEUED = "queued"
    """Not tried yet."""
    RETRYING = "retrying"
    """Failed; tried again at `next_attempt`."""
    SENDING = "sending"
    """Its send began and the outcome is not recorded: being sent now, or the run sending it
    died (the next run looks in a file channel's file before appending it again)."""
    DEAD = "dead"
    """Given up on, in `outbox/dead/`: marked so before it is moved there."""
    UNREADABLE = "unreadable"
    """The queue file is no readable message: the next run moves it to `outbox/dead/`."""


def message_state(entry: dict[str, Any] | None, *, dead_letter: bool = False) -> MessageState:
    """The state of a queue file's `entry` (None: unreadable), `dead_letter` if it is in
    `outbox/dead/`."""
    if entry is None:
        return MessageState.UNREADABLE
    if dead_letter or entry.get("dead") is not None:
        return MessageState.DEAD
    if entry.get("sending") is not None:
        return MessageState.SENDING
    if int(entry.get("attempts") or 0):
        return MessageState.RETRYING
    return MessageState.QUEUED


class DeliveryReport:
    COUNTS = ("delivered", "retrying", "dead", "skipped", "waiting")
    """The counters, in the order the coordinator reports them."""

    def __init__(self) -> None:
        self.delivered = 0
        self.retrying = 0
        """Failed in this run; another attempt is scheduled."""
        self.dead = 0
        self.skipped = 0
        """Already in the ledger: delivered before, the queue file was removed."""
        self.waiting = 0
        """Not due yet (an earlier failure's backoff is still running)."""
        self.next_retry: datetime | None = None
        """The earliest next attempt of anything still queued."""

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}

    def wait_until(self, moment: datetime) -> None:
        if self.next_retry is None or moment < self.next_retry:
            self.next_retry = moment


class RetryPolicy:
    def __init__(
        self,
        attempts: int = DELIVERY_ATTEMPTS,
        backoff: float = DELIVERY_BACKOFF,
        max_backoff: float = DELIVERY_MAX_BACKOFF,
        fallback: str | None = None,
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.fallback = fallback

    @classmethod
    def from_spec(cls, spec: CoordinatorSpecJSON) -> RetryPolicy:
        coordinator = spec.get("coordinator")
        delivery = coordinator.get("delivery") if coordinator else None
        policy = cls()
        if not delivery:
            return policy
        return cls(
            attempts=max(1, int(delivery.get("attempts") or policy.attempts)),
            backoff=float(delivery.get("backoff") or policy.backoff),
            max_backoff=float(delivery.get("max_backoff") or policy.max_backoff),
            fallback=delivery.get("fallback") or None,
        )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure."""
        return float(min(self.backoff * 2 ** (attempts - 1), self.max_backoff))


def outbox_dir(state_dir: str) -> str:
    return os.path.join(state_dir, OUTBOX)


def file_name(message_id: str) -> str:
    """The id itself when it is a safe file name (the coordinator's hashes are), else a hash."""
    if 0 < len(message_id) <= 128 and set(message_id) <= SAFE_ID_CHARS:
        return f"{message_id}.json"
    from runner.digest import hexdigest

    return f"id-{hexdigest(message_id)[:40]}.json"


def alert_id(message_id: str) -> str:
    """The dead-letter alert's id: derived, so one dead message never alerts twice."""
    return f"dead-{message_id}"


Carried = tuple[list[str] | None, list[str] | None]
"""(named, keys) of a message as it was first queued; None where that is not known."""


def enqueue(state_dir: str | os.PathLike[str], message: Message) -> Carried:
    """Queue `message` once: nothing happens when its id is queued, dead or delivered. Returns
    the alerts the message named and carried as it was first queued (a rerun after a crash
    may compose it otherwise)."""
    state = os.fspath(state_dir)
    with locked(os.path.join(outbox_dir(state), LOCK)):
        ledger = DeliveryLedger.load(state)
        if _put(state, message, ledger, clock.now()):
            return message.named, message.keys
        return _carried_before(state, message.id, ledger)


def carried(state_dir: str | os.PathLike[str], message_id: str) -> Carried:
    """What the message `message_id` named and carried, if it was ever queued (queued, dead or
    delivered); (None, None) if not, or if that is not known."""
    state = os.fspath(state_dir)
    with locked(os.path.join(outbox_dir(state), LOCK)):
        return _carried_before(state, message_id, DeliveryLedger.load(state))


def _carried_before(state: str, message_id: str, ledger: DeliveryLedger) -> Carried:
    record: dict[str, Any] | None = None
    if message_id in ledger:
        record = ledger.entries[message_id]
    else:
        name = file_name(message_id)
        for path in (
            os.path.join(outbox_dir(state), name),
            os.path.join(outbox_dir(state), DEAD, name),
        ):
            entry = _read_entry(path)
            if entry is not None:
                record = entry["message"]
                break
    if record is None:
        return None, None
    named, keys = record.get("named"), record.get("keys")
    return (
        named if isinstance(named, list) else None,
        keys if isinstance(keys, list) else None,
    )


def _put(
    state: str,
    message: Message,
    ledger: DeliveryLedger,
    now: datetime,
    alert_for: str | None = None,
) -> bool:
    name = file_name(message.id)
    queued = os.path.join(outbox_dir(state), name)
    dead = os.path.join(outbox_dir(state), DEAD, name)
    if message.id in ledger or os.path.exists(queued) or os.path.exists(dead):
        return False
    entry: dict[str, Any] = {
        "message": message.to_json(),
        "queued": iso(now),
        "attempts": 0,
        "next_attempt": None,
        "last_attempt": None,
        "last_error": None,
        "exit_status": None,
    }
    if alert_for is not None:
        entry["alert_for"] = alert_for
    _write_entry(state, queued, entry)
    return True


def _write_entry(state: str, path: str, entry: dict[str, Any]) -> None:
    data = json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    write_atomic(state, path, data + b"\n")


def _read_entry(path: str) -> dict[str, Any] | None:
    try:
        return _load_entry(path)
    except (OSError, ValueError):
        return None


def _load_entry(path: str) -> dict[str, Any]:
    """A queue file's entry; OSError or ValueError (saying what is wrong) when it is none."""
    with open(path, encoding="utf-8") as handle:
        entry = json.load(handle)
    if not isinstance(entry, dict):
        raise ValueError("expected an object")
    Message.from_json(entry.get("message"))
    return entry


def _problem(path: str) -> str:
    try:
        _load_entry(path)
    except OSError as error:
        return describe(error)
    except ValueError as error:  # json's own errors say where
        return str(error)
    return "it changed while it was read"


def _queue_files(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(
        os.path.join(directory, n)
        for n in names
        if n.endswith(".json") and not n.startswith(".")
        if os.path.isfile(os.path.join(directory, n))
    )


def deliver_due(
    spec: CoordinatorSpecJSON,
    state_dir: str | os.PathLike[str],
    now: datetime,
    credentials_dir: str | os.PathLike[str] | None,
) -> DeliveryReport:
    """Try every queued message whose next attempt is due. One run at a time (flock)."""
    state = os.fspath(state_dir)
    if not _queue_files(outbox_dir(state)):
        return DeliveryReport()  # nothing queued: no lock, no ledger read
    with locked(os.path.join(outbox_dir(state), LOCK)):
        run = _DeliveryRun(spec, state, now, credentials_dir)
        return run.deliver_all()


def _say(text: str) -> None:
    print(f"vigil: {text}", file=sys.stderr)


class _DeliveryRun:
    def __init__(
        self,
        spec: CoordinatorSpecJSON,
        state: str,
        now: datetime,
        credentials_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.now = now
        self.report = DeliveryReport()
        self.policy = RetryPolicy.from_spec(spec)
        self.channels: dict[str, ChannelJSON] = spec.get("channels") or {}
        self.context = SendContext(state, credentials_dir, now)
        self.ledger = DeliveryLedger.load(state)
        self.alerts: list[str] = []
        self.quiet: bool | None = None

    def _quiet(self) -> bool:
        if self.quiet is None:
            from runner.compose import in_quiet_hours

            self.quiet = "coordinator" in self.spec and in_quiet_hours(self.spec, self.now)
        return self.quiet

    def deliver_all(self) -> DeliveryReport:
        if self.ledger.prune(self.now):
            self.ledger.save()
        prune_evidence(self.state, self.now)
        queue = [(path, _read_entry(path)) for path in _queue_files(outbox_dir(self.state))]
        queue.sort(key=lambda item: (str((item[1] or {}).get("queued") or ""), item[0]))
        for path, entry in queue:
            self._deliver(path, entry)
        # Dead-letter alerts queued by this run go out in this run.
        for path in self.alerts:
            self._deliver(path, _read_entry(path))
        return self.report

    def _deliver(self, path: str, entry: dict[str, Any] | None) -> None:
        state = message_state(entry)
        if state is MessageState.UNREADABLE:
            if os.path.exists(path):
                self._unreadable(path)
            return
        assert entry is not None  # a readable message
        message = Message.from_json(entry["message"])
        if message.id in self.ledger:
            _remove(path)
            self.report.skipped += 1
            return
        # Marked dead by a run that died before moving it, or `attempts` lowered since.
        if state is MessageState.DEAD or int(entry.get("attempts") or 0) >= self.policy.attempts:
            self._dead(path, entry, message)
            return
        due = parse_iso(entry.get("next_attempt"))
        if due is not None and due > self.now:
            self.report.waiting += 1
            self.report.wait_until(due)
            return
        if not message.urgent and self._quiet():
            # Queued before quiet hours began (a retry, or a run killed before it delivered):
            # it waits for their end like the alerts they hold.
            self.report.waiting += 1
            return
        channel = self.channels.get(message.channel)
        if channel is None:  # removed from the config: no retry can help
            entry["last_error"] = f"no channel named {message.channel!r} in the config"
            self._dead(path, entry, message)
            return
        if (file := channel.get("file")) and not self._mark_sending(path, entry, message, file):
            return
        settle_mirror()  # a fleet's successor must find what this run is about to send
        outcome = send(message.channel, channel, message, self.context)
        if outcome.ok:
            self.ledger.record(message, self.now, outcome.exit_status)
            _remove(path)
            self.report.delivered += 1
            _say(f"delivered message {message.id} to {message.channel}")
        else:
            self._failed(path, entry, message, outcome)

    def _mark_sending(self, path: str, entry: dict[str, Any], message: Message, file: str) -> bool:
        """False when an earlier run already appended the message (it died before the ledger
        was written): the ledger is brought up to date instead of appending a duplicate.
        Otherwise the entry records where the line will go, before it is appended."""
        sending = entry.get("sending")
        offset = sending.get("offset") if isinstance(sending, dict) else None
        if isinstance(offset, int) and file_holds(file, message.id, offset):
            self.ledger.record(message, self.now, None)
            _remove(path)
            self.report.skipped += 1
            _say(f"message {message.id} to {message.channel} was delivered by a run that died")
            return False
        entry["sending"] = {"at": iso(self.now), "offset": file_end(file)}
        _write_entry(self.state, path, entry)
        return True

    def _failed(
        self, path: str, entry: dict[str, Any], message: Message, outcome: DeliveryOutcome
    ) -> None:
        attempts = int(entry.get("attempts") or 0) + 1
        # A command's stderr may echo a credential of ours: never into the outbox or journal.
        from runner.redact import from_credentials

        directory = self.context.credentials_dir
        error = from_credentials(os.fspath(directory) if directory else None).text(outcome.error)
        entry.pop("sending", None)  # not appended (a torn line is told apart by file_holds)
        entry.update(
            attempts=attempts,
            last_attempt=iso(self.now),
            last_error=error,
            exit_status=outcome.exit_status,
        )
        where = f"message {message.id} to {message.channel}"
        if attempts >= self.policy.attempts:
            self._dead(path, entry, message)
            return
        retry = _whole_second(self.now + timedelta(seconds=self.policy.delay(attempts)))
        entry["next_attempt"] = iso(retry)
        _write_entry(self.state, path, entry)
        self.report.retrying += 1
        self.report.wait_until(retry)
        _say(
            f"{where}: attempt {attempts} of {self.policy.attempts} failed: {error}; "
            f"next attempt at {iso(retry)}"
        )

    def _dead(self, path: str, entry: dict[str, Any], message: Message) -> None:
        """Alert first, then move: a crash in between repeats the move, never loses the alert."""
        entry.update(next_attempt=None, dead=iso(self.now))
        _write_entry(self.state, path, entry)
        attempts, error = entry.get("attempts"), entry.get("last_error")
        _say(
            f"message {message.id} to {message.channel} dead-lettered after {attempts} "
            f"attempt(s): {error}; kept in {OUTBOX}/{DEAD}/{os.path.basename(path)}"
        )
        if entry.get("alert_for") is None:
            self._alert(message, f"{attempts} attempt(s) failed; last error: {error}")
        self._move_to_dead(path)
        self.report.dead += 1

    def _unreadable(self, path: str) -> None:
        name = os.path.basename(path)
        problem = _problem(path)
        _say(
            f"queue file {OUTBOX}/{name} is unreadable ({problem}); moved to {OUTBOX}/{DEAD}/{name}"
        )
        stand_in = Message(
            id=name.removesuffix(".json"),
            channel="?",
            title=f"unreadable queue file {name}",
            body="",
            urgent=True,
            created=iso(self.now),
            sources=[],
        )
        self._alert(stand_in, f"the queue file is not a readable message ({problem})")
        self._move_to_dead(path)
        self.report.dead += 1

    def _alert(self, message: Message, why: str) -> None:
        """One alert per dead message to the fallback channel, or the journal when there is none."""
        fallback = self.policy.fallback
        if not fallback or fallback == message.channel or fallback not in self.channels:
            reason = "no fallback channel" if not fallback else f"fallback {fallback!r} unusable"
            _say(f"undelivered ({reason}): [{message.channel}] {message.title}\n{message.body}")
            return
        alert = Message(
            id=alert_id(message.id),
            channel=fallback,
            title=f"{self.spec.get('config') or 'vigil'}: a message could not be delivered",
            body=(
                f"To {message.channel}: {why}. It is kept in {OUTBOX}/{DEAD}/.\n\n"
                f"{message.title}\n{message.body}"
            ).rstrip(),
            urgent=True,
            created=iso(self.now),
            sources=message.sources,
            evidence={"dead_letter": {"id": message.id, "channel": message.channel}},
        )
        if _put(self.state, alert, self.ledger, self.now, alert_for=message.id):
            self.alerts.append(os.path.join(outbox_dir(self.state), file_name(alert.id)))

    def _move_to_dead(self, path: str) -> None:
        dead_dir = ensure_dir(os.path.join(outbox_dir(self.state), DEAD))
        os.replace(path, os.path.join(dead_dir, os.path.basename(path)))
        fsync_dir(dead_dir)
        fsync_dir(os.path.dirname(path))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(os.path.dirname(path))


def _whole_second(moment: datetime) -> datetime:
    """Round up, so a retry is never due before its backoff ran out."""
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def outbox_status(state_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every message in the outbox, queued, retrying, sending or dead, with its bookkeeping
    and its MessageState, oldest first."""
    rows = []
    outbox = outbox_dir(os.fspath(state_dir))
    for directory, dead in ((outbox, False), (os.path.join(outbox, DEAD), True)):
        for path in _queue_files(directory):
            rows.append(_status_row(path, dead))
    return sorted(rows, key=lambda row: (str(row.get("queued") or ""), str(row["file"])))


def _status_row(path: str, dead: bool) -> dict[str, Any]:
    entry = _read_entry(path)
    name = os.path.basename(path)
    state = message_state(entry, dead_letter=dead)
    if entry is None:
        return {"file": name, "id": name.removesuffix(".json"), "state": state}
    message = entry["message"]
    return {
        "file": name,
        "id": message["id"],
        "channel": message["channel"],
        "title": message["title"],
        "created": message["created"],
        "queued": entry.get("queued"),
        "state": state,
        "attempts": int(entry.get("attempts") or 0),
        "last_error": entry.get("last_error"),
        "last_attempt": entry.get("last_attempt"),
        "next_attempt": None if state is MessageState.DEAD else entry.get("next_attempt"),
        "exit_status": entry.get("exit_status"),
    }

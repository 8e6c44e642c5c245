"""The fleet coordinator: `python -m runner coordinator SPEC` for a spec with `fleet:`, a
long-running service on every host in `coordinator.hosts`.

Each waits for the lease (runner.fleet.lease); the one holding it is active: it loads the
state bucket into its working directory (runner.fleet.mirror), then takes findings from the
durable consumer, writes them as a claim (into KV with everything else the pass writes), and
only then acknowledges them; the pass itself is the single machine's (runner.coordinator).
Redelivered findings the claims already hold are dropped by their stream sequence, kept with
the claim. Every heartbeat it also makes a pass without findings (quiet hours ending,
watches, retries) and looks for hosts that stopped reporting.

A coordinator that cannot renew its lease exits at once (systemd starts it again, as a
standby): it must stop writing before a successor begins. SIGTERM finishes the pass under
way and hands the lease back, so a standby takes over without waiting for it to expire.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import suppress

from runner import clock
from runner.contract import FLEET_WORK, OUTBOX
from runner.exitcodes import OK
from runner.fleet import names
from runner.fleet.client import NatsError
from runner.fleet.connect import connect
from runner.fleet.forward import HOST_HEADER
from runner.fleet.jetstream import (
    ACK,
    CONSUMER_NOT_FOUND,
    JetStream,
    JetStreamError,
    stream_sequence,
)
from runner.fleet.lease import POLL, Lease, Renewer, expiry
from runner.fleet.mirror import Mirror
from runner.fsatomic import ensure_dir, read_state, safe_name, write_atomic, write_state
from runner.stopping import StopRequest

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable

    from runner.fleet.client import Msg
    from runner.spectypes import CoordinatorSpecJSON

    Pass = Callable[[CoordinatorSpecJSON, bool], int]

BATCH = 256
"""Findings taken from the stream at most per claim."""
FETCH_WAIT = 1.0
"""Seconds one fetch waits for a finding (a stop is noticed within this)."""
RETRY_PASS = 30.0
"""Seconds between passes while the outbox holds messages waiting for a retry."""
RECONNECT = 2.0
ACK_WAIT = 60
CONSUMED = "fleet-consumed.json"
"""Under state/: the stream sequence of the last finding the claims hold."""


def setup(stream: JetStream, config: str, lease: int) -> None:
    """The stream, the buckets and the consumer, created the first time (idempotent)."""
    stream.ensure_stream(
        {
            "name": names.findings_stream(config),
            "subjects": [names.findings_subject(config, "*")],
            "retention": "workqueue",
            "max_age": names.MAX_FINDING_AGE * 10**9,
            "duplicate_window": names.PUBLISH_DEDUP_WINDOW * 10**9,
            "storage": "file",
            "num_replicas": names.REPLICAS,
        }
    )
    stream.ensure_bucket(names.state_bucket(config), replicas=names.REPLICAS)
    stream.ensure_bucket(names.lease_bucket(config), ttl=expiry(lease), replicas=names.REPLICAS)
    stream.ensure_bucket(names.hosts_bucket(config), replicas=names.REPLICAS)
    stream.ensure_bucket(names.spend_bucket(config), replicas=names.REPLICAS)
    stream.ensure_consumer(names.findings_stream(config), CONSUMER_CONFIG)


CONSUMER_CONFIG: dict[str, object] = {
    "durable_name": names.CONSUMER,
    "ack_policy": "explicit",
    "ack_wait": ACK_WAIT * 10**9,
    "deliver_policy": "all",
    "max_ack_pending": 4 * BATCH,
}


def take_over_consumer(stream: JetStream, config: str) -> None:
    """A new consumer in place of the predecessor's: what was delivered to it and never
    acknowledged comes at once, instead of after the ack wait. The stream keeps only what
    no coordinator acknowledged (work-queue retention), so nothing is skipped; what the
    loaded claims already hold is dropped by its sequence."""
    name = names.findings_stream(config)
    try:
        stream.api(f"CONSUMER.DELETE.{name}.{names.CONSUMER}")
    except JetStreamError as error:
        if error.err_code != CONSUMER_NOT_FOUND:
            raise
    stream.ensure_consumer(name, CONSUMER_CONFIG)


def main(spec: CoordinatorSpecJSON, one_pass: Pass) -> int:
    """`one_pass` is runner.coordinator.timed_pass (passed in: that module starts this one)."""
    stop = StopRequest()
    said = ""
    while not stop.requested:
        try:
            return _serve(spec, one_pass, stop)
        except NatsError as error:
            if str(error) != said:
                print(f"vigil: coordinator: {error}; trying again", file=sys.stderr)
                said = str(error)
            stop.during(_sleep, RECONNECT)
    return OK


def _serve(spec: CoordinatorSpecJSON, one_pass: Pass, stop: StopRequest) -> int:
    fleet = spec["fleet"]
    host = fleet["host"]
    connection, stream = connect(spec["config"], fleet, "coordinator")
    with connection:
        setup(stream, spec["config"], fleet["lease"])
        rank = fleet["coordinator_hosts"].index(host) if host in fleet["coordinator_hosts"] else 9
        lease = Lease(stream, spec["config"], host, fleet["lease"], rank)
        waiting = False
        while not lease.try_take():
            if not waiting:
                print(f"coordinator: standby on {host}: another host is active", file=sys.stderr)
                waiting = True
            if not stop.during(_sleep, POLL) and stop.requested:
                return OK
        return _lead(spec, one_pass, stream, lease, stop)


def _lead(
    spec: CoordinatorSpecJSON, one_pass: Pass, stream: JetStream, lease: Lease, stop: StopRequest
) -> int:
    fleet = spec["fleet"]
    host, config = fleet["host"], spec["config"]
    renewing, lease.stream = connect(config, fleet, "lease")

    def lost(why: str) -> None:
        print(f"vigil: coordinator on {host}: lease lost ({why}); standing by", file=sys.stderr)
        sys.stderr.flush()
        os._exit(OK)  # no more writes from this process; systemd starts a standby

    renewer = Renewer(lease, lost)
    renewer.start()
    work = ensure_dir(os.path.join(spec["state_dir"], FLEET_WORK))
    mirror = Mirror(stream, names.state_bucket(config), work, lease.valid)
    try:
        loaded = mirror.load()
        take_over_consumer(stream, config)
        print(f"coordinator: active on {host} ({loaded} state files from the fleet)",
              file=sys.stderr)  # fmt: skip
        mirror.attach()
        _work(spec, one_pass, stream, mirror, stop)
    finally:
        mirror.detach()
        renewer.stopping.set()
        renewer.join()
        if stop.requested:
            with suppress(NatsError):  # it expires
                lease.release()
        renewing.close()
    return OK


def _work(
    spec: CoordinatorSpecJSON, one_pass: Pass, stream: JetStream, mirror: Mirror, stop: StopRequest
) -> None:
    from runner.fleet import silence

    work = mirror.work_dir
    work_spec: CoordinatorSpecJSON = {**spec, "state_dir": work, "timers": {}}
    heartbeat = float(spec["coordinator"]["heartbeat"])
    stream_name = names.findings_stream(spec["config"])
    created = stream.api(f"STREAM.INFO.{stream_name}").get("created")
    through = _through(work, created)
    took_office = clock.now()
    next_pass = time.monotonic()  # at once: claims and messages a predecessor left
    next_check = time.monotonic() + heartbeat
    while not stop.requested:
        wait = min(FETCH_WAIT, max(0.0, next_pass - time.monotonic()))
        messages = stream.fetch(stream_name, names.CONSUMER, BATCH, wait)
        claimed = _claimed(work, through) if messages else None
        fresh = [m for m in messages if claimed and stream_sequence(m.reply) not in claimed]
        if fresh:
            through = _claim(work, fresh, through, created)
            mirror.settle()  # the claim is the fleet's before the stream forgets the findings
        if messages:
            mirror.check()  # no acknowledgement from a coordinator whose lease ran out
        _ack(stream, messages)
        if not fresh and time.monotonic() < next_pass:
            continue
        silent = None
        if time.monotonic() >= next_check:
            silent = silence.check(stream, spec, work, clock.now(), took_office)
            next_check = time.monotonic() + heartbeat
        one_pass(work_spec, False)
        if silent is not None:
            silence.save(work, silent)
        mirror.removed()  # settles first
        retry = (
            os.listdir(os.path.join(work, OUTBOX))
            if os.path.isdir(os.path.join(work, OUTBOX))
            else []
        )
        next_pass = time.monotonic() + (
            RETRY_PASS if retry else min(heartbeat, next_check - time.monotonic())
        )


class _Claimed:
    """Sequences the claims hold: up to `through`, and those of claims being written."""

    def __init__(self, through: int, held: set[int]) -> None:
        self.through = through
        self.held = held

    def __contains__(self, sequence: int) -> bool:
        return sequence <= self.through or sequence in self.held


def _claimed(work: str, through: int) -> _Claimed:
    """A predecessor killed while writing a claim left part of it (in KV, loaded here) and
    no `through` for it: those findings come again, and are dropped by their file names."""
    from runner.contract import PROCESSING

    held: set[int] = set()
    with suppress(FileNotFoundError):
        for claim in os.scandir(os.path.join(work, PROCESSING)):
            if claim.is_dir():
                held.update(
                    int(name.split("-", 1)[0])
                    for name in os.listdir(claim.path)
                    if name.split("-", 1)[0].isdigit()
                )
    return _Claimed(through, held)


def _through(work: str, created: object) -> int:
    """The last sequence the claims hold, of the stream as it is now: a stream made anew (a
    NATS store lost, `nats stream rm`) numbers from 1 again, and nothing of it is claimed."""
    consumed = read_state(work, CONSUMED)
    through = consumed.get("through")
    if not isinstance(through, int):
        return 0
    if consumed.get("stream") != created:
        print("vigil: coordinator: the findings stream was made anew: its sequences start "
              "over", file=sys.stderr)  # fmt: skip
        return 0
    return through


def _claim(work: str, messages: list[Msg], through: int, created: object) -> int:
    """Write the findings as a claim (each file into KV as it lands), then the sequence they
    reach: after this, they are the coordinator's, and acknowledging them loses nothing."""
    from runner.contract import PROCESSING
    from runner.intake import claim_name

    directory = ensure_dir(os.path.join(work, PROCESSING, claim_name(clock.now())))
    for message in messages:
        sequence = stream_sequence(message.reply)
        host = message.headers.get(HOST_HEADER) or message.subject.rsplit(".", 1)[-1]
        name = f"{sequence:012d}-{safe_name(host)}.json"
        write_atomic(work, os.path.join(directory, name), message.data)
    # The highest: a fetch joins two pulls, and the second may bring back an earlier one.
    through = max(through, *(stream_sequence(m.reply) for m in messages))
    write_state(work, CONSUMED, {"version": 1, "through": through, "stream": created})
    return through


def _ack(stream: JetStream, messages: list[Msg]) -> None:
    """Acknowledge all, without waiting: an acknowledgement that is lost makes the stream
    deliver the finding again, which the claims' sequences drop."""
    for message in messages:
        stream.connection.publish(message.reply, ACK)


def _queued(work: str) -> bool:
    """Whether the outbox holds messages (waiting for a retry, or for quiet hours to end)."""
    try:
        return any(name.endswith(".json") for name in os.listdir(os.path.join(work, OUTBOX)))
    except FileNotFoundError:
        return False


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True

"""`python -m runner forward SPEC`: a fleet host's inbox to the findings stream.

Started by the host's path unit when a finding lands (and by its heartbeat timer). Jobs keep
writing findings into the local inbox; the forwarder first moves them, in the order they
came, to outgoing/ (so the inbox empties and the path unit rests even while NATS is out of
reach), then publishes them oldest first, each with a Nats-Msg-Id made from its name there:
a forwarder killed after the stream took a finding and before deleting it publishes it again
and the stream drops the copy. A finding is deleted only after the stream acknowledged it;
the first one that cannot be published stops the run, so a host's findings arrive in order.
An unreachable NATS is no failure: the findings wait, the next finding or heartbeat tries
again, and the coordinator says so when the host stays silent.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from contextlib import suppress

from runner import clock
from runner.contract import INBOX, OUTGOING, REJECTED, forward_unit
from runner.exitcodes import OK, USAGE
from runner.fleet.client import NatsError, Refused, Unreachable
from runner.fleet.names import findings_subject
from runner.fsatomic import ensure_dir, fsync_dir, locked, safe_name
from runner.spec import read_spec
from runner.warm import Lingering, linger, started_by_path

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.fleet.jetstream import JetStream
    from runner.spectypes import ForwardSpecJSON

LOCK = ".forward.lock"
HOST_HEADER = "Vigil-Host"
NAME_HEADER = "Vigil-Name"
PATIENCE = 15.0
"""Seconds a run waits for a cluster that answers nothing (electing a stream leader after a
node died) before leaving the findings to the next run."""
RETRY = 0.25
NAME_KEPT = 120
"""Characters of a finding's file name kept in outgoing/ (after its 21 of stamp)."""
HEADROOM = 1024
"""Bytes kept for the headers when comparing a finding with the server's max_payload."""


def load_spec(path: str) -> ForwardSpecJSON:
    spec: ForwardSpecJSON = read_spec(path, "forward")
    return spec


def main(spec_path: str) -> int:
    from runner.spec import file_identity

    live = file_identity(os.path.realpath(spec_path))  # of the file read below
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError, KeyError) as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE
    from runner.fleet.report import generation_of
    from runner.stopping import StopRequest

    stop = StopRequest()
    generation = generation_of(spec_path)

    link = Link(spec)

    def one_pass(report: bool) -> int:
        """How many findings went out (NATS problems are said, never a failed pass)."""
        with locked(os.path.join(spec["state_dir"], LOCK)):
            spool(spec["state_dir"])
            return forward(spec, link, report=report, generation=generation)

    def warm_pass(beat: bool) -> int:
        if beat:
            heartbeat(spec)
        one_pass(beat)
        return OK

    sent = one_pass(False)  # the findings first: the report can wait a moment
    path = f"{forward_unit(spec['config'])}.path"
    seconds = int(spec.get("linger") or 0)
    if not started_by_path(spec["scope"], path):  # the heartbeat timer, or a start by hand
        heartbeat(spec)
        one_pass(True)
        seconds = 0
    if not sent or not seconds or stop.requested:
        link.drop()
        return OK
    # Warm, as the coordinator is without a fleet: the next finding of a burst is sent at once.
    lingering = Lingering(
        spec_path=spec_path,
        live=live,
        inbox=os.path.join(spec["state_dir"], INBOX),
        seconds=seconds,
        heartbeat=int(spec["heartbeat"]),
        role="forward",
    )
    try:
        return linger(lingering, stop, warm_pass)
    finally:
        link.drop()


class Link:
    """The forwarder's connection, kept open across a warm run's passes."""

    def __init__(self, spec: ForwardSpecJSON) -> None:
        self.spec = spec
        self.stream: JetStream | None = None

    def open(self) -> tuple[JetStream, bool]:
        """The stream API, and whether the connection was open already."""
        if self.stream is not None:
            return self.stream, True
        from runner.fleet.connect import connect

        _, self.stream = connect(self.spec["config"], self.spec["fleet"], "forward")
        return self.stream, False

    def drop(self) -> None:
        if self.stream is not None:
            self.stream.connection.close()
            self.stream = None


def heartbeat(spec: ForwardSpecJSON) -> None:
    """A heartbeat under systemd checks that this host's jobs ran when their timers fired, as
    the coordinator does on a single machine (it cannot ask another machine's systemd): the
    alerts go into the inbox, and so to the fleet."""
    if not spec.get("timers") or not os.environ.get("INVOCATION_ID"):
        return
    from runner.missed import check

    try:
        check(spec, clock.now())
    except OSError as error:  # the state directory takes no writes: said, and tried next time
        print(f"vigil: forward: missed runs not checked: {error}", file=sys.stderr)


def forward(
    spec: ForwardSpecJSON,
    link: Link | None = None,
    *,
    report: bool = False,
    generation: int | None = None,
) -> int:
    """Publish what outgoing/ holds, oldest first, and the host's report if `report`; how
    many findings were published. A cluster electing a stream leader (no responders, no
    answer) is waited for up to PATIENCE, a connection lost on the way is made again; no
    server at all, or a refusal, ends the run at once. What is left waits for the next
    run, said in the journal. Without a `link`, the connection is closed after."""
    state_dir, host = spec["state_dir"], spec["fleet"]["host"]
    if not pending(state_dir) and not report:
        return 0
    own = link is None
    link = link or Link(spec)
    sent = 0
    give_up = time.monotonic() + PATIENCE
    try:
        while True:
            reused = connected = False
            try:
                stream, reused = link.open()
                connected = True
                sent += publish(stream, spec, pending(state_dir))
                if report:
                    from runner.fleet.report import publish_report

                    publish_report(stream, spec, generation, clock.now())
                break
            except Refused as error:
                print(f"vigil: forward: NATS refused {host}: {error}", file=sys.stderr)
                link.drop()
                break
            except NatsError as error:
                link.drop()
                if reused:
                    continue  # a connection the server closed while this run waited: anew
                offline = isinstance(error, Unreachable) and not connected  # none answered
                if offline or time.monotonic() >= give_up:
                    left = len(pending(state_dir))
                    print(f"vigil: forward: {error}; {left} finding(s) wait in {OUTGOING}/ for "
                          "the next try", file=sys.stderr)  # fmt: skip
                    break
                time.sleep(RETRY)
    finally:
        if own:
            link.drop()
    if sent:
        print(f"forward: {sent} finding(s) to the fleet", file=sys.stderr)
    return sent


def publish(stream: JetStream, spec: ForwardSpecJSON, names: list[str]) -> int:
    directory = os.path.join(spec["state_dir"], OUTGOING)
    host = spec["fleet"]["host"]
    subject = findings_subject(spec["config"], host)
    sent = 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            continue
        headers = {HOST_HEADER: host, NAME_HEADER: name.split("-", 1)[-1]}  # a safe name
        if len(data) + HEADROOM > stream.connection.max_payload:
            _too_large(spec["state_dir"], path, len(data), stream.connection.max_payload)
            continue
        stream.publish(subject, data, msg_id=f"{host}/{name}", headers=headers)
        os.unlink(path)
        sent += 1
    if sent:
        fsync_dir(directory)
    return sent


def pending(state_dir: str) -> list[str]:
    """outgoing/, oldest first."""
    try:
        return sorted(n for n in os.listdir(os.path.join(state_dir, OUTGOING)) if n[0] != ".")
    except FileNotFoundError:
        return []


def spool(state_dir: str) -> int:
    """Move the inbox's findings to outgoing/ as `<ns>-<name>`, in the order they were
    written; entries that are no finding file (a directory, a link) go to rejected/."""
    inbox = ensure_dir(os.path.join(state_dir, INBOX))
    outgoing = ensure_dir(os.path.join(state_dir, OUTGOING))
    entries = []
    for name in os.listdir(inbox):
        if name.startswith("."):
            continue  # a writer's temp file: it is renamed in whole, later
        try:
            info = os.lstat(os.path.join(inbox, name))
        except FileNotFoundError:
            continue
        entries.append((info.st_mtime_ns, name, stat.S_ISREG(info.st_mode)))
    if not entries:
        return 0
    stamp = max(time.time_ns(), _last_stamp(outgoing) + 1)
    for _, name, regular in sorted(entries):
        source = os.path.join(inbox, name)
        if not regular:
            _reject(state_dir, source, "is not a regular file")
            continue
        # The name goes into a header and a message id: letters, digits, - and _ only (a
        # writer may use any bytes, a newline too), and short enough for the stamp before it.
        target = (
            f"{stamp:020d}-{safe_name(os.fsencode(name).decode('utf-8', 'replace'))[:NAME_KEPT]}"
        )
        try:
            os.rename(source, os.path.join(outgoing, target))
        except FileNotFoundError:
            continue
        except OSError as error:
            _reject(state_dir, source, f"cannot be moved to {OUTGOING}/ ({error.strerror})")
            continue
        stamp += 1
    fsync_dir(outgoing)
    fsync_dir(inbox)
    return len(entries)


def _last_stamp(outgoing: str) -> int:
    names = pending(os.path.dirname(outgoing))
    try:
        return int(names[-1].split("-", 1)[0]) if names else 0
    except ValueError:
        return 0


def _reject(state_dir: str, path: str, reason: str) -> None:
    """Move an entry no finding can come from to rejected/ (a dot-name in place when even
    that fails): the inbox must empty, or the path unit starts the forwarder again and again."""
    from runner.intake import shown

    rejected = ensure_dir(os.path.join(state_dir, REJECTED))
    target = os.path.join(rejected, f"{time.time_ns()}-{os.urandom(3).hex()}")
    try:
        os.rename(path, target)
    except OSError:
        with suppress(OSError):
            os.rename(path, os.path.join(os.path.dirname(path), f".rejected-{os.urandom(4).hex()}"))
    name = shown(os.path.basename(path))
    print(f"vigil: forward: {name} {reason}: moved aside to {REJECTED}/", file=sys.stderr)


def _too_large(state_dir: str, path: str, size: int, limit: int) -> None:
    """A finding NATS would refuse (and close the connection over) goes to rejected/, with an
    alert: it would otherwise hold up every finding behind it for good."""
    from runner.statefile import own_alert

    name = os.path.basename(path).split("-", 1)[-1]
    own_alert(
        state_dir,
        f"too-large:{os.path.basename(path)}",
        f"vigil set aside the finding {name} ({size} bytes): NATS takes at most {limit}",
        clock.now(),
        kind="finding-rejected",
    )
    _reject(state_dir, path, f"is larger than NATS takes ({size} > {limit} bytes)")

"""`python -m runner reply SPEC`: one reply source's service, until SIGTERM.

It never exits for a transient error (the network, the daemon or the program gone, the disk
full): it says so in one line and tries again after 1 s, doubling to 60 s. A source that
cannot work as configured (a token the Bot API refuses, a missing credential) exits non-zero
with a line saying why and, once a day for the same reason, an alert in the inbox; systemd
starts it again after RestartSec.
"""

from __future__ import annotations

import signal
import sys
import time

from runner.clock import now
from runner.exitcodes import FAILED, OK, USAGE
from runner.fsatomic import describe
from runner.replies.ledger import Incoming, Ledger
from runner.replies.sources import Fatal, Transient
from runner.spec import read_spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from runner.spectypes import ReplySpecJSON

    Receive = Callable[[int | None], Iterator[Incoming]]

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


class Terminated(BaseException):
    """SIGTERM: raised wherever the service is. Safe anywhere: a finding is renamed in whole
    or not at all, and an offset not yet stored only makes the message come again."""


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def main(spec_path: str) -> int:
    try:
        spec: ReplySpecJSON = read_spec(spec_path, "reply")
        name = spec["source"]
        receive = _receiver(spec)
    except (OSError, ValueError, KeyError) as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE
    signal.signal(signal.SIGTERM, _stop)
    try:
        return serve(receive, Ledger(spec["state_dir"], name), name)
    except Terminated:
        return OK


def _receiver(spec: ReplySpecJSON) -> Receive:
    kind = spec["source_kind"]
    if kind == "telegram":
        from runner.replies.telegram import BotPoller

        return BotPoller(spec["telegram"]).receive
    if kind == "signal":
        from runner.replies.signalcli import SignalCli

        return SignalCli(spec["signal"]).receive
    if kind == "command":
        from runner.replies.command import Program

        return Program(spec["command"]).receive
    raise ValueError(f"source_kind: {kind!r} is not a kind of reply source")


def serve(receive: Receive, ledger: Ledger, name: str) -> int:
    """Receive and record until stopped; returns the exit status of a fatal error."""
    delay = FIRST_BACKOFF
    while True:
        try:
            for incoming in receive(ledger.offset):
                _record(ledger, incoming, name)
                delay = FIRST_BACKOFF
            delay = FIRST_BACKOFF  # a poll that ended well (nothing new)
            continue
        except Fatal as error:
            print(f"vigil: reply source {name}: {error}", file=sys.stderr, flush=True)
            _say_stopped(ledger, str(error))
            return FAILED
        except Transient as error:
            why, wait = str(error), error.retry_after or delay
        except OSError as error:  # the inbox or the state file could not be written
            why, wait = f"cannot record a reply: {describe(error)}", delay
        print(f"vigil: reply source {name}: {why}; again in {wait:g}s", file=sys.stderr, flush=True)
        time.sleep(wait)
        delay = min(MAX_BACKOFF, delay * 2)


def _say_stopped(ledger: Ledger, reason: str) -> None:
    """One alert for a source that cannot work (systemd starts it again every few seconds,
    and a unit's OnFailure= is no help: it fires never or at every restart, by version)."""
    try:
        ledger.stopping(reason, now())
    except OSError as error:
        print(f"vigil: cannot record that: {describe(error)}", file=sys.stderr, flush=True)


def _record(ledger: Ledger, incoming: Incoming, name: str) -> None:
    written = ledger.handle(incoming)
    if written is not None:
        print(f"{name}: reply {written} from {incoming.sender} is in the inbox", flush=True)
    elif not incoming.accepted:  # never its text: a stranger's words stay out of the journal
        count = ledger.ignored.get(incoming.sender, 0)
        print(
            f"{name}: ignored a message from {incoming.sender} (not listed; {count} so far)",
            flush=True,
        )

"""What a reply source writes: the reply's finding into the inbox, then its own state file.

state/reply-<name>.json: {"version": 1, "offset": int|null, "ignored": {sender: count},
"received": int, "lastReply": ISO|null, "stopped": {"reason", "alerted"}|null}. Only the
source's own service writes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime

from runner.clock import file_stamp, iso, parse_iso
from runner.contract import INBOX, REPLY_FINDING_KIND, reply_state_file
from runner.findings import VIGIL_SOURCE
from runner.fsatomic import read_state, safe_name, write_atomic, write_finding, write_state

STATE_VERSION = 1
IGNORED_KEPT = 100
"""Strangers whose messages are counted; past that, the least heard-from is forgotten."""
STOPPED_KIND = "reply-stopped"
"""The alert a source that cannot work sends (runner.contract.ALERT_KINDS)."""
STOPPED_REPEAT = 86400
"""Seconds before the same reason for stopping is said again."""


@dataclass(frozen=True)
class Incoming:
    """One message a source received."""

    number: str
    """What makes the reply's id unique within its source (an update id, a timestamp)."""
    sender: str
    """Who wrote it, as the config lists senders (a chat id, a number)."""
    text: str | None
    """None: not a text message (a sticker, a receipt): nothing to do but move past it."""
    accepted: bool
    """The sender is listed in the config."""
    moment: datetime
    """When it was written (the message's own time where it has one)."""
    offset: int | None = None
    """What to store once it is handled, so that it is not read again; None: nothing."""


def reply_id(source: str, number: str) -> str:
    return f"reply-{source}-{number}"


def finding_name(source: str, incoming: Incoming) -> str:
    """The inbox name of a reply's finding: time-ordered like every inbox name, and the same
    for the same reply, so that writing it again replaces it while it waits."""
    stamp = file_stamp(incoming.moment)
    return f"{VIGIL_SOURCE}-{stamp}-{safe_name(reply_id(source, incoming.number))}.json"


class Ledger:
    """The source's state file, read once at start and rewritten after each message."""

    def __init__(self, state_dir: str, source: str) -> None:
        self.state_dir = state_dir
        self.source = source
        self.state_file = reply_state_file(source)
        stored = read_state(state_dir, self.state_file)
        offset = stored.get("offset")
        self.offset = offset if isinstance(offset, int) and not isinstance(offset, bool) else None
        ignored = stored.get("ignored")
        self.ignored = {
            str(sender): count
            for sender, count in (ignored.items() if isinstance(ignored, dict) else [])
            if isinstance(count, int)
        }
        received = stored.get("received")
        self.received = received if isinstance(received, int) else 0
        last = stored.get("lastReply")
        self.last_reply = last if isinstance(last, str) else None
        stopped = stored.get("stopped")
        self.stopped: dict[str, str] | None = (
            {k: str(v) for k, v in stopped.items()} if isinstance(stopped, dict) else None
        )
        """Why the source last stopped and when that was said; None once it works again."""

    def handle(self, incoming: Incoming) -> str | None:
        """Write the reply's finding (an accepted text message), then what was read; returns
        the reply's id, None for a message that was ignored or skipped."""
        written = None
        before = (self.offset, dict(self.ignored), self.received, self.last_reply)
        self.stopped = None  # it works
        if incoming.accepted and incoming.text is not None:
            written = self._write_finding(incoming)
            self.received += 1
            self.last_reply = iso(incoming.moment)
        elif not incoming.accepted:
            self.ignored[incoming.sender] = self.ignored.get(incoming.sender, 0) + 1
            if len(self.ignored) > IGNORED_KEPT:  # the least heard-from stranger goes
                del self.ignored[min(self.ignored, key=self.ignored.__getitem__)]
        if incoming.offset is not None:
            self.offset = incoming.offset
        try:
            self.save()
        except BaseException:
            # Not stored: the message is read again (the same reply id), counted once.
            self.offset, self.ignored, self.received, self.last_reply = before
            raise
        return written

    def _write_finding(self, incoming: Incoming) -> str:
        identifier = reply_id(self.source, incoming.number)
        finding = {
            "source": VIGIL_SOURCE,
            "kind": REPLY_FINDING_KIND,
            "id": identifier,
            "via": self.source,
            "from": incoming.sender,
            "text": incoming.text,
            "timestamp": iso(incoming.moment),
        }
        data = json.dumps(finding, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        path = os.path.join(self.state_dir, INBOX, finding_name(self.source, incoming))
        write_atomic(self.state_dir, path, data)
        return identifier

    def save(self) -> None:
        write_state(
            self.state_dir,
            self.state_file,
            {
                "version": STATE_VERSION,
                "offset": self.offset,
                "ignored": self.ignored,
                "received": self.received,
                "lastReply": self.last_reply,
                "stopped": self.stopped,
            },
        )

    def stopping(self, reason: str, now: datetime) -> bool:
        """The source cannot work: say so once (an alert in the inbox) per reason and day,
        not at every restart systemd makes of it. True when it was said now."""
        said = parse_iso((self.stopped or {}).get("alerted"))
        same = (self.stopped or {}).get("reason") == reason
        if same and said is not None and (now - said).total_seconds() < STOPPED_REPEAT:
            return False
        alert: dict[str, object] = {
            "source": VIGIL_SOURCE,
            "kind": STOPPED_KIND,
            "id": f"reply-stopped-{self.source}-{iso(now)}",
            "timestamp": iso(now),
            "message": f"reply source {self.source} cannot work: {reason}; replies are not read "
            f"(`vigil logs reply-{self.source}`)",
        }
        write_finding(self.state_dir, alert, now)
        self.stopped = {"reason": reason, "alerted": iso(now)}
        self.save()
        return True

"""The state of answering back, read only by a pass that needs it and written once at its end:
reference codes, silences, the record of what was held back, the replies applied."""

from __future__ import annotations

from runner import stateshapes as shapes
from runner.contract import REFS, REPLIES, SILENCED, SILENCES
from runner.fsatomic import write_state
from runner.statefile import StateUnreadable, load_state, unreadable
from runner.talk.refs import Refs
from runner.talk.silences import Silences, record

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from runner.alerts import Alert
    from runner.stateshapes import Shape

APPLIED_KEPT = 1000
"""Reply ids state/replies.json keeps: far more than a reply source could write twice."""


class Talk:
    def __init__(self, state_dir: str, now: datetime) -> None:
        self.state_dir = state_dir
        self.now = now
        self._files: dict[str, dict[str, Any] | None] = {}
        self._changed: set[str] = set()
        self._refs: Refs | None = None
        self._silences: Silences | None = None

    def _load(self, name: str, shape: Shape, what: str) -> dict[str, Any] | None:
        """The file's state; None when it cannot be read (said once; never overwritten)."""
        if name not in self._files:
            try:
                self._files[name] = load_state(self.state_dir, name, shape, self.now)
            except StateUnreadable as error:
                unreadable(self.state_dir, error, what, self.now)
                self._files[name] = None
        return self._files[name]

    @property
    def refs(self) -> Refs:
        if self._refs is None:
            data = self._load(REFS, shapes.REFS, "reference codes are not kept until it can be")
            self._refs = Refs({"version": 1} if data is None else data, data is not None)
        return self._refs

    @property
    def silences(self) -> Silences:
        if self._silences is None:
            data = self._load(SILENCES, shapes.SILENCES, "no silence holds until it can be read")
            self._silences = Silences({"version": 1} if data is None else data, data is not None)
        return self._silences

    def note(self, alert: Alert, by: str, action: str, now: datetime) -> None:
        log = self._load(SILENCED, shapes.SILENCED, "what is held back is not recorded")
        if log is not None:
            record(log, alert.to_json(), by, action, now)
            self._changed.add(SILENCED)

    def applied(self, reply_id: str) -> bool:
        """Whether the reply was applied before; if not, it counts as applied from now."""
        data = self._load(REPLIES, shapes.REPLIES, "a reply may be applied twice")
        if data is None:
            return False
        applied: list[str] = data.setdefault("applied", [])
        if reply_id in applied:
            return True
        applied.append(reply_id)
        del applied[:-APPLIED_KEPT]
        self._changed.add(REPLIES)
        return False

    def save(self, now: datetime) -> None:
        """Write what changed (after the messages are queued, with the rule states)."""
        if self._refs is not None:
            self._refs.prune(now)
            if self._refs.changed and self._refs.writable:
                self._write(REFS, self._refs.state)
        if self._silences is not None:
            self._silences.prune(now)
            if self._silences.changed and self._silences.writable:
                self._write(SILENCES, self._silences.state)
        for name in sorted(self._changed):
            data = self._files.get(name)
            if data is not None:
                self._write(name, data)

    def _write(self, name: str, data: dict[str, Any]) -> None:
        write_state(self.state_dir, name, {**data, "version": 1})

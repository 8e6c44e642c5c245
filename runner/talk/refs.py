"""Reference codes: every item a message names carries a short code (`[r7]`) the person can
answer with. The code stays the item's while it is open (a nag item's later nags, a watch's
repeats and a job's next failures say the same code), so it is unique among open items; a
closed code is not given to another item for a week, so a late "done r7" is told it is closed
rather than acting on something else.

state/refs.json: {"version": 1, "refs": {"r7": {"subject", "told", "opened", "text", "alert",
"closed"?, "why"?, "snoozed"?, "acked"?}}}. The coordinator is its one writer.
"""

from __future__ import annotations

import re
import sys

from runner.alerts import DEDUP, NAG_KEY, WATCH_KEY, Alert
from runner.clock import iso, parse_iso
from runner.contract import RECOVERED_KIND
from runner.findings import VIGIL_SOURCE
from runner.talk.matchers import kind_of

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

PREFIX = "r"
CODE = re.compile(rf"\[?{PREFIX}(\d{{1,6}})\]?")
CLOSED_KEPT = 7 * 86400
"""Seconds a closed code stays closed before another item may get it: a late "done r7" to a
week-old message hears that r7 is closed instead of acting on another item."""
IDLE_CLOSE = 7 * 86400
"""Seconds after it was last told that the code of an item no rule follows (a one-off alert, a
failure nobody answered) closes by itself."""
MUTED_KEPT = 1000
"""Conditions the person stopped (`stop r7`) that refs.json remembers, the latest."""
RULE_IDLE_CLOSE = 30 * 86400
"""The same for a nag item or a watch instance, which close with their rule state (see
close_finished): only one whose rule is gone from the config waits this long."""
ANSWER = "answer"
"""The kind of the alert that answers a reply."""
UNCODED_KINDS = (ANSWER, RECOVERED_KIND)
"""Alerts that are no item of their own: answers to replies, and the line saying an item
recovered (it names the item's code)."""
SNOOZED = "(snoozed) "
"""How an alert said again when its snooze ends begins."""


def subject_of(alert: Alert) -> str:
    """What the item is, whatever this alert's step: a nag item, a watch instance, a job's
    failures (paused, missed...), a deduplicated condition, else the alert itself."""
    if alert.key.startswith(WATCH_KEY):
        return alert.subject.removesuffix(":esc")  # its escalation is the same instance
    job = alert.evidence.get("job")
    if alert.source == VIGIL_SOURCE and isinstance(job, str):
        return own_subject(kind_of(alert), job)
    return alert.subject


def own_subject(kind: str, job: str) -> str:
    """The item of vigil's own alerts of one kind about one job (its failures, its missed
    firings): `vigil:failure:JOB`."""
    return f"{VIGIL_SOURCE}:{kind}:{job}"


def normal(code: str) -> str | None:
    """`R7`, `[r7]`, `r07` -> `r7`; None when it is no code."""
    found = CODE.fullmatch(code.strip().lower())
    return f"{PREFIX}{int(found.group(1))}" if found else None


class Refs:
    """The codes of state/refs.json, changed in place."""

    def __init__(self, state: dict[str, Any], writable: bool = True) -> None:
        self.state = state
        self.writable = writable
        """False when the file could not be read: it is left as it is."""
        self.codes: dict[str, dict[str, Any]] = state.setdefault("refs", {})
        self.changed = False
        self._open = {
            str(entry.get("subject")): code
            for code, entry in self.codes.items()
            if not entry.get("closed")
        }
        """Subject -> its open code (one per subject: give() makes no second)."""
        self._lowest = 1
        """No number below this is free (codes are freed only by prune, at the end of a run)."""

    def open_code(self, subject: str) -> str | None:
        return self._open.get(subject)

    def give(self, alerts: list[Alert], now: datetime) -> None:
        """Each alert gets its item's open code, or the lowest free one (kept once told)."""
        for alert in alerts:
            if kind_of(alert) in UNCODED_KINDS:
                continue
            subject = subject_of(alert)
            code = self._open.get(subject)
            if code is None:
                code = self._free()
                self.codes[code] = {"subject": subject, "opened": iso(now)}
                self._open[subject] = code
            alert.ref = code

    def told(self, alert: Alert, now: datetime) -> dict[str, Any]:
        """A message named the alert: its code now means its item. Returns the alert as the
        code keeps it."""
        remembered = _remembered(alert)
        entry = self.codes.get(alert.ref or "")
        if entry is not None:
            entry.update(told=iso(now), text=alert.text, alert=remembered)
            self.changed = True
        return remembered

    def adopt(self, told: dict[str, Any], now: datetime) -> None:
        """Codes a run told and recorded in held.json, but was killed before it wrote
        refs.json: they are the items' codes (unless the code went to another item since)."""
        from runner.stateshapes import held_alert

        for code, stored in told.items() if isinstance(told, dict) else ():
            if not isinstance(stored, dict) or normal(code) != code or held_alert(stored):
                print(f"coordinator: held.json's told {code!r} is of another shape: passed over",
                      file=sys.stderr)  # fmt: skip
                continue
            alert = Alert.from_json(stored)
            subject = subject_of(alert)
            entry = self.codes.get(code)
            if entry is not None and (entry.get("subject") != subject or entry.get("told")):
                continue  # known already, or another item's
            opened = self._open.get(subject)
            if opened is not None and opened != code:
                continue
            self.codes[code] = {"subject": subject, "opened": iso(now), "told": iso(now),
                                "text": alert.text, "alert": stored}  # fmt: skip
            self._open[subject] = code
            self.changed = True

    def close(self, code: str, why: str, now: datetime) -> None:
        entry = self.codes.get(code)
        if entry is not None and not entry.get("closed"):
            entry.update(closed=iso(now), why=why)
            entry.pop("snoozed", None)
            self._open.pop(str(entry.get("subject")), None)
            self.changed = True

    def close_finished(
        self,
        nag_states: dict[str, dict[str, Any]],
        watch_states: dict[str, dict[str, Any]],
        now: datetime,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Close the codes of nag items no longer nagged (resolved, stopped, pruned) and of
        watch instances no longer alerting, in the rule states this run read; returns the
        (code, entry) of watch instances satisfied now, late."""
        satisfied: list[tuple[str, dict[str, Any]]] = []
        if not nag_states and not watch_states:
            return satisfied
        from runner.rules.watchstate import ALERTING, WatchState

        for code, entry in list(self.open_entries().items()):
            subject = str(entry.get("subject"))
            kind, _, rest = subject.partition(":")
            name, _, item = rest.partition(":")
            if f"{kind}:" == NAG_KEY and name in nag_states:
                record = (nag_states[name].get("items") or {}).get(item)
                status = record.get("status") if isinstance(record, dict) else "gone"
                if status != "active":
                    self.close(code, str(status), now)
            elif f"{kind}:" == WATCH_KEY and name in watch_states:
                instance = (watch_states[name].get("instances") or {}).get(item)
                state = instance.get("state") if isinstance(instance, dict) else "gone"
                if state not in ALERTING:
                    self.close(code, str(state), now)
                    if state == WatchState.SATISFIED:
                        satisfied.append((code, entry))
        return satisfied

    def acknowledge(self, code: str, now: datetime, *, forever: bool) -> None:
        """A condition the person knows of: it stays open (its repeats are counted, not said);
        `forever`: said never again, even after it is resolved and comes back."""
        entry = self.codes[code]
        entry["acked"] = iso(now)
        if forever:
            muted: list[str] = self.state.setdefault("muted", [])
            if entry["subject"] not in muted:
                muted.append(str(entry["subject"]))
                del muted[:-MUTED_KEPT]
        self.changed = True

    def muted(self, subject: str) -> bool:
        """Whether the person said `stop` to this condition."""
        return subject in (self.state.get("muted") or [])

    def snooze(self, code: str, until: datetime) -> None:
        self.codes[code]["snoozed"] = iso(until)
        self.changed = True

    def wake(self, code: str, alert: Alert) -> None:
        """The snooze is over: the alert says so, and goes out."""
        self.codes[code].pop("snoozed", None)
        self.changed = True
        if not alert.text.startswith(SNOOZED):
            alert.text = f"{SNOOZED}{alert.text}"

    def repeated(self, code: str, now: datetime) -> None:
        """The open condition was reported again (not said again)."""
        entry = self.codes[code]
        entry.update(seen=iso(now), repeats=int(entry.get("repeats") or 0) + 1)
        self.changed = True

    # -- flapping: an item that opens and closes again and again is said once -----------------

    def change(self, subject: str, opened: bool, now: datetime, within: int) -> int:
        """Note that the item opened or closed (once per change); returns how many changes it
        had in the last `within` seconds."""
        flaps: dict[str, Any] = self.state.setdefault("flaps", {})
        record = flaps.setdefault(subject, {"changes": [], "open": False})
        if record.get("open") == opened:
            return len(record["changes"])
        cutoff = now.timestamp() - within
        kept = [t for t in record["changes"] if (parse_iso(t) or now).timestamp() > cutoff]
        record.update(changes=[*kept, iso(now)], open=opened, within=within)
        self.changed = True
        return len(record["changes"])

    def flapping(self, subject: str, now: datetime) -> bool:
        """Whether the item changed often enough lately to count as flapping (see change)."""
        record = (self.state.get("flaps") or {}).get(subject)
        if not isinstance(record, dict) or not record.get("flapping"):
            return False
        last = parse_iso((record.get("changes") or [None])[-1])
        steady = last is None or (now - last).total_seconds() >= int(record.get("within") or 0)
        if steady:  # a quiet `within` since the last change: the next change is news again
            record["flapping"] = False
            record["changes"] = []
            self.changed = True
        return not steady

    def start_flapping(self, subject: str) -> None:
        self.state.setdefault("flaps", {}).setdefault(subject, {})["flapping"] = True
        self.changed = True

    def open_entries(self) -> dict[str, dict[str, Any]]:
        return {
            code: entry
            for code, entry in self.codes.items()
            if entry.get("told") and not entry.get("closed")
        }

    def prune(self, now: datetime) -> None:
        """Codes given but never told are forgotten; idle ones close; closed ones are freed a
        week later."""
        for code, entry in list(self.codes.items()):
            told, closed = parse_iso(entry.get("told")), parse_iso(entry.get("closed"))
            if told is None:
                del self.codes[code]
            elif closed is not None and (now - closed).total_seconds() >= CLOSED_KEPT:
                del self.codes[code]
                self.changed = True
            elif closed is None and _idle(entry, told, now):
                self.close(code, "no news for a week", now)
        flaps = self.state.get("flaps") or {}
        for subject in [s for s, f in flaps.items() if not _recent(f, now, s in self._open)]:
            del flaps[subject]
            self.changed = True

    def _free(self) -> str:
        while f"{PREFIX}{self._lowest}" in self.codes:
            self._lowest += 1
        return f"{PREFIX}{self._lowest}"


def _idle(entry: dict[str, Any], told: datetime, now: datetime) -> bool:
    """Items a rule state follows (nag items, watch instances) close with it; a condition
    still reported (`seen`) is not idle; one that ends by being resolved never idles out."""
    snoozed = parse_iso(entry.get("snoozed"))
    if snoozed is not None and snoozed > now:
        return False
    subject = str(entry.get("subject", ""))
    if subject.startswith(DEDUP):  # ended by `"resolved": true`, as the README says
        return False
    ruled = subject.startswith((NAG_KEY, WATCH_KEY))
    return (now - told).total_seconds() >= (RULE_IDLE_CLOSE if ruled else IDLE_CLOSE)


def _recent(flaps: dict[str, Any], now: datetime, coded: bool) -> bool:
    """Whether an item's flapping record still matters: the item is open (with a code), or it
    changed within its window."""
    last = parse_iso((flaps.get("changes") or [None])[-1])
    within = int(flaps.get("within") or 0)
    changed = last is not None and (now - last).total_seconds() < within
    return (bool(flaps.get("open")) and coded) or changed


REMEMBERED_EVIDENCE = ("kind", "job", "watch", "key", "unit")
"""Of an alert's evidence, what its code keeps: what inhibit rules and answers read of it (the
whole finding would grow refs.json with every item)."""


def _remembered(alert: Alert) -> dict[str, Any]:
    """The alert as its code keeps it, to say it again when a snooze ends."""
    kept = alert.to_json()
    evidence = alert.evidence
    kept["evidence"] = {k: evidence[k] for k in REMEMBERED_EVIDENCE if k in evidence}
    return kept

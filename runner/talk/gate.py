"""Which alerts go out now, which wait and which are dropped: silences (dropped, recorded),
maintenance windows (held or dropped), inhibit rules (held while what they depend on is down, or
dropped), snoozes (held until they end, then said again), a flapping item (dropped while it
flaps), a condition already open (said once), quiet hours (held, urgent ones go). Every pass
looks again at what is held, so a hold ends as soon as its reason does; what is held back or
dropped is recorded in state/silenced.json once."""

from __future__ import annotations

from datetime import time, timedelta

from runner.alerts import DEDUP, Alert, latest_per_subject
from runner.clock import parse_iso, zone
from runner.talk.flaps import flap_change, flapping_text, notify_recovered
from runner.talk.matchers import facts, kind_of, matches
from runner.talk.refs import ANSWER, subject_of

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

    from runner.spectypes import CoordinatorSpecJSON, MaintenanceJSON
    from runner.talk.state import Talk

QUIET = "quiet hours"
OPEN = "open:"
"""Why a repeat of an open deduplicated condition is not said."""


def split(
    spec: CoordinatorSpecJSON,
    alerts: list[Alert],
    held: list[Alert],
    talk: Talk,
    now: datetime,
    quiet: bool,
) -> tuple[list[Alert], list[tuple[Alert, str]]]:
    """(to send now, [(to hold, why)]); of alerts about the same subject only the latest."""
    new = {id(alert) for alert in alerts}
    candidates = latest_per_subject(held + alerts)
    conditions = _open_conditions(talk, candidates) if spec.get("inhibit") else []
    sending: list[Alert] = []
    holding: list[tuple[Alert, str]] = []
    for alert in candidates:
        if kind_of(alert) == ANSWER:  # asked for just now
            sending.append(alert)
            continue
        verdict = _verdict(spec, alert, conditions, talk, now)
        if verdict is None:
            if quiet and not alert.urgent:
                holding.append((alert, QUIET))
            else:
                sending.append(alert)
            continue
        why, drop = verdict
        if drop:
            if not why.startswith(OPEN):  # a repeat of an open condition is counted, not noted
                talk.note(alert, why, "dropped", now)
        else:
            if id(alert) in new:
                talk.note(alert, why, "held", now)
            holding.append((alert, why))
    return sending, _latest_per_item(holding)


def _latest_per_item(holding: list[tuple[Alert, str]]) -> list[tuple[Alert, str]]:
    """Of what a snooze, a window or an inhibit rule holds, the latest alert per item (a job
    failing every 15 minutes through a three-hour snooze is one line when it ends, not
    twelve); quiet hours keep what they held as before."""
    latest: dict[str, tuple[Alert, str]] = {}
    for alert, why in holding:
        item = subject_of(alert) if why != QUIET else f"{QUIET}\0{alert.subject}"
        latest.pop(item, None)
        latest[item] = (alert, why)
    return list(latest.values())


def _verdict(
    spec: CoordinatorSpecJSON,
    alert: Alert,
    conditions: list[Alert],
    talk: Talk,
    now: datetime,
) -> tuple[str, bool] | None:
    """(why, dropped) for an alert that does not go out now; None for one that may."""
    subject = subject_of(alert)
    code = talk.refs.open_code(subject)
    entry = talk.refs.codes.get(code or "") or {}
    snoozed = parse_iso(entry.get("snoozed"))
    if snoozed is not None:
        if now < snoozed:
            return f"snooze:{code}", False
        talk.refs.wake(str(code), alert)  # over: said again, unless something else holds it
    alert_facts = facts(alert)
    silence = talk.silences.matching(alert_facts, now)
    if silence is not None:
        return f"silence:{silence.get('id')}", True
    for name, window in (spec.get("maintenance") or {}).items():
        if matches(window["match"], alert_facts) and in_window(window, spec.get("timezone"), now):
            return f"maintenance:{name}", bool(window.get("drop"))
    for name, rule in (spec.get("inhibit") or {}).items():
        if matches(rule["hold"], alert_facts) and _inhibited(rule["while"], alert, conditions):
            return f"inhibit:{name}", bool(rule.get("drop"))
    if _flapping(spec, alert, subject, bool(entry.get("told")), talk, now):
        return f"flapping:{code or subject}", True
    return _condition(subject, code, entry, talk, now) if subject.startswith(DEDUP) else None


def _condition(
    subject: str, code: str | None, entry: dict[str, object], talk: Talk, now: datetime
) -> tuple[str, bool] | None:
    """A deduplicated condition: said once while open; never when the person said `stop`."""
    if talk.refs.muted(subject):
        return f"stopped:{subject}", True
    if entry.get("told"):
        talk.refs.repeated(str(code), now)  # the condition is open and was said
        return f"{OPEN}{code}", True
    return None


def _flapping(
    spec: CoordinatorSpecJSON, alert: Alert, subject: str, told: bool, talk: Talk, now: datetime
) -> bool:
    """For an item whose end is said (`notify_recovered`): note that it opened; True when it
    flaps (nothing is said about it), and the alert says so when this opening starts it."""
    kind = kind_of(alert)
    if kind == "failure":
        name = alert.evidence.get("job")
    elif subject.startswith(DEDUP) and not told:  # a condition open already is no change
        name = alert.source
    else:
        return False
    if not isinstance(name, str) or not notify_recovered(spec, name):
        return False
    changes, flapping = flap_change(spec, talk.refs, subject, True, now)
    if changes:
        alert.text = flapping_text(name, changes, spec)
    return flapping


def _open_conditions(talk: Talk, candidates: list[Alert]) -> list[Alert]:
    """What inhibit rules look at: the alerts of this pass and the open items told before."""
    told = [Alert.from_json(entry["alert"]) for entry in talk.refs.open_entries().values()
            if isinstance(entry.get("alert"), dict)]  # fmt: skip
    return [*candidates, *told]


def _inhibited(condition: dict[str, list[str]], alert: Alert, conditions: list[Alert]) -> bool:
    """Whether something else than the alert's own item matches the rule's `while`."""
    subject = subject_of(alert)
    return any(
        subject_of(other) != subject and matches(condition, facts(other)) for other in conditions
    )


def in_window(window: MaintenanceJSON, timezone: str | None, now: datetime) -> bool:
    """Whether `now` is in the maintenance window (days name the day it starts)."""
    local = now.astimezone(zone(window.get("timezone") or timezone))
    start, end = _clock(window["start"]), _clock(window["end"])
    days = window.get("days")
    clock = local.time()
    if start < end:
        started = local.date() if start <= clock < end else None
    elif clock >= start:
        started = local.date()
    elif clock < end:
        started = local.date() - timedelta(days=1)
    else:
        started = None
    return started is not None and (not days or started.weekday() in days)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))

"""Control findings that answer back (source `vigil`): a reply the person wrote in chat
(`reply`), `vigil snooze` (`snooze`), `vigil silence add|expire` (`silence-add`,
`silence-expire`) and a job that ran fine after failing (`recovered`). The coordinator applies
them: it stays the one writer of state. A reply gets one short answer, through its reply
source's `answer_to` channels: what was done, or what was understood and what not."""

from __future__ import annotations

import sys

from runner.alerts import DEDUP, Alert, dedup_subject
from runner.clock import iso, parse_iso, zone
from runner.contract import PERSON_KINDS, RECOVERED_KIND
from runner.digest import hexdigest
from runner.findings import ALERT_PRIORITY, VIGIL_SOURCE
from runner.talk.flaps import flap_change, flapping_text, notify_recovered
from runner.talk.grammar import Command, Misunderstood, Verb, parse
from runner.talk.refs import ANSWER, normal, own_subject
from runner.talk.when import until

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any

    from runner.spectypes import CoordinatorSpecJSON
    from runner.talk.state import Talk

STATUS_LINES = 15
"""Open items a `status` answer lists at most."""
ALL = ("all", "everything")


class Context:
    """What applying a control finding may read and change."""

    def __init__(
        self,
        spec: CoordinatorSpecJSON,
        talk: Talk,
        nag_state: Callable[[str], dict[str, Any] | None],
        watch_states: dict[str, dict[str, Any]],
        now: datetime,
    ) -> None:
        self.spec = spec
        self.talk = talk
        self.nag_state = nag_state
        """A nag rule's state, loaded into the run's rule states (written with them)."""
        self.watch_states = watch_states
        self.now = now
        self.hold: list[tuple[Alert, str]] = []
        """Alerts to hold from now on (a snoozed item's last alert, said again at its end)."""
        self.forget: set[str] = set()
        """Subjects of items closed now: what is held about them is not said any more."""
        self.earlier: list[Alert] = []
        """The alerts this run raised before the finding applied now (changed in place)."""

    def closed(self, subject: str) -> None:
        """The item is over: nothing held or raised before about it is said."""
        self.forget.add(subject)
        from runner.talk.refs import subject_of

        self.earlier[:] = [alert for alert in self.earlier if subject_of(alert) != subject]


def apply(finding: dict[str, Any], context: Context) -> list[Alert]:
    if finding.get("source") != VIGIL_SOURCE:  # `"resolved": true` from a source's detector
        return _condition_over(finding, context)
    kind = finding.get("kind")
    if context.spec.get("fleet") and kind in PERSON_KINDS:
        # Any host may write these into its inbox: on a fleet that would let one machine
        # silence every other's alerts. Not yet supported there (the CLI says so too).
        print(f"coordinator: a {kind} finding is not applied on a fleet yet", file=sys.stderr)
        return []
    if kind == "reply":
        return _reply(finding, context)
    if kind == "snooze":
        _snooze_request(finding, context)
    elif kind == "silence-add" and isinstance(finding.get("silence"), dict):
        context.talk.silences.add(finding["silence"], context.now)
    elif kind == "silence-expire":
        context.talk.silences.expire(str(finding.get("silence_id")), context.now)
    elif kind == "recovered":
        job = str(finding.get("job"))
        text = f"{job} recovered: it ran fine again"
        return _over(own_subject("failure", job), job, text, context)
    return []


def _condition_over(finding: dict[str, Any], context: Context) -> list[Alert]:
    source = str(finding.get("source"))
    policy = (context.spec["coordinator"].get("sources") or {}).get(source)
    subject = dedup_subject(policy, finding, source)
    condition = subject.removeprefix(f"{DEDUP}{source}:")
    return _over(subject, source, f"{source}: {condition} is resolved", context)


# -- replies ---------------------------------------------------------------------------------


def _reply(finding: dict[str, Any], context: Context) -> list[Alert]:
    reply_id = str(finding.get("id") or hexdigest(repr(sorted(finding.items()))))
    if context.talk.applied(reply_id):
        print(f"coordinator: reply {reply_id} was applied before; not again", file=sys.stderr)
        return []
    text = finding.get("text")
    try:
        command = parse(text if isinstance(text, str) else "")
        words = _do(command, context, reply_id)
    except Misunderstood as error:
        words = str(error)
    except ValueError as error:  # a time that is none (runner.talk.when says why)
        words = f"{error}: nothing done"
    via = finding.get("via")
    return [_answer(words, reply_id, via if isinstance(via, str) else None, context.spec)]


def _answer(words: str, reply_id: str, via: str | None, spec: CoordinatorSpecJSON) -> Alert:
    source = (spec.get("replies") or {}).get(via or "")
    answer_to = list(source.get("answer_to") or []) if source else []
    return Alert(
        text=words,
        source=VIGIL_SOURCE,
        priority=ALERT_PRIORITY,
        urgent=True,  # asked for just now: quiet hours do not hold it
        key=f"answer:{reply_id}",
        to=answer_to or None,
        evidence={"kind": ANSWER, "reply": reply_id},
    )


def _do(command: Command, context: Context, reply_id: str) -> str:
    if command.verb == Verb.HELP:
        from runner.talk.grammar import USAGE

        return f"vigil understands: {USAGE}"
    if command.verb == Verb.STATUS:
        return _status(context)
    if command.verb == Verb.MUTE:
        return _mute(command, context, reply_id)
    if command.verb == Verb.UNMUTE:
        return _unmute(command, context)
    return "; ".join(_on_item(command, code, context) for code in command.codes)


def _on_item(command: Command, code: str, context: Context) -> str:
    refs, now = context.talk.refs, context.now
    entry = refs.codes.get(code)
    if entry is None or not entry.get("told"):
        return f"{code}: no such item"
    what = _short(str(entry.get("text") or entry.get("subject")))
    if entry.get("closed"):
        return f"{code} is closed already ({entry.get('why')}): {what}"
    subject = str(entry.get("subject"))
    if command.verb == Verb.SNOOZE:
        moment = until(command.when, now, context.spec.get("timezone"))
        _snooze(code, moment, context)
        return f"{code} snoozed until {_local(moment, context)}: {what}"
    stop = command.verb == Verb.STOP
    if subject.startswith(DEDUP):  # a condition: quiet until resolved, or for good
        refs.acknowledge(code, now, forever=stop)
        context.closed(subject)
        until_when = "never again" if stop else "quiet until it is resolved"
        return f"{code} {'stopped' if stop else 'acknowledged'}: {until_when}: {what}"
    if not _settle_item(subject, stop, context):
        return f"{code}: its rule is not in the config any more; closed: {what}"
    refs.close(code, "stopped" if stop else "done", now)
    context.closed(subject)
    return f"{code} {'stopped: never again' if stop else 'done'}: {what}"


def _settle_item(subject: str, stop: bool, context: Context) -> bool:
    """Tell the item's rule: a nag item is acknowledged (no nags until it is reported again
    after going away) or, stopped, never nagged again; a watch instance is acknowledged.
    False when its rule is gone."""
    kind, _, rest = subject.partition(":")
    name, _, item = rest.partition(":")
    now = context.now
    if kind == "nag":
        state = context.nag_state(name)
        record = (state or {}).get("items", {}).get(item) if state is not None else None
        if not isinstance(record, dict):
            return False
        record.update(status="stopped", acknowledged=iso(now))
        if stop:
            record["muted"] = True
        return True
    if kind == "watch":
        state = context.watch_states.get(name)
        if state is None:
            return False
        from runner.rules.watches import on_ack

        on_ack(name, state, item, now)
        return True
    return True  # a failure, a condition, a one-off alert: closing its code is all


def _snooze(code: str, moment: datetime, context: Context) -> None:
    refs = context.talk.refs
    refs.snooze(code, moment)
    stored = refs.codes[code].get("alert")
    if isinstance(stored, dict):  # said again when the snooze ends
        context.hold.append((Alert.from_json(stored), f"snooze:{code}"))


def _snooze_request(finding: dict[str, Any], context: Context) -> None:
    """`vigil snooze CODE|WATCH [KEY]`."""
    moment = parse_iso(finding.get("until"))
    refs = context.talk.refs
    if moment is None or moment <= context.now:
        return
    code = normal(str(finding.get("ref") or ""))
    if code is not None:
        codes = [code] if code in refs.open_entries() else []
    else:
        watch, key = finding.get("watch"), finding.get("key")
        prefix = f"watch:{watch}:" if key is None else f"watch:{watch}:{key}"
        codes = [
            c
            for c, entry in refs.open_entries().items()
            if (str(entry.get("subject")).startswith(prefix) if key is None
                else entry.get("subject") == prefix)
        ]  # fmt: skip
    if not codes:
        print(f"coordinator: snooze of {code or finding.get('watch')}: no open item",
              file=sys.stderr)  # fmt: skip
    for each in codes:
        _snooze(each, moment, context)


def _status(context: Context) -> str:
    refs, now = context.talk.refs, context.now
    entries = sorted(refs.open_entries().items(), key=lambda pair: int(pair[0][1:]))
    lines = []
    for code, entry in entries[:STATUS_LINES]:
        snoozed = parse_iso(entry.get("snoozed"))
        ahead = snoozed if snoozed is not None and snoozed > now else None
        note = f" (snoozed until {_local(ahead, context)})" if ahead else ""
        lines.append(f"[{code}] {_short(str(entry.get('text')))}{note}")
    if len(entries) > STATUS_LINES:
        lines.append(f"+{len(entries) - STATUS_LINES} more")
    muted = context.talk.silences.active(now)
    if muted:
        lines.append(f"{len(muted)} silence(s) active (vigil silence list)")
    return "\n".join(lines) if lines else "nothing open"


def _mute(command: Command, context: Context, reply_id: str) -> str:
    target = str(command.target)
    matchers = _target(target, context.spec)
    if matchers is None:
        known = ", ".join(sorted(_names(context.spec))[:12])
        return (
            f"mute: {target!r} is no source, job, watch or nag rule (known: {known}); nothing done"
        )
    moment = until(command.when, context.now, context.spec.get("timezone"))
    silences = context.talk.silences
    made = [e for e in silences.entries if e.get("reply") == reply_id]  # applied before
    if made:
        silence_id = str(made[0].get("id"))
    else:
        digest = hexdigest(reply_id)
        taken = {str(entry.get("id")) for entry in silences.entries}
        silence_id = next(f"s{digest[:n]}" for n in range(6, 64) if f"s{digest[:n]}" not in taken)
        silences.add(
            {
                "id": silence_id,
                "matchers": matchers,
                "starts": iso(context.now),
                "ends": iso(moment),
                "comment": f"mute {target}",
                "by": "reply",
                "target": target,
                "reply": reply_id,
            },
            context.now,
        )
    return f"muted {target} until {_local(moment, context)} ({silence_id}; unmute {target} ends it)"


def _unmute(command: Command, context: Context) -> str:
    silences, now = context.talk.silences, context.now
    ended = [s for s in silences.active(now) if s.get("target") == command.target]
    for silence in ended:
        silences.expire(str(silence.get("id")), now)
    if not ended:
        return f"unmute: no silence on {command.target} is active"
    return f"unmuted {command.target}"


def _target(target: str, spec: CoordinatorSpecJSON) -> dict[str, list[str]] | None:
    """The matchers `mute TARGET` stands for."""
    if target.lower() in ALL:
        return {"source": ["*"]}
    rules = spec.get("nag") or {}
    if target in rules:
        return {"source": [str(rules[target]["source"])], "kind": ["nag"]}
    if target in (spec.get("watches") or {}):
        return {"watch": [target]}
    if target in (spec.get("jobs") or []):
        return {"job": [target]}
    if target in (spec["coordinator"].get("sources") or {}):
        return {"source": [target]}
    return None


def _names(spec: CoordinatorSpecJSON) -> set[str]:
    coordinator_sources = spec["coordinator"].get("sources") or {}
    return {*(spec.get("nag") or {}), *(spec.get("watches") or {}), *(spec.get("jobs") or []),
            *coordinator_sources}  # fmt: skip


# -- recovery --------------------------------------------------------------------------------


def _over(subject: str, name: str, text: str, context: Context) -> list[Alert]:
    """An item is over (a job ran fine after failing, a source's condition resolved): its code
    closes; one line says so when the config asks (`notify_recovered`), none while it flaps."""
    refs, now, spec = context.talk.refs, context.now, context.spec
    context.closed(subject)  # a failure still held or raised this run is over: not said
    code = refs.open_code(subject)
    entry = refs.codes.get(code or "") or {}
    if code is None or not entry.get("told"):
        return []
    refs.close(code, "recovered", now)
    if not notify_recovered(spec, name):
        return []
    changes, flapping = flap_change(spec, refs, subject, False, now)
    if flapping:
        return []
    since = parse_iso(entry.get("opened"))
    if since is not None:
        text += f" (since {_local(since, context)})"
    if changes:  # just started flapping
        text = flapping_text(name, changes, spec)
    return [_recovery_line(f"{text} [{code}]", subject, {"job": name}, now)]


def satisfied_late(
    spec: CoordinatorSpecJSON, closed: list[tuple[str, dict[str, Any]]], now: datetime
) -> list[Alert]:
    """One line for each watch instance that alerted and is satisfied now (an absence watch's
    source reporting again), when the watch's source asks (`notify_recovered`)."""
    from runner.rules.watches import source_of

    lines = []
    for code, entry in closed:
        _kind, _, rest = str(entry.get("subject")).partition(":")
        name, _, key = rest.partition(":")
        watch = (spec.get("watches") or {}).get(name)
        source = source_of(watch) if watch else None
        if not notify_recovered(spec, source or name):
            continue
        what = name if key in ("", "silence") else f"{name} {key}"
        text = f"{what}: satisfied late, over now [{code}]"
        lines.append(_recovery_line(text, str(entry.get("subject")), {"watch": name}, now))
    return lines


def _recovery_line(text: str, subject: str, about: dict[str, object], now: datetime) -> Alert:
    """The one line saying an item is over (runner.contract.RECOVERED_KIND)."""
    return Alert(
        text=text,
        source=VIGIL_SOURCE,
        priority=ALERT_PRIORITY,
        key=f"{RECOVERED_KIND}:{subject}:{iso(now)}",
        evidence={"kind": RECOVERED_KIND, **about},
    )


def _local(moment: datetime, context: Context) -> str:
    local = moment.astimezone(zone(context.spec.get("timezone")))
    return local.strftime("%a %-d %b %H:%M %Z")


def _short(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 80 else line[:79] + "…"

"""What a coordinator pass does to answer back, kept out of runner.coordinator: the gate before
the outbox (runner.talk.gate) with the codes of what goes out, the codes told, the control
findings that answer back, and the lines for watches satisfied late. Imported only by a pass
that has something for them."""

from __future__ import annotations

from runner.talk.refs import subject_of

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any

    from runner.alerts import Alert
    from runner.spectypes import CoordinatorSpecJSON
    from runner.talk.state import Talk

    Queued = tuple[str, str, list[str], list[str]]
    """runner.coordinator.Queued: (channel, message id, keys of its alerts, keys it names)."""


def gated(
    spec: CoordinatorSpecJSON,
    alerts: list[Alert],
    held: list[Alert],
    talk: Talk,
    held_state: dict[str, Any] | None,
    now: datetime,
    repeated: list[Alert],
    closed: set[str],
) -> tuple[list[Alert], list[tuple[Alert, str]]]:
    """(to send now, with their codes; to hold, and why). Without a readable held.json what
    would be held goes now: never lost. The alerts a killed run queued (`repeated`) get their
    codes again; what is held about an item closed in this run (`closed`) goes."""
    told_before = (held_state or {}).get("told")
    if told_before:  # a killed run's codes, if refs.json missed them
        talk.refs.adopt(told_before, now)
    if repeated:
        talk.refs.give(repeated, now)
    can_hold = held_state is not None
    if closed:
        held = [alert for alert in held if subject_of(alert) not in closed]
    if not alerts and not held:
        return [], []
    from runner.compose import in_quiet_hours
    from runner.talk.gate import split

    quiet = can_hold and in_quiet_hours(spec, now)
    sending, kept = split(spec, alerts, held, talk, now, quiet)
    if not can_hold:
        sending += [alert for alert, _why in kept]
        kept = []
    talk.refs.give(_to_be_named(spec, sending, now), now)
    return sending, kept


def _to_be_named(spec: CoordinatorSpecJSON, sending: list[Alert], now: datetime) -> list[Alert]:
    """Of the alerts to send, those a message will name (caps count the rest in "+N more"), in
    the order of its lines: only they get a code now, so the codes a person sees have no gaps
    and go up line by line."""
    from runner.compose import compose

    order = list(dict.fromkeys(key for m in compose(spec, sending, now) for key in m.named))
    by_key = {alert.key: alert for alert in sending}
    return [by_key[key] for key in order]


def note_told(
    talk: Talk, alerts: list[Alert], queued: list[Queued], now: datetime
) -> dict[str, Any]:
    """The items messages named now have their code (runner.talk.refs); returns code -> the
    alert as its code keeps it, for held.json (written before refs.json)."""
    named = {key for *_, named_keys in queued for key in named_keys}
    told = {}
    for alert in alerts:
        if alert.ref and alert.key in named:
            told[alert.ref] = talk.refs.told(alert, now)
    return told


def satisfied_lines(
    spec: CoordinatorSpecJSON,
    talk: Talk,
    nag_states: dict[str, dict[str, Any]],
    watch_states: dict[str, dict[str, Any]],
    now: datetime,
) -> list[Alert]:
    """Close the codes of what the rules finished; the lines of watches satisfied late."""
    from runner.talk.control import satisfied_late

    closed = talk.refs.close_finished(nag_states, watch_states, now)
    return satisfied_late(spec, closed, now)


def apply_control(
    spec: CoordinatorSpecJSON,
    finding: dict[str, Any],
    talk: Talk,
    nag_state: Callable[[str], dict[str, Any] | None],
    watch_states: dict[str, dict[str, Any]],
    now: datetime,
    earlier: list[Alert],
) -> tuple[list[Alert], list[tuple[Alert, str]], set[str]]:
    """Apply a finding that answers back: (its alerts, alerts to hold from now on, subjects of
    the items it closed). `earlier`, the alerts the run raised before it, loses those about an
    item it closes."""
    from runner.talk.control import Context, apply

    context = Context(spec, talk, nag_state, watch_states, now)
    context.earlier = earlier
    alerts = apply(finding, context)
    return alerts, context.hold, context.forget

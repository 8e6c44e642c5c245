"""The states of a watch instance and the moves between them, each written once.

The rules move an instance only along NEXT (transition() in rules/watches.py checks every move);
runner.stateshapes refuses a state file holding any other state, so a file from another version
is set aside loudly instead of reaching the rules. A state's value is what the file holds.
"""

from __future__ import annotations

from enum import StrEnum


class WatchState(StrEnum):
    """A watch instance's state, as its state file holds it."""

    ARMED = "armed"
    """Waiting: a file watch for its file, a deadline watch for its result."""
    SATISFIED = "satisfied"
    """The condition was met in time, or a silent source reported again."""
    FIRED = "fired"
    """A match, a deadline missed or a source silent too long: alerted."""
    EXPIRED = "expired"
    """A file watch's time ran out, or its path was refused: alerted."""
    DELIVERED = "delivered"
    """Every message that carried the alert is in the delivery ledger."""
    ACKNOWLEDGED = "acknowledged"
    """`vigil ack`: no more repeats or escalation."""


FIRING = frozenset({WatchState.FIRED, WatchState.EXPIRED})
"""The states that raise an instance's alert: it becomes delivered once the ledger holds every
message that carried it, and escalation counts from the first of them."""
ALERTING = FIRING | {WatchState.DELIVERED}
"""Alerted and not acknowledged: repeated, escalated, and what `vigil ack` acknowledges."""
ALERTED = ALERTING | {WatchState.ACKNOWLEDGED}
"""Alerted, acknowledged or not: an absence watch in one of these fires no more until its
source reports again, which satisfies it."""

NEXT: dict[WatchState | None, frozenset[WatchState]] = {
    # A fresh instance: armed (by a finding, or by `vigil watch arm`, which also replaces a
    # finished instance with a fresh one), fired (a match, a silence, a missed deadline) or
    # satisfied (a deadline met).
    None: frozenset({WatchState.ARMED, WatchState.FIRED, WatchState.SATISFIED}),
    WatchState.ARMED: frozenset({WatchState.SATISFIED, WatchState.FIRED, WatchState.EXPIRED}),
    WatchState.SATISFIED: frozenset({WatchState.FIRED}),  # its source fell silent again
    WatchState.FIRED: frozenset(
        {WatchState.DELIVERED, WatchState.ACKNOWLEDGED, WatchState.SATISFIED}
    ),
    WatchState.EXPIRED: frozenset(
        {WatchState.DELIVERED, WatchState.ACKNOWLEDGED, WatchState.SATISFIED}
    ),
    WatchState.DELIVERED: frozenset({WatchState.ACKNOWLEDGED, WatchState.SATISFIED}),
    WatchState.ACKNOWLEDGED: frozenset({WatchState.SATISFIED}),
}
"""Where an instance in each state may go next: every move a rule makes, and no other. Each
state in ALERTED goes to satisfied when an absence watch's source reports again."""


class IllegalTransition(ValueError):
    """A move NEXT does not allow: a rule of this vigil went wrong, not a state file (those are
    checked when read)."""


def known(value: object) -> WatchState | None:
    """`value` as a watch state, or None when it is none."""
    if not isinstance(value, str):
        return None
    try:
        return WatchState(value)
    except ValueError:
        return None


def check_transition(watch: str, key: str, old: object, new: WatchState) -> None:
    """Raise IllegalTransition unless an instance in state `old` (None: a fresh one) may move
    to `new`."""
    shown = "new" if old is None else str(old)
    current = None if old is None else known(old)
    if old is not None and current is None:  # never from a state file: checked when read
        raise IllegalTransition(f"watch {watch} {key}: {shown} -> {new}: {shown!r} is no state")
    allowed = NEXT[current]
    if new not in allowed:
        raise IllegalTransition(
            f"watch {watch} {key}: {shown} -> {new} is not a move a watch instance makes; "
            f"from {shown} it may go to {', '.join(sorted(allowed))}"
        )

"""Recovery lines and flapping: an item that opens and closes `flapping.changes` times within
`flapping.within` (default 3 in an hour) is flapping; one line says so, and nothing more is said
about it (no failure, no recovery) until it has been steady for `within`."""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

    from runner.spectypes import CoordinatorSpecJSON
    from runner.talk.refs import Refs

FLAP_CHANGES = 3
FLAP_WITHIN = 3600


def notify_recovered(spec: CoordinatorSpecJSON, source: str) -> bool:
    """Whether the end of a `source`'s item (a job's failures: the job's name) is said."""
    coordinator = spec["coordinator"]
    policy = (coordinator.get("sources") or {}).get(source)
    wanted = policy.get("notify_recovered") if policy else None
    return bool(coordinator.get("notify_recovered") if wanted is None else wanted)


def limits(spec: CoordinatorSpecJSON) -> tuple[int, int]:
    flapping = spec["coordinator"].get("flapping")
    if not flapping:
        return FLAP_CHANGES, FLAP_WITHIN
    return int(flapping["changes"]), int(flapping["within"])


def flap_change(
    spec: CoordinatorSpecJSON, refs: Refs, subject: str, opened: bool, now: datetime
) -> tuple[int, bool]:
    """Note an item opening or closing: (changes, when this change makes it flapping else 0;
    whether it was flapping already, and so is not to be spoken of)."""
    if refs.flapping(subject, now):
        refs.change(subject, opened, now, limits(spec)[1])
        return 0, True
    most, within = limits(spec)
    changes = refs.change(subject, opened, now, within)
    if changes >= most:
        refs.start_flapping(subject)
        return changes, False
    return 0, False


def flapping_text(name: str, changes: int, spec: CoordinatorSpecJSON) -> str:
    within = limits(spec)[1]
    return (
        f"{name} is flapping: {changes} changes within {within // 60} min; nothing more about "
        f"it until it is steady for {within // 60} min"
    )

"""Rules turn findings into alerts: nag ladders, once-per-period mentions, and plain messages.

The rule modules are imported only by a coordinator run that has findings or watch state to
update; the name of a watch's state file is here, so an idle run can look without them.
"""

from __future__ import annotations


def watch_state_file(name: str) -> str:
    """`<state>/state/watch-<name>.json`: the armed and finished instances of watch `name`."""
    return f"watch-{name}.json"

"""A warm coordinator: a run started by a finding (the path unit) stays `linger:` seconds after
its pass and handles each next finding in-process, without a new start, sandbox or import; it
exits after `linger` seconds without one.

Each pass is the one a fresh start would make (runner.coordinator.run_until_stored: the lock,
claims, the ledger, its line in the journal and runs.jsonl), so a kill at any moment loses
nothing. The run stays one service activation: the path unit does not start another while it
lasts, and starts one for a finding that lands as it exits (DirectoryNotEmpty= is checked again
when the service stops). The heartbeat timer's starts are swallowed by a run in progress, so a
warm run makes the heartbeat's passes itself, `heartbeat` seconds after its last pass, as the
timer (OnUnitActiveSec=) would have. It exits early, leaving the finding to a fresh start, when
another generation went live (its spec may differ), when asked to stop (SIGTERM: at once while
waiting, after the pass during one), and after COORDINATOR_LINGER_MAX seconds (a heartbeat that
is due is made first: the timer's start it stands for was swallowed).
"""

from __future__ import annotations

import sys
from time import monotonic as now

from runner.contract import COORDINATOR_LINGER_MAX
from runner.dirwatch import DirectoryWatch
from runner.exitcodes import OK
from runner.spec import file_identity
from runner.stopping import StopRequest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Lingering:
    """What a warm run watches and for how long (a plain class: `typing` costs ~3 ms)."""

    def __init__(
        self,
        *,
        spec_path: str,
        live: tuple[int, int, int] | None,
        inbox: str,
        seconds: int,
        heartbeat: int,
        role: str = "coordinator",
    ) -> None:
        self.role = role
        """Who lingers, for the journal: `coordinator`, `forward`."""
        self.spec_path = spec_path
        """The spec as the unit names it, through the `current` link."""
        self.live = live
        """Which file spec_path led to when the spec was read (runner.spec.file_identity)."""
        self.inbox = inbox
        self.seconds = seconds
        """How long to stay after a finding's pass (`linger:`)."""
        self.heartbeat = heartbeat
        """Seconds between heartbeat passes (`heartbeat:`)."""


def started_by_path(scope: str, path: str) -> bool:
    """Whether the path unit `path` started this run. systemd keeps $TRIGGER_UNIT from the last
    triggered start for later starts by hand, so the path unit is asked too (after the first
    pass, off the way to delivery): it is `running` while the service it started runs,
    `waiting` during a start by hand."""
    import os

    if os.environ.get("TRIGGER_UNIT") != path:
        return False
    from runner.systemctl import systemctl

    shown, _ = systemctl(scope, "show", "--property=SubState", "--value", path)
    return shown.strip() == "running"


def linger(lingering: Lingering, stop: StopRequest, one_pass: Callable[[bool], int]) -> int:
    """Wait for the next finding and run `one_pass(False)` for it, `one_pass(True)` when a
    heartbeat is due, until `seconds` pass without a finding; OK, or the status of a pass that
    failed (the run ends with it, as a cold start would)."""
    began = last_pass = idle_since = now()
    ends = began + COORDINATOR_LINGER_MAX
    watch = DirectoryWatch(lingering.inbox)
    passes = 0
    why = f"no finding for {lingering.seconds}s"
    try:
        while True:
            beat = last_pass + lingering.heartbeat
            until = min(ends, idle_since + lingering.seconds, beat)
            landed = stop.during(watch.wait, until - now())
            if stop.requested:
                why = "asked to stop"
                break
            if file_identity(lingering.spec_path) != lingering.live:
                # The new generation's own run takes the finding (the path unit starts it when
                # this one exits) and the heartbeat (its timer is no longer swallowed).
                why = "another generation is live: a new run takes over"
                break
            heartbeat = not landed and now() >= beat  # due before leaving: the timer's start
            if not heartbeat and now() >= ends:  # was swallowed by this run
                why = f"warm for {COORDINATOR_LINGER_MAX}s: the next finding starts a new run"
                break
            if not landed and not heartbeat:
                if now() >= idle_since + lingering.seconds:
                    break
                continue
            last_pass = now()
            status = one_pass(heartbeat)
            passes += 1
            if status != OK:
                return status
            if landed:
                idle_since = now()
    finally:
        watch.close()
    print(f"{lingering.role}: {passes} more passes while warm; exiting: {why}", file=sys.stderr)
    return OK

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
waiting, after the pass during one), and after COORDINATOR_LINGER_MAX seconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from runner.contract import COORDINATOR_LINGER_MAX, COORDINATOR_PASS_TIMEOUT
from runner.dirwatch import DirectoryWatch, holds_files
from runner.exitcodes import OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


class Lingering:
    """What a warm run watches and for how long (a plain class: `typing` costs ~3 ms)."""

    def __init__(
        self, *, spec_path: str, live: str, inbox: str, seconds: int, heartbeat: int
    ) -> None:
        self.spec_path = spec_path
        """The spec as the unit names it, through the `current` link."""
        self.live = live
        """The file spec_path led to when the spec was read: its generation."""
        self.inbox = inbox
        self.seconds = seconds
        """How long to stay after a finding's pass (`linger:`)."""
        self.heartbeat = heartbeat
        """Seconds between heartbeat passes (`heartbeat:`)."""


def linger(lingering: Lingering, one_pass: Callable[[bool], int]) -> int:
    """Wait for the next finding and run `one_pass(False)` for it, `one_pass(True)` when a
    heartbeat is due, until `seconds` pass without a finding; OK, or the status of a pass that
    failed (the run ends with it, as a cold start would)."""
    began = last_pass = idle_since = time.monotonic()
    ends = began + COORDINATOR_LINGER_MAX
    stop = _StopRequest()
    watch = DirectoryWatch(lingering.inbox)
    passes = 0
    why = f"no finding for {lingering.seconds}s"
    try:
        while True:
            beat = last_pass + lingering.heartbeat
            until = min(ends, idle_since + lingering.seconds, beat)
            landed = stop.wait(watch, until - time.monotonic())
            if stop.requested:
                why = "asked to stop"
                break
            now = time.monotonic()
            if landed and os.path.realpath(lingering.spec_path) != lingering.live:
                why = "another generation is live: a new run takes the finding"
                break
            if not landed and now >= ends:
                why = f"warm for {COORDINATOR_LINGER_MAX}s: the next finding starts a new run"
                break
            if not landed and now >= idle_since + lingering.seconds:
                break
            if not landed and now < beat:
                continue
            last_pass = now
            # systemd's TimeoutStartSec= covers the whole warm run; each pass gets its own limit.
            signal.alarm(COORDINATOR_PASS_TIMEOUT)
            status = one_pass(not landed)
            signal.alarm(0)
            passes += 1
            if status != OK:
                return status
            if landed:
                idle_since = time.monotonic()
    finally:
        watch.close()
    print(f"coordinator: {passes} more passes while warm; exiting: {why}", file=sys.stderr)
    return OK


class _Stopped(Exception):
    """Raised by SIGTERM's handler into a wait."""


class _StopRequest:
    """SIGTERM (`systemctl stop`, apply, uninstall) ends a wait at once; a pass under way is
    finished first (a killed one is safe too, but one that finishes needs no rerun)."""

    def __init__(self) -> None:
        self.requested = False
        self._waiting = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self._waiting:
            raise _Stopped

    def wait(self, watch: DirectoryWatch, timeout: float) -> bool:
        """Whether a file landed within `timeout` seconds (none asked for: no wait)."""
        if timeout <= 0:
            return holds_files(watch.directory)
        self._waiting = True
        try:
            return not self.requested and watch.wait(timeout)
        except _Stopped:
            return False
        finally:
            self._waiting = False

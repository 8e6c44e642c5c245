"""A warm coordinator: a run started by a finding (the path unit) stays `linger:` seconds after
its pass and handles each next finding in-process, without a new start, sandbox or import; it
exits after `linger` seconds without one.

Each pass is the one a fresh start would make (runner.coordinator.run_until_stored: the lock,
claims, the ledger, its line in the journal and runs.jsonl), so a kill at any moment loses
nothing. The run stays one service activation: the path unit does not start another while it
lasts, and starts one for a finding that lands as it exits (DirectoryNotEmpty= is checked again
when the service stops). It exits early, leaving the finding to a fresh start, when another
generation went live (its spec may differ), when asked to stop (SIGTERM: at once while waiting,
after the pass during one), and after COORDINATOR_LINGER_MAX seconds of handling findings.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from runner.contract import COORDINATOR_LINGER_MAX, COORDINATOR_PASS_TIMEOUT
from runner.dirwatch import DirectoryWatch
from runner.exitcodes import OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def linger(spec_path: str, live: str, inbox: str, seconds: int, one_pass: Callable[[], int]) -> int:
    """Wait up to `seconds` for the next finding, run `one_pass` for it, and again; OK when idle,
    or the status of a pass that failed (the run ends with it, as a cold start would). `live`:
    the file `spec_path` led to when the spec was read."""
    began = time.monotonic()
    stop = _StopRequest()
    watch = DirectoryWatch(inbox)
    passes = 0
    why = f"no finding for {seconds}s"
    try:
        while True:
            ends = began + COORDINATOR_LINGER_MAX
            left = min(seconds, ends - time.monotonic())
            landed = left > 0 and stop.wait(watch, left)
            if stop.requested:
                why = "asked to stop"
                break
            if not landed:
                if time.monotonic() >= ends:
                    why = f"warm for {COORDINATOR_LINGER_MAX}s: the next finding starts a new run"
                break
            if os.path.realpath(spec_path) != live:
                why = "another generation is live: a new run takes the finding"
                break
            # systemd's TimeoutStartSec= covers the whole warm run; each pass gets its own limit.
            signal.alarm(COORDINATOR_PASS_TIMEOUT)
            status = one_pass()
            signal.alarm(0)
            passes += 1
            if status != OK:
                return status
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
        self._waiting = True
        try:
            return not self.requested and watch.wait(timeout)
        except _Stopped:
            return False
        finally:
            self._waiting = False

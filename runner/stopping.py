"""SIGTERM for the coordinator (`systemctl stop`, `vigil run coordinator`, apply, uninstall):
the pass under way is finished, then the run ends; a wait for the next finding ends at once.

A oneshot service killed by SIGTERM counts as failed (only exit status 0 is clean for
Type=oneshot), which would alert about a stop. And a pass that finishes needs no rerun (one
killed is safe too: its claim is taken up again)."""

from __future__ import annotations

import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


class _Stopped(Exception):
    """Raised by SIGTERM's handler into a wait."""


class StopRequest:
    """Installs the handler; `requested` once SIGTERM came."""

    def __init__(self) -> None:
        self.requested = False
        self._waiting = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self._waiting:
            raise _Stopped

    def during(self, wait: Callable[[float], bool], timeout: float) -> bool:
        """`wait(timeout)`, ended by SIGTERM (False then); no wait once it came."""
        if self.requested:
            return False
        self._waiting = True
        try:
            return wait(max(0.0, timeout))
        except _Stopped:
            return False
        finally:
            self._waiting = False

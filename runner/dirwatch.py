"""Waiting for a file to land in a directory: inotify through ctypes (the stdlib has no binding),
or polling where inotify is unavailable. Only a warm coordinator waits (runner.warm), after its
first pass, so the ctypes import (~4 ms) is never paid on the way to a first delivery."""

from __future__ import annotations

import os
import select
import struct
import time
from contextlib import suppress

from runner.intake import holds_files

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
"""A finding is complete when it is renamed in (IN_MOVED_TO), closed after writing
(IN_CLOSE_WRITE) or linked in (IN_CREATE alone: link(), O_TMPFILE). A file created in place is
still being written at IN_CREATE: its writer gets CREATE_SETTLE to close it."""
CREATE_SETTLE = 0.1
"""Seconds a wake-up by IN_CREATE alone waits for the file's IN_CLOSE_WRITE (the path unit,
which also starts on a create, used to give a writer about a process start)."""
COMPLETE = IN_CLOSE_WRITE | IN_MOVED_TO
POLL_EVERY = 0.05
"""Seconds between two looks at the directory where inotify is unavailable."""
_EVENT = struct.Struct("iIII")
"""struct inotify_event without its name: wd, mask, cookie, len (the name's length)."""


class DirectoryWatch:
    """`wait()` returns when the directory holds a file, or after a timeout."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = inotify(directory, COMPLETE | IN_CREATE)

    @property
    def method(self) -> str:
        return "inotify" if self.fd >= 0 else f"polling every {POLL_EVERY:g}s"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def wait(self, timeout: float) -> bool:
        """True when a file is there (now, or once one lands), False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if holds_files(self.directory):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd < 0:
                time.sleep(min(POLL_EVERY, left))
                continue
            events = self._events(left)
            if events and not events & COMPLETE:  # created in place: let its writer finish
                self._events(CREATE_SETTLE)

    def _events(self, timeout: float) -> int:
        """The events that arrive within `timeout` seconds, OR-ed (0: none). They only wake
        the wait: the listing decides."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return 0
        data = b""
        with suppress(BlockingIOError):
            data = os.read(self.fd, 65536)
        mask, offset = 0, 0
        while offset + _EVENT.size <= len(data):
            _, event, _, length = _EVENT.unpack_from(data, offset)
            mask |= event
            offset += _EVENT.size + length
        return mask


def inotify(directory: str, mask: int) -> int:
    """A non-blocking inotify descriptor watching `directory` for the events in `mask`, or -1
    where there is none (then a caller polls)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    except Exception:  # no _ctypes in this build, no such symbol, no memory for libffi...
        return -1
    if fd < 0:
        return -1
    if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
        os.close(fd)
        return -1
    return fd

"""Waiting for a file to land in a directory: inotify through ctypes (the stdlib has no binding),
or polling where inotify is unavailable. Only a warm coordinator waits (runner.warm), after its
first pass, so the ctypes import (~4 ms) is never paid on the way to a first delivery."""

from __future__ import annotations

import os
import select
import time
from contextlib import suppress

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
"""A finding is complete when it is renamed in (IN_MOVED_TO) or closed after writing: waking on
IN_CREATE would hand the coordinator a file still being written."""
POLL_EVERY = 0.05
"""Seconds between two looks at the directory where inotify is unavailable."""


class DirectoryWatch:
    """`wait()` returns when the directory holds a file, or after a timeout."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = _inotify(directory)

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
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                with suppress(BlockingIOError):
                    os.read(self.fd, 65536)  # the events only wake us: the listing decides


def holds_files(directory: str) -> bool:
    """As DirectoryNotEmpty= sees it: dot-names (a writer's temp file, an entry set aside in
    place) do not count, or a file the coordinator leaves alone would wake it for ever."""
    try:
        return any(not name.startswith(".") for name in os.listdir(directory))
    except OSError:
        return False


def _inotify(directory: str) -> int:
    """An inotify descriptor watching `directory` for complete files, or -1."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    except (OSError, AttributeError):  # no libc symbol: not Linux, or a libc without inotify
        return -1
    if fd < 0:
        return -1
    if libc.inotify_add_watch(fd, os.fsencode(directory), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
        os.close(fd)
        return -1
    return fd

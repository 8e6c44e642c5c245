"""Writing files so that a crash leaves the old content or the new one, never half of either."""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


def atomic_write(
    path: Path, data: str | bytes, *, mode: int = 0o644, sync: bool = True, sync_dir: bool = True
) -> None:
    """Write a temp file beside `path`, fsync it (unless `sync` is off), rename it over `path`,
    fsync the directory (unless the caller fsyncs it once after many writes: see write_all)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync and sync_dir:
        fsync_directory(path.parent)


def write_all(files: Iterable[tuple[Path, bytes, int]]) -> int:
    """Atomic writes of many files, made durable together: one syncfs(2) of the filesystem
    (a 1,000-job tree is 4,000 files; an fsync each costs seconds), or an fsync per file where
    syncfs is missing; then each directory once. Returns how many files were written."""
    directories: set[Path] = set()
    written: list[Path] = []
    for path, data, mode in files:
        atomic_write(path, data, mode=mode, sync=False)
        directories.add(path.parent)
        written.append(path)
    if written and not sync_filesystem(written[0]):
        for path in written:
            fsync_file(path)
    for directory in sorted(directories):
        fsync_directory(directory)
    return len(written)


def write_changed(files: Iterable[tuple[Path, bytes, int]]) -> int:
    """Writes that skip files already holding these bytes and mode, without fsync: for build
    output that a rerun regenerates (as compilers and systemd's generators do). Unchanged files
    keep their modification time. An existing file is replaced atomically; a new one is written
    in place, since a crash can only leave a partial new file, which the next run rewrites
    because its bytes differ. Returns how many files were written."""
    count = 0
    made: set[Path] = set()
    for path, data, mode in files:
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if _holds(path, data, mode):
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            atomic_write(path, data, mode=mode, sync=False)
        else:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)  # open's mode is masked by the umask
                handle.write(data)
        count += 1
    return count


def _holds(path: Path, data: bytes, mode: int) -> bool:
    try:
        status = path.lstat()
        if not stat.S_ISREG(status.st_mode) or stat.S_IMODE(status.st_mode) != mode:
            return False
        if status.st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:  # absent or unreadable: write it
        return False


def sync_filesystem(path: Path) -> bool:
    """syncfs(2) on the filesystem holding `path`: every dirty page and inode on it reaches the
    disk (write errors are reported since Linux 5.8). False where the call is unavailable."""
    syncfs = _syncfs()
    if syncfs is None:
        return False
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs: {os.strerror(errno)}", str(path))
    finally:
        os.close(fd)
    return True


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes

        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


def fsync_file(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fsync_file(directory)

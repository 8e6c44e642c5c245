"""Writing files so that a crash leaves the old content or the new one, never half of either.
A write that fails (a full disk, a read-only file system) leaves no temp file behind and raises
an OSError that names the file it was writing. And reading back a tree's manifest, refusing
paths that would leave the tree."""

from __future__ import annotations

import functools
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from compiler.errors import VigilError
from runner.fsatomic import fsync_dir


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write a temp file beside `path`, fsync it, rename it over `path`, fsync the directory."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _stage(path, payload, mode, sync=True)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _stage(path: Path, payload: bytes, mode: int, sync: bool) -> Path:
    """A temp file beside `path` holding `payload`, for a rename over `path`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename in (None, tmp):
            # write() names no file, and the temp file means nothing to the user.
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    return Path(tmp)


def write_all(files: Iterable[tuple[Path, bytes, int]]) -> int:
    """Atomic writes of many files, made durable together: one syncfs(2) of the filesystem
    (a 1,000-job tree is 4,000 files; an fsync each costs seconds), or an fsync per file where
    syncfs is missing; then each directory once. All or nothing when a write fails (a full
    disk): every file is written to a temp file first, and renamed only once all are written.
    Returns how many files were written."""
    directories: set[Path] = set()
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in files:
            _make_parent(path, directories)
            staged.append((_stage(path, data, mode, sync=False), path))
    except BaseException:
        _discard(staged)
        raise
    _rename_all(staged)
    written = [path for _, path in staged]
    if written and not sync_filesystem(written[0]):
        for path in written:
            fsync_file(path)
    for directory in sorted(directories):
        fsync_dir(directory)
    return len(written)


def write_changed(files: Iterable[tuple[Path, bytes, int]]) -> int:
    """Writes that skip files already holding these bytes and mode, without fsync: for build
    output that a rerun regenerates (as compilers and systemd's generators do). Unchanged files
    keep their modification time. An existing file is replaced atomically; a new one is written
    in place, since a crash can only leave a partial new file, which the next run rewrites
    because its bytes differ. All or nothing when a write fails (a full disk): replacements wait
    in temp files until every file is written, and the new files are removed again, so the
    directory keeps the previous output, never a mix. Returns how many files were written."""
    made: set[Path] = set()
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    masked = read_umask()
    try:
        for path, data, mode in files:
            _make_parent(path, made)
            # Most files are new: the exclusive create is the existence check (no stat first).
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except FileExistsError:
                if not _holds(path, data, mode):
                    staged.append((_stage(path, data, mode, sync=False), path))
                continue
            created.append(path)
            try:
                if mode & masked:  # open's mode is masked by the umask
                    os.fchmod(fd, mode)
                _write_fd(fd, data)
            except OSError as error:
                raise OSError(error.errno, error.strerror, str(path)) from None
            finally:
                os.close(fd)
    except BaseException:
        _discard(staged)
        for path in created:
            path.unlink(missing_ok=True)
        raise
    _rename_all(staged)
    return len(created) + len(staged)


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_umask() -> int:
    """The process's umask, read without setting it (os.umask can only set it, which would
    race with other threads creating files); all bits where it cannot be read (not Linux),
    so that every mode is set explicitly."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o7777


def _make_parent(path: Path, made: set[Path]) -> None:
    """Create `path`'s directory, once per directory of a tree."""
    if path.parent not in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        made.add(path.parent)


def _rename_all(staged: list[tuple[Path, Path]]) -> None:
    """Rename each staged temp file over its target (renames need no space)."""
    for index, (temporary, path) in enumerate(staged):
        try:
            os.replace(temporary, path)
        except BaseException:
            _discard(staged[index:])
            raise


def _discard(staged: list[tuple[Path, Path]]) -> None:
    for temporary, _ in staged:
        temporary.unlink(missing_ok=True)


def staged_write(path: Path, data: bytes, mode: int) -> Path | None:
    """A temp file beside `path` holding `data`, for the caller to rename over `path` later
    (os.replace) or remove; None when `path` already holds these bytes and mode."""
    if _holds(path, data, mode):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return _stage(path, data, mode, sync=False)


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


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise VigilError(f"{directory / 'manifest.json'}: unreadable manifest: {exc}") from None
    if not isinstance(data, dict):
        raise VigilError(f"{directory / 'manifest.json'}: unreadable manifest")
    return data


def inside(directory: Path, relative: str) -> Path:
    """`directory / relative`, refusing paths that would leave it (a tampered manifest)."""
    target = Path(os.path.normpath(directory / relative))
    if not target.is_relative_to(directory) or relative.startswith("/"):
        raise VigilError(f"refusing path outside {directory}: {relative}")
    return target

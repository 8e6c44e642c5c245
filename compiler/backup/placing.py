"""Writing what an import restores into place: a new file never over another, a directory
made room for (moved aside only when --replace says so), and an area's files staged complete
beside their directory and moved in."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from compiler.backup.archive import NOTHING_WRITTEN
from compiler.backup.places import holds_files, moved_aside
from compiler.errors import UsageError, VigilError
from compiler.fsutil import write_all
from runner.fsatomic import describe, fsync_dir


def write_new(path: Path, content: bytes) -> None:
    """A file that did not exist: written aside, then linked into place (never over one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                os.fsync(handle.fileno())
            os.link(temporary, path)
        finally:
            os.unlink(temporary)
    except FileExistsError:
        raise UsageError(f"{path} appeared meanwhile: {NOTHING_WRITTEN}; --config-out") from None
    except OSError as error:
        raise VigilError(f"cannot write {path}: {describe(error)}") from None
    fsync_dir(path.parent)


def make_room(directory: Path, moment: str, replace: bool, kept: frozenset[str]) -> None:
    """Make room: a directory with files (other than the secrets `kept` there) is moved aside
    when --replace says so, and the kept secrets are moved back; without --replace, files
    that appeared since the check are refused."""
    if not holds_files(directory, kept):
        return
    aside = moved_aside(directory, moment)
    if not replace:
        raise VigilError(f"{directory} is not empty (it filled since the check): nothing was "
                         "moved; --replace moves it aside")  # fmt: skip
    os.rename(directory, aside)
    for relative in sorted(kept):
        if (aside / relative).exists():
            (directory / relative).parent.mkdir(parents=True, exist_ok=True)
            os.rename(aside / relative, directory / relative)


def place(directory: Path, members: Iterator[tuple[str, bytes, int]], strip: str) -> None:
    """Members of one area into `directory` (their paths less `strip`), written complete in a
    staging directory beside it and moved into place (into it, when it is there already:
    holding only secrets, or what an interrupted import of the same archive restored)."""
    staging = directory.with_name(f".{directory.name}.import-partial")
    _remove_tree(staging)  # a crashed import's
    try:
        staging.mkdir(parents=True, mode=0o700)
        files = ((archive_path.removeprefix(strip), content, mode)
                 for archive_path, content, mode in members)  # fmt: skip
        write_all((staging / relative, content, mode) for relative, content, mode in files)
        _merge(staging, directory)
    except OSError as error:
        _remove_tree(staging)
        raise VigilError(f"cannot restore {directory}: {describe(error)}") from None
    fsync_dir(directory.parent)


def _merge(staging: Path, directory: Path) -> None:
    """`staging` renamed to `directory`, or, when that exists, its entries moved into it."""
    if not directory.is_dir() or directory.is_symlink():
        os.rename(staging, directory)
        return
    for entry in sorted(staging.iterdir()):
        target = directory / entry.name
        if entry.is_dir() and target.is_dir() and not target.is_symlink():
            _merge(entry, target)
        else:
            os.replace(entry, target)
    staging.rmdir()
    fsync_dir(directory)


def _remove_tree(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)

"""Atomic, durable writes: whole files or none, and durability paid once per tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler import fsutil


def test_write_all_writes_every_file_with_its_mode(tmp_path: Path) -> None:
    files = [
        (tmp_path / "a" / "one", b"1\n", 0o644),
        (tmp_path / "a" / "two", b"2\n", 0o600),
        (tmp_path / "b" / "three", b"3\n", 0o755),
    ]
    assert fsutil.write_all(files) == 3
    for path, data, mode in files:
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o7777 == mode
    assert not list(tmp_path.rglob(".*.tmp"))


def test_write_all_falls_back_to_an_fsync_per_file(monkeypatch, tmp_path: Path) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(fsutil, "_syncfs", lambda: None)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    fsutil.write_all([(tmp_path / f"f{i}", b"x", 0o644) for i in range(5)])
    assert len(synced) == 5 + 1  # each file, then the directory once


def test_syncfs_is_used_where_available(tmp_path: Path) -> None:
    if fsutil._syncfs() is None:
        pytest.skip("no syncfs in this libc")
    assert fsutil.sync_filesystem(tmp_path) is True


def test_syncfs_errors_are_raised(monkeypatch, tmp_path: Path) -> None:
    import ctypes

    def failing(_fd: int) -> int:
        ctypes.set_errno(5)
        return -1

    monkeypatch.setattr(fsutil, "_syncfs", lambda: failing)
    with pytest.raises(OSError, match="syncfs"):
        fsutil.write_all([(tmp_path / "f", b"x", 0o644)])


def test_write_changed_leaves_identical_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "unit"
    assert fsutil.write_changed([(path, b"same", 0o644)]) == 1
    before = path.stat()
    assert fsutil.write_changed([(path, b"same", 0o644)]) == 0
    assert path.stat().st_ino == before.st_ino
    assert fsutil.write_changed([(path, b"same", 0o600)]) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    assert fsutil.write_changed([(path, b"new", 0o600)]) == 1
    assert path.read_bytes() == b"new"


def test_write_changed_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"same")
    elsewhere.chmod(0o644)
    link = tmp_path / "unit"
    link.symlink_to(elsewhere)
    assert fsutil.write_changed([(link, b"same", 0o644)]) == 1
    assert not link.is_symlink()
    assert elsewhere.read_bytes() == b"same"


def test_a_failed_write_leaves_the_old_file(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")

    def broken(_src, _dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        fsutil.atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_write_changed_gives_new_files_their_mode_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    files = [(tmp_path / f"f{mode:o}", b"x", mode) for mode in (0o755, 0o644, 0o600)]
    previous = os.umask(umask)
    try:
        assert fsutil.read_umask() == umask
        assert fsutil.write_changed(files) == 3
    finally:
        os.umask(previous)
    for path, _, mode in files:
        assert path.stat().st_mode & 0o7777 == mode


def test_an_unreadable_umask_sets_every_mode(monkeypatch) -> None:
    def unreadable(*_args: object, **_kwargs: object) -> None:
        raise OSError("no /proc")

    monkeypatch.setattr("builtins.open", unreadable)
    assert fsutil.read_umask() == 0o7777

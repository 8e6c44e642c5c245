"""Where an installed config's state directory is, per scope, and what stands for the home
directory: export records it, import rewrites paths under the old one to the new one."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from compiler.layout import Scope


def home(scope: Scope) -> str | None:
    """The home directory of the scope (`--root DIR` stands for it); None in system scope."""
    if scope.system:
        return None
    return str(scope.root) if scope.root is not None else os.path.expanduser("~")


def state_path(state_dir: str, scope: Scope) -> Path:
    """The state directory as written in the config (`~` kept), on this machine. Under
    `--root DIR` it is inside DIR (DIR stands for home in user scope, for / in system scope)."""
    if scope.root is None:
        return Path(os.path.expanduser(state_dir))
    if state_dir == "~" or state_dir.startswith("~/"):
        return scope.root / state_dir[2:]
    return scope.root / state_dir.lstrip("/")


def moved_aside(path: Path, stamp: str) -> Path:
    """Where `--replace` moves an existing directory: beside it, never deleted."""
    return path.with_name(f"{path.name}.replaced-{stamp}")


def holds_files(directory: Path, kept: frozenset[str] = frozenset()) -> bool:
    """Whether anything but empty directories and the files `kept` (relative paths: the
    config's secrets kept there) is below `directory` (or it is not one)."""
    if not directory.exists() and not directory.is_symlink():
        return False
    if directory.is_symlink() or not directory.is_dir():
        return True
    for top, _dirs, files in os.walk(directory):
        below = Path(top).relative_to(directory)
        if any((below / name).as_posix() not in kept for name in files):
            return True
    return False


def secret_files(state: Path, secrets: Iterable[str]) -> frozenset[str]:
    """The secret files (paths as the config writes them) inside the state directory, relative
    to it: they are the user's, never state (export leaves them out, import leaves them be)."""
    top = os.path.realpath(state)
    found = set()
    for written in secrets:
        path = os.path.realpath(os.path.expanduser(written))
        if path.startswith(top + os.sep):
            found.add(Path(os.path.relpath(path, top)).as_posix())
    return frozenset(found)


def stamp_dir(scope: Scope) -> Path:
    """Where systemd keeps a `Persistent=` timer's stamp (its mtime: the last trigger)."""
    if scope.system:
        return (scope.root or Path("/")) / "var/lib/systemd/timers"
    data_home = os.environ.get("XDG_DATA_HOME")
    if scope.root is None and data_home and os.path.isabs(data_home):
        return Path(data_home) / "systemd/timers"
    return (scope.root or Path(os.path.expanduser("~"))) / ".local/share/systemd/timers"


def stamp(scope: Scope, timer: str) -> Path:
    return stamp_dir(scope) / f"stamp-{timer}"

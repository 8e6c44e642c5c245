"""What git knows about a config file: its revision, whether it has uncommitted changes, and its
content at an older revision (for `vigil apply --git REV`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from compiler.errors import VigilError


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VigilError(f"git {' '.join(args)}: {exc}") from None


def describe(path: Path) -> dict[str, Any] | None:
    """{"revision": sha, "dirty": bool} when `path` is tracked in a git repository, else None."""
    directory = path.resolve().parent
    try:
        tracked = _git(directory, "ls-files", "--error-unmatch", "--", path.name)
    except VigilError:
        return None
    if tracked.returncode != 0:
        return None
    revision = _git(directory, "rev-parse", "HEAD").stdout.decode().strip()
    status = _git(directory, "status", "--porcelain", "--", path.name).stdout.strip()
    return {"revision": revision or None, "dirty": bool(status)}


def show(path: Path, revision: str) -> tuple[bytes, str]:
    """The bytes of `path` at `revision`, and the full commit id."""
    directory = path.resolve().parent
    commit = _git(directory, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode != 0:
        raise VigilError(f"{path}: no git revision {revision!r}")
    sha = commit.stdout.decode().strip()
    top = _git(directory, "rev-parse", "--show-toplevel").stdout.decode().strip()
    relative = path.resolve().relative_to(Path(top).resolve()).as_posix()
    shown = _git(directory, "show", f"{sha}:{relative}")
    if shown.returncode != 0:
        raise VigilError(f"{path} does not exist at {revision} ({sha[:12]})")
    return shown.stdout, sha

"""`vigil init`: a commented starter config, its schema beside it, and a git repository."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

from compiler.errors import UsageError, VigilError, Warn
from compiler.fsutil import atomic_write
from compiler.language import schemas
from compiler.language.model.types import NAME_PATTERN


def init(path: Path, name: str, timezone: str, *, warn: Warn) -> list[str]:
    """Write the starter files; returns what was done, one line each."""
    if path.exists():
        raise UsageError(f"{path} already exists; vigil init never overwrites a config")
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(f"invalid name {name!r}: letters, digits, '-' and '_'")
    template = (
        resources.files("compiler.generate").joinpath("templates/starter.yaml").read_text("utf-8")
    )
    atomic_write(path, template.format(name=name, timezone=timezone))
    done = [f"wrote {path}"]
    schema = path.parent / schemas.CONFIG_SCHEMA_FILE
    atomic_write(schema, schemas.render_all()[schemas.CONFIG_SCHEMA_FILE])
    done.append(f"wrote {schema} (editors complete keys from it)")
    done += _git(path, warn)
    return done


def _git(path: Path, warn: Warn) -> list[str]:
    directory = path.parent.resolve()
    try:
        inside = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
        )
    except OSError:
        warn("git not found; keep the config in version control")
        return []
    if inside.returncode == 0:
        return [f"{directory} is already in a git repository: commit {path.name} there"]
    result = subprocess.run(["git", "init", "-q", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise VigilError(f"git init failed: {result.stderr.strip()}")
    return [f"initialized a git repository in {directory}"]

"""From a config file (or its content at a git revision) to a rendered tree, and onto disk."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from compiler import gitinfo
from compiler.errors import VigilError
from compiler.fsutil import write_changed
from compiler.loader import load_file, load_text
from compiler.render import Source, Tree, render
from compiler.validate import Validated, validate_document


def default_python() -> str:
    """The interpreter vigil runs on: it has the runner package installed beside the compiler."""
    return sys.executable or "/usr/bin/python3"


def build(
    path: Path,
    *,
    python: str | None = None,
    system: bool = False,
    revision: str | None = None,
) -> tuple[Validated, Tree]:
    """Validate and render `path`, or its content at git `revision`. Raises ConfigError."""
    if revision is None:
        document = load_file(path)
        text = path.read_bytes()
        source = Source(str(path.absolute()), text, gitinfo.describe(path))
    else:
        text, sha = gitinfo.show(path, revision)
        label = f"{path.absolute()}@{sha[:12]}"
        document = load_text(text, label)
        source = Source(label, text, {"revision": sha, "dirty": False})
    validated = validate_document(document)
    tree = render(validated.config, source, python=python or default_python(), system=system)
    return validated, tree


def write_tree(tree: Tree, out: Path) -> tuple[int, list[str]]:
    """Write `tree` into `out`; remove what an earlier compile there wrote and this one did not.
    Files vigil did not write are never touched; files already up to date are not rewritten.
    This is build output (no fsync); installed generations are written durably by apply.
    Returns how many files were written and the removed paths."""
    previous = read_manifest(out)
    written = write_changed(
        (out / relative, generated.content, generated.mode)
        for relative, generated in sorted(tree.items())
        if relative != "manifest.json"
    )
    stale = sorted(set(previous.get("files", {})) - set(tree))
    for relative in stale:
        (out / relative).unlink(missing_ok=True)
    # The manifest goes last: it only ever describes files that are complete on disk.
    manifest = tree["manifest.json"]
    written += write_changed([(out / "manifest.json", manifest.content, manifest.mode)])
    return written, stale


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

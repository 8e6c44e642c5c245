"""What `vigil export` and `vigil import` say: what an archive holds, and what the new machine
still needs (the secrets, which no archive holds). On stderr, as every label and summary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.backup.export import Exported
    from compiler.backup.restore import Importer


def _contents(manifest: dict[str, Any]) -> list[str]:
    counts = manifest.get("counts") or {}
    generations = manifest.get("generations") or {}
    numbers = generations.get("numbers") or []
    git = (manifest.get("config") or {}).get("git")
    revision = "not in git"
    if isinstance(git, dict) and git.get("revision"):
        revision = f"git {str(git['revision'])[:12]}" + (" (dirty)" if git.get("dirty") else "")
    return [
        f"  config: {(manifest.get('config') or {}).get('file')} ({revision})",
        f"  generations: {len(numbers)} (current: {generations.get('current')})",
        f"  state files: {counts.get('state_files', 0)} (inbox {counts.get('inbox', 0)}, "
        f"outbox {counts.get('outbox', 0)}); runs recorded: {counts.get('runs', 0)}",
    ]


def _secrets(manifest: dict[str, Any]) -> list[str]:
    secrets = manifest.get("secrets") or []
    if not secrets:
        return ["  secrets: none needed"]
    lines = ["  secrets NOT in the archive (copy them to the new machine, chmod 600):"]
    return lines + [f"    {s.get('name')}: {s.get('path')}" for s in secrets]


def show_exported(exported: Exported) -> None:
    manifest = exported.manifest
    lines = [
        f"exported {manifest['name']} ({manifest['scope']}) to {exported.path}: "
        f"{exported.size} bytes, vigil {manifest['vigil']}, archive format {manifest['format']}",
        *_contents(manifest),
        *_secrets(manifest),
    ]
    if exported.unchecked:
        names = ", ".join(exported.unchecked)
        lines.append(f"  (secret files unreadable here, so not searched for: {names})")
    print("\n".join(lines), file=sys.stderr)


def show_import(importer: Importer) -> None:
    manifest = importer.archive.manifest
    lines = [
        f"importing {importer.name} from {importer.path} (vigil {manifest['vigil']}, "
        f"exported {manifest.get('created')}):",
        *_contents(manifest),
        f"  config file here: {importer.config}",
        f"  state directory here: {importer.state}",
        *[f"  warning: {problem}" for problem in importer.missing_secrets],
    ]
    print("\n".join(lines), file=sys.stderr)

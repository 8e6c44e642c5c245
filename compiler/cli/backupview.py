"""What `vigil export` and `vigil import` say: what an archive holds, and what the new machine
still needs (the secrets, which no archive holds). On stderr, as every label and summary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compiler.backup.export import Exported
    from compiler.backup.manifest import Manifest
    from compiler.backup.restore import Importer


def _contents(manifest: Manifest) -> list[str]:
    counts = manifest.counts
    revision = "not in git"
    if manifest.git_revision:
        revision = f"git {manifest.git_revision[:12]}" + (" (dirty)" if manifest.git_dirty else "")
    return [
        f"  config: {manifest.config_file} ({revision})",
        f"  generations: {len(manifest.numbers)} (current: {manifest.current})",
        f"  state files: {counts.state_files} (inbox {counts.inbox}, "
        f"outbox {counts.outbox}); runs recorded: {counts.runs}",
    ]


def _secrets(manifest: Manifest) -> list[str]:
    if not manifest.secrets:
        return ["  secrets: none needed"]
    lines = ["  secrets NOT in the archive (copy them to the new machine, chmod 600):"]
    return lines + [f"    {s.name}: {s.path}" for s in manifest.secrets]


def show_exported(exported: Exported) -> None:
    manifest = exported.manifest
    lines = [
        f"exported {manifest.name} ({manifest.scope}) to {exported.path}: "
        f"{exported.size} bytes, vigil {manifest.vigil}, archive format {manifest.format}",
        *_contents(manifest),
        *_secrets(manifest),
    ]
    if exported.unreadable:
        names = ", ".join(exported.unreadable)
        lines.append(f"  warning: secrets not searched for in the archive (their files are "
                     f"unreadable here; --unchecked-secrets): {names}")  # fmt: skip
    if exported.too_short:
        names = ", ".join(exported.too_short)
        lines.append(f"  warning: secrets not searched for in the archive (shorter than 8 "
                     f"characters, they would match by chance): {names}")  # fmt: skip
    print("\n".join(lines), file=sys.stderr)


def show_import(importer: Importer) -> None:
    manifest = importer.archive.manifest
    lines = [
        f"importing {importer.name} from {importer.path} (vigil {manifest.vigil}, "
        f"exported {manifest.created}):",
        *_contents(manifest),
        f"  config file here: {importer.config}",
        f"  state directory here: {importer.state}",
        *[f"  warning: {problem}" for problem in importer.missing_secrets],
    ]
    if importer.archive.note:
        lines.append(f"  note: {importer.archive.note}")
    if importer.resuming:
        lines.append("  resuming an import of this archive that stopped after restoring the "
                     "state: it is applied now")  # fmt: skip
    print("\n".join(lines), file=sys.stderr)

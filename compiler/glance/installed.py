"""The generation that runs, as a picture shows it: its config, git revision and when it was
applied, and the installed files changed by hand since (drift)."""

from __future__ import annotations

import hashlib

from compiler.fsutil import read_manifest
from compiler.glance.model import InstalledGeneration
from compiler.install.generations import Installation


def installed_generation(
    installation: Installation, config_changed: bool
) -> InstalledGeneration | None:
    """None: nothing is installed (`current` leads nowhere)."""
    number = installation.current()
    if number is None:
        return None
    manifest = read_manifest(installation.generation_dir(number))
    source = manifest.get("config") or {}
    drift = tuple(
        path
        for path, entry in sorted((manifest.get("files") or {}).items())
        if _sha256(installation.installed(path)) != entry.get("sha256")
    )
    return InstalledGeneration(
        generation=number,
        config_file=source.get("file"),
        config_sha256=source.get("sha256"),
        git=source.get("git"),
        applied=installation.meta(number).get("created"),
        drift=drift,
        config_changed=config_changed,
    )


def _sha256(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()

"""The plan: what apply would change, file by file, against what is installed now."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from compiler.generate.render import Tree
from compiler.install.generations import Installation
from compiler.install.pauses import Pause

Action = Literal["create", "update", "delete", "unchanged"]


@dataclass(frozen=True)
class Change:
    path: str  # in the tree: units/NAME, bin/NAME, specs/NAME.json, config.yaml
    action: Action
    old: bytes | None
    new: bytes | None

    @property
    def unit(self) -> str | None:
        return self.path.removeprefix("units/") if self.path.startswith("units/") else None


@dataclass
class Plan:
    name: str
    changes: list[Change]
    current: int | None  # the installed generation, if any
    drift: list[str] = field(default_factory=list)  # installed files edited since installed
    foreign: list[str] = field(default_factory=list)  # unit files vigil did not write
    disabled: list[str] = field(default_factory=list)  # timers stopped by hand (vigil disable)
    paused: list[Pause] = field(default_factory=list)  # jobs paused by pause_after: kept stopped

    @property
    def held(self) -> set[str]:
        """Timers apply leaves stopped: those of paused jobs."""
        return {unit for pause in self.paused for unit in pause.timers}

    def count(self, action: Action) -> int:
        return sum(change.action == action for change in self.changes)

    @property
    def has_changes(self) -> bool:
        return bool(self.disabled) or any(c.action != "unchanged" for c in self.changes)

    def units(self, *actions: Action) -> list[str]:
        return [c.unit for c in self.changes if c.unit and c.action in actions]

    def summary(self) -> dict[str, int]:
        return {action: self.count(action) for action in ("create", "update", "delete")}


def make_plan(new: Tree | None, installation: Installation) -> Plan:
    """Compare `new` (None: remove everything) with the installed generation and files."""
    manifest = installation.manifest()
    old_files: dict[str, dict[str, str]] = manifest.get("files", {})
    new_files = {path: generated.content for path, generated in (new or {}).items()}
    new_files.pop("manifest.json", None)
    changes = []
    for path in sorted(set(old_files) | set(new_files)):
        installed = installation.installed(path) if path in old_files else None
        wanted = new_files.get(path)
        changes.append(
            Change(path, _action(installed, wanted, path in old_files), installed, wanted)
        )
    plan = Plan(installation.name, changes, installation.current())
    plan.drift = [
        path
        for path, entry in sorted(old_files.items())
        if _sha(installation.installed(path)) != entry["sha256"]
    ]
    plan.foreign = [
        path
        for path in sorted(new_files)
        if path.startswith("units/")
        and path not in old_files
        and installation.installed(path) is not None
    ]
    return plan


def _action(installed: bytes | None, wanted: bytes | None, known: bool) -> Action:
    if wanted is None:
        return "delete"
    if not known or installed is None:
        return "create"
    return "unchanged" if installed == wanted else "update"


def _sha(content: bytes | None) -> str | None:
    return hashlib.sha256(content).hexdigest() if content is not None else None

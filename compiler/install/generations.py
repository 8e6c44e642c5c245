"""Installed generations of one config: generations/N holds a complete rendered tree, `current`
links to the live one, and the unit directory holds copies of its unit files."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import UsageError, VigilError
from compiler.fsutil import atomic_write, inside, read_manifest, write_all
from compiler.layout import Scope
from runner.contract import GENERATION_META as META
from runner.fsatomic import fsync_dir

if TYPE_CHECKING:  # the inspecting commands read installations without the renderer
    from compiler.generate.render import Tree


NOT_RENDERED_HERE = "not_rendered_here"
"""In generation.json of a generation imported from another machine that could not be rendered
again here (why): its units would run that machine's interpreter, so rollback refuses it."""


@dataclass(frozen=True)
class Installation:
    scope: Scope
    name: str

    @property
    def data_dir(self) -> Path:
        return self.scope.data_dir(self.name)

    @property
    def unit_dir(self) -> Path:
        return self.scope.unit_dir()

    def generation_dir(self, number: int) -> Path:
        return self.data_dir / self.tree_name(number)

    @staticmethod
    def tree_name(number: int) -> str:
        """A generation's directory, relative to the data directory."""
        return f"generations/{number}"

    def numbers(self) -> list[int]:
        directory = self.data_dir / "generations"
        if not directory.is_dir():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if re.fullmatch(r"[0-9]+", p.name))

    def current(self) -> int | None:
        link = self.data_dir / "current"
        if not link.is_symlink():
            return None
        target = Path(os.readlink(link)).name
        return int(target) if re.fullmatch(r"[0-9]+", target) else None

    def manifest(self, number: int | None = None) -> dict[str, Any]:
        number = self.current() if number is None else number
        return {} if number is None else read_manifest(self.generation_dir(number))

    def meta(self, number: int) -> dict[str, Any]:
        try:
            data = json.loads((self.generation_dir(number) / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update_meta(self, number: int, **values: Any) -> None:
        atomic_write(
            self.generation_dir(number) / META,
            json.dumps({**self.meta(number), **values}, indent=2, sort_keys=True) + "\n",
        )

    def load_tree(self, number: int) -> Tree:
        """A generation's files exactly as they were rendered, checked against its manifest."""
        from compiler.generate.render import GeneratedFile

        directory = self.generation_dir(number)
        manifest = read_manifest(directory)
        if not manifest:
            raise VigilError(f"generation {number} of {self.name} has no manifest ({directory})")
        tree: Tree = {}
        for relative, entry in manifest["files"].items():
            content = inside(directory, relative).read_bytes()
            tree[relative] = GeneratedFile(content, int(entry["mode"], 8))
            if tree[relative].sha256 != entry["sha256"]:
                raise VigilError(f"generation {number}: {relative} does not match its manifest")
        tree["manifest.json"] = GeneratedFile((directory / "manifest.json").read_bytes(), 0o644)
        return tree

    def installed(self, relative: str) -> bytes | None:
        """What is on disk now for a tree path: unit files from the unit directory, everything
        else from the current generation."""
        if relative.startswith("units/"):
            path = self.unit_dir / relative.removeprefix("units/")
        else:
            number = self.current()
            if number is None:
                return None
            path = inside(self.generation_dir(number), relative)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def write_generation(self, tree: Tree, meta: dict[str, Any]) -> int:
        """Store `tree` as the next generation: written aside, then renamed into place."""
        number = max(self.numbers(), default=0) + 1
        final = self.generation_dir(number)
        staging = final.with_name(f".{number}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            write_all(
                (inside(staging, relative), generated.content, generated.mode)
                for relative, generated in tree.items()
            )
            atomic_write(staging / META, json.dumps(meta, indent=2, sort_keys=True) + "\n")
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk leaves no half generation
            raise
        fsync_dir(final.parent)
        return number

    def switch(self, number: int | None) -> None:
        """Point `current` at a generation (atomically), or remove it."""
        link = self.data_dir / "current"
        if number is None:
            link.unlink(missing_ok=True)
            return
        temporary = link.with_name(".current.new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(f"generations/{number}")
        os.replace(temporary, link)
        fsync_dir(link.parent)

    def remove_generation(self, number: int) -> None:
        shutil.rmtree(self.generation_dir(number), ignore_errors=True)


def installed_names(scope: Scope) -> list[str]:
    """Configs that have a current generation in this scope."""
    base = scope.data_dir("x").parent
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "current").is_symlink())


def resolve_name(scope: Scope, name: str | None) -> str:
    if name:
        return name
    names = installed_names(scope)
    if len(names) == 1:
        return names[0]
    if not names:
        raise VigilError("nothing is installed in this scope")
    raise UsageError(f"several configs are installed ({', '.join(names)}); pick one with --name")


def history(scope: Scope, name: str | None) -> list[dict[str, Any]]:
    installation = Installation(scope, resolve_name(scope, name))
    current = installation.current()
    rows = []
    for number in installation.numbers():
        meta = installation.meta(number)
        manifest = installation.manifest(number)
        git = (manifest.get("config") or {}).get("git") or {}
        rows.append(
            {
                "generation": number,
                "current": number == current,
                "created": meta.get("created"),
                "reason": meta.get("reason"),
                "revision": git.get("revision"),
                "dirty": git.get("dirty"),
                "changes": meta.get("changes", {}),
            }
        )
    return rows

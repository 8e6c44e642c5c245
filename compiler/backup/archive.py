"""The export archive, defined once: a tar.gz whose first member is a manifest (format version,
the vigil that wrote it, what the setup is, and the sha256, size and mode of every other member),
followed by the config as applied, the installed generations and the state directory.

An archive is read whole and checked before anything is written: every member a regular file
at a known, relative path, listed in the manifest with its hash and size, and every listed
member present. A damaged or hostile archive is refused as bad input (exit 2)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from compiler.errors import UsageError

FORMAT = 1
"""The archive format this vigil writes and reads; a newer one is refused."""
MANIFEST = "vigil-export.json"
"""The first member: what the archive holds."""
CONFIG = "config.yaml"
"""The config file as applied (the live generation's copy of it)."""
MAX_MEMBER_MODE = 0o755
"""Modes are restored no wider than this (no set-id bits, nothing writable by others)."""


class Area(StrEnum):
    """Where a member goes on import, by its first path component."""

    CONFIG = "config.yaml"
    GENERATIONS = "generations"
    STATE = "state"


class ArchiveError(UsageError):
    """The archive cannot be used: damaged, hostile or from a newer vigil (exit 2)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}; nothing was written")


@dataclass(frozen=True)
class Member:
    path: str
    content: bytes
    mode: int = 0o644

    def entry(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.content).hexdigest()
        return {"sha256": digest, "size": len(self.content), "mode": f"{self.mode:04o}"}

    @property
    def area(self) -> Area:
        return area_of(self.path)


@dataclass(frozen=True)
class Archive:
    """A checked archive: its manifest and its members by path."""

    manifest: dict[str, Any]
    members: dict[str, Member]

    def under(self, area: Area) -> list[Member]:
        return [m for m in self.members.values() if m.area == area and m.path != CONFIG]


def area_of(path: str) -> Area:
    return Area.CONFIG if path == CONFIG else Area(path.split("/", 1)[0])


def safe_path(path: str) -> bool:
    """A relative path below one of the archive's areas, with no `..`, `.` or empty part."""
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        return False
    if path == CONFIG:
        return True
    if parts[0] == Area.GENERATIONS:
        return len(parts) >= 3 and parts[1].isdigit()
    return parts[0] == Area.STATE and len(parts) >= 2


def write(target: io.BufferedIOBase, manifest: dict[str, Any], members: list[Member]) -> None:
    """The archive into an open file: the manifest first, with every member's entry."""
    manifest = {**manifest, "format": FORMAT, "members": {m.path: m.entry() for m in members}}
    text = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    with tarfile.open(fileobj=target, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for member in [Member(MANIFEST, text), *members]:
            info = tarfile.TarInfo(member.path)
            info.size, info.mode, info.mtime = len(member.content), member.mode, 0
            tar.addfile(info, io.BytesIO(member.content))


def read(path: Path, version: str) -> Archive:
    """The archive at `path`, checked whole (ArchiveError otherwise); `version` is this vigil's."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the archive: {error.strerror or error}") from None
    try:
        entries = _entries(data)
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ArchiveError(path, f"not a readable vigil archive ({error})") from None
    if not entries or entries[0][0].name != MANIFEST:
        raise ArchiveError(path, f"no {MANIFEST} as its first member: not a vigil export")
    manifest = _manifest(path, entries[0][1])
    check_versions(path, manifest, version)
    listed = manifest["members"]
    members: dict[str, Member] = {}
    for info, content in entries[1:]:
        members[info.name] = _member(path, info, content, listed, members)
    absent = sorted(set(listed) - set(members))
    if absent:
        raise ArchiveError(path, f"member {absent[0]} is listed in the manifest but missing")
    return Archive(manifest, members)


def _entries(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member and its content; links and devices have no content (refused later)."""
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            entries.append((info, handle.read() if handle else b""))
    return entries


def _manifest(path: Path, content: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(content)
    except ValueError:
        raise ArchiveError(path, f"{MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        raise ArchiveError(path, f"{MANIFEST} lists no members")
    for key in ("name", "scope", "vigil", "format"):
        if key not in manifest:
            raise ArchiveError(path, f"{MANIFEST} has no {key!r}")
    return manifest


def _member(
    path: Path,
    info: tarfile.TarInfo,
    content: bytes,
    listed: dict[str, Any],
    seen: dict[str, Member],
) -> Member:
    name = info.name
    if not info.isreg():
        raise ArchiveError(path, f"member {name!r} is not a regular file (a link or a device)")
    if not safe_path(name):
        raise ArchiveError(path, f"member {name!r} has an unsafe or unknown path")
    if name in seen:
        raise ArchiveError(path, f"member {name} appears twice")
    entry = listed.get(name)
    if not isinstance(entry, dict):
        raise ArchiveError(path, f"member {name} is not in the manifest")
    member = Member(name, content, _mode(entry.get("mode")))
    if member.entry()["size"] != entry.get("size"):
        raise ArchiveError(path, f"member {name} is {len(content)} bytes, the manifest says "
                                 f"{entry.get('size')}")  # fmt: skip
    if member.entry()["sha256"] != entry.get("sha256"):
        raise ArchiveError(path, f"member {name} does not match its sha256 in the manifest")
    return member


def _mode(text: object) -> int:
    try:
        return int(str(text), 8) & MAX_MEMBER_MODE
    except ValueError:
        return 0o644


def version_key(text: str) -> tuple[int, ...]:
    """1.10.2 -> (1, 10, 2); what follows the numbers (rc1, +local) is ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def check_versions(path: Path, manifest: dict[str, Any], version: str) -> None:
    """Refuse an archive of a newer format, or written by a newer vigil."""
    written = str(manifest["vigil"])
    if not isinstance(manifest["format"], int) or manifest["format"] > FORMAT:
        raise ArchiveError(
            path,
            f"archive format {manifest['format']} (written by vigil {written}) is newer than "
            f"vigil {version} reads (format {FORMAT}): upgrade vigil here first",
        )
    if version_key(written) > version_key(version):
        raise ArchiveError(
            path,
            f"written by vigil {written}, newer than this vigil {version}: upgrade vigil here "
            "first",
        )

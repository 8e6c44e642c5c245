"""The export archive, defined once: a tar.gz whose first member is the manifest (manifest.py:
format version, the vigil that wrote it, what the setup is, and the sha256, size and mode of
every other member), followed by the config as applied, the installed generations and the
state directory.

An archive is read as a stream and checked before anything is written: the manifest first
(its size capped, its fields typed); then each member is refused before its content is read
when it is not a regular file at a known, relative path, not listed, of another size than
listed, sparse, or past the total cap; its content is hashed in chunks on its way into a
private temporary directory, never held whole in memory; every listed member must be present.
A damaged or hostile archive is refused as bad input (exit 2)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from compiler.backup.manifest import (
    FORMAT,
    BadManifest,
    Listed,
    Manifest,
    unknown_here,
    version_key,
)
from compiler.errors import UsageError, VigilError
from runner.contract import TMP, TRIES
from runner.fsatomic import describe
from runner.running import RUNNING

MANIFEST = "vigil-export.json"
"""The first member: what the archive holds."""
CONFIG = "config.yaml"
"""The config file as applied (the live generation's copy of it)."""
MAX_MANIFEST = 16 * 2**20
"""A manifest larger than this is not one export wrote."""
MAX_TOTAL = 4 * 2**30
"""The most an archive's members may hold together (bytes, uncompressed)."""
HEADER_ALLOWANCE = 64 * 2**10
"""Bytes of tar headers allowed per member on top of the listed sizes."""
CHUNK = 2**20
NOTHING_WRITTEN = "nothing was written"
"""How every refusal before the first write ends."""
LEFT_OUT_TOP = frozenset({TMP, TRIES, RUNNING})
"""Top-level entries of the state directory that describe this machine's processes (temp files,
tries in progress, markers of running runs), not state to carry over."""
GENERATION = re.compile(r"[1-9][0-9]*")


class Area(StrEnum):
    """Where a member goes on import, by its first path component."""

    CONFIG = "config.yaml"
    GENERATIONS = "generations"
    STATE = "state"


class ArchiveError(UsageError):
    """The archive cannot be used: damaged, hostile or from a newer vigil (exit 2)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}; {NOTHING_WRITTEN}")


@dataclass(frozen=True)
class Member:
    """A member to write: its path in the archive, content and mode."""

    path: str
    content: bytes
    mode: int = 0o644

    def entry(self) -> Listed:
        digest = hashlib.sha256(self.content).hexdigest()
        return Listed(digest, len(self.content), self.mode)

    @property
    def area(self) -> Area:
        return area_of(self.path)


@dataclass(frozen=True)
class Stored:
    """A member read from an archive, checked, kept in the archive's temporary directory."""

    path: str
    mode: int
    file: Path

    def content(self) -> bytes:
        return self.file.read_bytes()

    @property
    def area(self) -> Area:
        return area_of(self.path)


@dataclass
class Archive:
    """A checked archive: its manifest, its members by path and its own sha256."""

    manifest: Manifest
    members: dict[str, Stored]
    sha256: str
    note: str | None = None
    """What the user should know about the versions (this vigil's own is unknown)."""
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def under(self, area: Area) -> list[Stored]:
        return [m for m in self.members.values() if m.area == area and m.path != CONFIG]

    def close(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()


def area_of(path: str) -> Area:
    return Area.CONFIG if path == CONFIG else Area(path.split("/", 1)[0])


def left_out(relative: str) -> bool:
    """Whether export leaves a path of the state directory (relative to it) out: this machine's
    processes (tmp/, tries/, running/), dot-names (temp files, the coordinator's lock) and
    locks. Import refuses such a member, by this same definition."""
    parts = relative.split("/")
    return (
        parts[0] in LEFT_OUT_TOP
        or any(part.startswith(".") for part in parts)
        or parts[-1].endswith(".lock")
    )


def safe_path(path: str) -> bool:
    """A relative path below one of the archive's areas that export writes: no `..`, `.`,
    empty or dot-named part, a generation by its number, nothing export leaves out."""
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        return False
    if path == CONFIG:
        return True
    if parts[0] == Area.GENERATIONS:
        dotted = any(part.startswith(".") for part in parts)
        return len(parts) >= 3 and GENERATION.fullmatch(parts[1]) is not None and not dotted
    return parts[0] == Area.STATE and len(parts) >= 2 and not left_out("/".join(parts[1:]))


def write(target: io.BufferedIOBase, manifest: Manifest, members: list[Member]) -> None:
    """The archive into an open file: the manifest first, with every member's entry."""
    manifest = replace(manifest, format=FORMAT, members={m.path: m.entry() for m in members})
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    with tarfile.open(fileobj=target, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for member in [Member(MANIFEST, text), *members]:
            info = tarfile.TarInfo(member.path)
            info.size, info.mode, info.mtime = len(member.content), member.mode, 0
            tar.addfile(info, io.BytesIO(member.content))


class _Capped(io.RawIOBase):
    """The decompressed stream, refused once more than `allowance` bytes were read from it:
    tar headers (a pax header, a long name) are read whole by tarfile, so they are capped too."""

    def __init__(self, stream: gzip.GzipFile) -> None:
        self.stream, self.read_so_far, self.allowance = stream, 0, MAX_MANIFEST + HEADER_ALLOWANCE

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self.stream.readinto(buffer)
        self.read_so_far += count
        if self.read_so_far > self.allowance:
            raise _TooLarge
        return count


class _TooLarge(Exception):
    pass


def read(path: Path, version: str) -> Archive:
    """The archive at `path`, checked whole (ArchiveError otherwise); `version` is this vigil's."""
    digest = _file_sha256(path)
    workdir = tempfile.TemporaryDirectory(prefix="vigil-import-")
    try:
        manifest, members = _read_members(path, version, Path(workdir.name))
    except BaseException:
        workdir.cleanup()
        raise
    note = None
    if unknown_here(version):
        note = (f"this vigil's version is unknown ({version}: no package metadata), so the "
                f"archive's (vigil {manifest.vigil}) was not compared with it")  # fmt: skip
    return Archive(manifest, members, digest, note, workdir)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except OSError as error:
        raise UsageError(f"{path}: cannot read the archive: {error.strerror or error}") from None
    return digest.hexdigest()


def _read_members(path: Path, version: str, workdir: Path) -> tuple[Manifest, dict[str, Stored]]:
    members: dict[str, Stored] = {}
    try:
        with gzip.open(path, "rb") as stream:
            capped = _Capped(stream)
            with tarfile.open(fileobj=io.BufferedReader(capped), mode="r|") as tar:
                first = tar.next()
                if first is None or first.name != MANIFEST or not first.isreg():
                    raise ArchiveError(path, f"no {MANIFEST} as its first member: not a "
                                             "vigil export")  # fmt: skip
                if first.size > MAX_MANIFEST:
                    raise ArchiveError(path, f"{MANIFEST} is {first.size} bytes: not a vigil "
                                             "export")  # fmt: skip
                manifest = parse_manifest(path, _whole(tar, first))
                check_versions(path, manifest, version)
                total = sum(entry.size for entry in manifest.members.values())
                if total > MAX_TOTAL:
                    raise ArchiveError(path, f"its members hold {total} bytes, more than "
                                             f"{MAX_TOTAL} (the most an import reads)")  # fmt: skip
                capped.allowance += total + HEADER_ALLOWANCE * len(manifest.members)
                while (info := tar.next()) is not None:
                    members[info.name] = _member(path, tar, info, manifest, members, workdir)
    except _TooLarge:
        raise ArchiveError(path, "it holds more than its manifest lists") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ArchiveError(path, f"not a readable vigil archive ({error})") from None
    except OSError as error:  # gzip's errors are OSErrors too
        raise ArchiveError(path, f"not a readable vigil archive ({error})") from None
    absent = sorted(set(manifest.members) - set(members))
    if absent:
        raise ArchiveError(path, f"member {absent[0]} is listed in the manifest but missing")
    return manifest, members


def _whole(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(info)
    return handle.read() if handle is not None else b""


def parse_manifest(path: Path, content: bytes) -> Manifest:
    """The manifest member's content, parsed and checked (ArchiveError otherwise)."""
    try:
        data = json.loads(content)
    except ValueError:
        raise ArchiveError(path, f"{MANIFEST} is not JSON") from None
    if isinstance(data, dict) and not isinstance(data.get("members"), dict):
        raise ArchiveError(path, f"{MANIFEST} lists no members")
    try:
        return Manifest.parse(data)
    except BadManifest as error:
        raise ArchiveError(path, f"{MANIFEST}: {error}") from None


def _member(
    path: Path,
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    manifest: Manifest,
    seen: dict[str, Stored],
    workdir: Path,
) -> Stored:
    """One member, refused before its content is read unless it is what the manifest lists;
    then hashed in chunks into `workdir`."""
    name = info.name
    if not info.isreg():
        raise ArchiveError(path, f"member {name!r} is not a regular file (a link or a device)")
    if not safe_path(name):
        raise ArchiveError(path, f"member {name!r} has an unsafe or unknown path")
    if name in seen:
        raise ArchiveError(path, f"member {name} appears twice")
    entry = manifest.members.get(name)
    if entry is None:
        raise ArchiveError(path, f"member {name} is not in the manifest")
    if info.size != entry.size:
        raise ArchiveError(path, f"member {name} is {info.size} bytes, the manifest says "
                                 f"{entry.size}")  # fmt: skip
    if info.issparse():
        raise ArchiveError(path, f"member {name!r} is a sparse file: export writes none")
    handle = tar.extractfile(info)
    assert handle is not None  # a regular file
    file = workdir / f"{len(seen)}"
    digest = hashlib.sha256()
    with _unpacked(path, file) as out:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            _write(path, out, chunk)
    if digest.hexdigest() != entry.sha256:
        raise ArchiveError(path, f"member {name} does not match its sha256 in the manifest")
    return Stored(name, entry.mode, file)


@contextlib.contextmanager
def _unpacked(path: Path, file: Path) -> Iterator[io.BufferedWriter]:
    try:
        handle = open(file, "xb")  # noqa: SIM115 (closed below; its errors are not the archive's)
    except OSError as error:
        raise _unpack_error(path, error) from None
    with handle:
        yield handle


def _write(path: Path, out: io.BufferedWriter, chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as error:
        raise _unpack_error(path, error) from None


def _unpack_error(path: Path, error: OSError) -> VigilError:
    """This machine cannot hold the members while they are checked (a full temp directory):
    not the archive's fault (exit 1)."""
    where = tempfile.gettempdir()
    return VigilError(f"{path}: cannot unpack it in {where} to check it: {describe(error)}; "
                      f"{NOTHING_WRITTEN} (TMPDIR chooses another place)")  # fmt: skip


def check_versions(path: Path, manifest: Manifest, version: str) -> None:
    """Refuse an archive of another format, of an unparseable vigil version, or written by a
    newer vigil. When this vigil's own version is unknown (a source checkout without
    metadata), only the format is checked; `read` says so in its note."""
    written = manifest.vigil
    if not 1 <= manifest.format <= FORMAT:
        raise ArchiveError(
            path,
            f"archive format {manifest.format} (written by vigil {written}) is not one vigil "
            f"{version} reads (format {FORMAT}): upgrade vigil here first",
        )
    key = version_key(written)
    if key is None:
        raise ArchiveError(path, f"written by vigil {written!r}, not a version vigil knows")
    mine = version_key(version)
    if mine is not None and key > mine:
        raise ArchiveError(
            path,
            f"written by vigil {written}, newer than this vigil {version}: upgrade vigil here "
            "first",
        )

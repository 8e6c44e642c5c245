"""The export archive's manifest, defined once: what `vigil export` writes as its first member
and what `vigil import` reads, as one typed structure. `Manifest.parse` checks every field's
type and range (a field of another shape is bad input, exit 2), so nothing after it needs a
`.get(...) or {}`. Also the versions: which vigil wrote an archive and whether this one reads it.

Which vigil is newer is decided by PEP 440 order (release, then a/b/rc, post and dev segments),
parsed here: `packaging` is not among vigil's runtime dependencies."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from compiler.layout import ScopeKind

FORMAT = 1
"""The archive format this vigil writes and reads; another one is refused."""
MAX_MEMBER_MODE = 0o755
"""Modes are restored no wider than this (no set-id bits, nothing writable by others)..."""
MIN_MEMBER_MODE = 0o600
"""...and no narrower than this: the user reads and writes every restored file."""
LATEST_TIME = 2**32
"""A timer's last trigger later than this (the year 2106) is not a time a stamp had."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
TIMER = re.compile(r"[A-Za-z0-9_.@:-]+\.timer")


class BadManifest(ValueError):
    """A field of the manifest is missing or of another shape (the reason, for the user)."""


@dataclass(frozen=True)
class Listed:
    """A member's entry: its content's sha256 and size, and the mode to restore it with."""

    sha256: str
    size: int
    mode: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "mode": f"{self.mode:04o}"}


@dataclass(frozen=True)
class Secret:
    name: str
    path: str


@dataclass(frozen=True)
class Counts:
    """What the archive holds, for the summaries."""

    generation_files: int = 0
    state_files: int = 0
    runs: int = 0
    """Lines of runs.jsonl and runs.jsonl.1: the runs recorded."""
    inbox: int = 0
    outbox: int = 0


@dataclass(frozen=True)
class Manifest:
    name: str
    scope: ScopeKind
    vigil: str
    format: int = FORMAT
    created: str | None = None
    config_file: str | None = None
    """The config file as it was applied, where it was exported."""
    git_revision: str | None = None
    git_dirty: bool = False
    current: int | None = None
    numbers: tuple[int, ...] = ()
    state_dir: str | None = None
    home: str | None = None
    """The exporting user's home (None in system scope)."""
    secrets: tuple[Secret, ...] = ()
    counts: Counts = Counts()
    timers: Mapping[str, float] = field(default_factory=dict)
    """Each timer's last trigger (seconds since the epoch), finite and plausible."""
    members: Mapping[str, Listed] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        git = None
        if self.git_revision is not None:
            git = {"revision": self.git_revision, "dirty": self.git_dirty}
        return {
            "format": self.format,
            "vigil": self.vigil,
            "name": self.name,
            "scope": str(self.scope),
            "created": self.created,
            "config": {"file": self.config_file, "git": git},
            "generations": {"current": self.current, "numbers": list(self.numbers)},
            "state_dir": self.state_dir,
            "home": self.home,
            "secrets": [asdict(secret) for secret in self.secrets],
            "counts": asdict(self.counts),
            "timers": dict(self.timers),
            "members": {path: entry.to_json() for path, entry in self.members.items()},
        }

    @classmethod
    def parse(cls, data: object) -> Manifest:
        """The manifest in `data` (parsed JSON); BadManifest names the first bad field."""
        top = _object(data, "the manifest")
        name = _text(top, "name")
        if not NAME.fullmatch(name):
            raise BadManifest(f"`name` {name!r} is not a config name")
        scope = _text(top, "scope")
        if scope not in set(ScopeKind):
            raise BadManifest(f"`scope` {scope!r} is not one of {', '.join(ScopeKind)}")
        config = _object(top.get("config", {}), "`config`")
        git = _object(config.get("git") or {}, "`config.git`")
        generations = _object(top.get("generations", {}), "`generations`")
        return cls(
            name=name,
            scope=ScopeKind(scope),
            vigil=_text(top, "vigil"),
            format=_format(top),
            created=_text(top, "created", None),
            config_file=_text(config, "file", None, "config.file"),
            git_revision=_text(git, "revision", None, "config.git.revision"),
            git_dirty=git.get("dirty") is True,
            current=_number(generations.get("current"), "generations.current", optional=True),
            numbers=tuple(
                _number(n, "generations.numbers")
                for n in _list(generations.get("numbers", []), "generations.numbers")
            ),
            state_dir=_text(top, "state_dir", None),
            home=_text(top, "home", None),
            secrets=tuple(_secret(s) for s in _list(top.get("secrets", []), "secrets")),
            counts=_counts(_object(top.get("counts", {}), "`counts`")),
            timers=_timers(name, _object(top.get("timers", {}), "`timers`")),
            members=_members(top),
        )


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadManifest(f"{what} is not a JSON object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadManifest(f"`{what}` is not a list")
    return value


_REQUIRED = object()


def _text(data: dict[str, Any], key: str, default: object = _REQUIRED, what: str = "") -> Any:
    if key not in data and default is not _REQUIRED:
        return default
    value = data.get(key)
    if value is None and default is None:
        return None
    if not isinstance(value, str):
        raise BadManifest(f"`{what or key}` is {'missing' if key not in data else 'not text'}")
    return value


def _number(value: object, what: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if type(value) is not int or value < 1:
        raise BadManifest(f"`{what}` holds {value!r}, not a generation number")
    return value


def _format(top: dict[str, Any]) -> int:
    value = top.get("format")
    if type(value) is not int or value < 1:
        raise BadManifest(f"`format` is {value!r}, not an archive format")
    return value


def _secret(value: object) -> Secret:
    data = _object(value, "an entry of `secrets`")
    name, path = _text(data, "name", what="secrets.name"), _text(data, "path", what="secrets.path")
    return Secret(name, path)


def _counts(data: dict[str, Any]) -> Counts:
    values = {}
    for key in Counts.__dataclass_fields__:
        value = data.get(key, 0)
        if type(value) is not int or value < 0:
            raise BadManifest(f"`counts.{key}` is {value!r}, not a count")
        values[key] = value
    return Counts(**values)


def _timers(name: str, data: dict[str, Any]) -> dict[str, float]:
    timers = {}
    for timer, moment in data.items():
        if not TIMER.fullmatch(timer) or not timer.startswith(f"{name}-"):
            raise BadManifest(f"`timers` names {timer!r}, not a timer of {name}")
        plausible = type(moment) in (int, float) and math.isfinite(moment)
        if not plausible or not 0 < moment < LATEST_TIME:
            raise BadManifest(f"`timers.{timer}` is {moment!r}, not a time")
        timers[timer] = float(moment)
    return timers


def _members(top: dict[str, Any]) -> dict[str, Listed]:
    listed = {}
    for path, value in _object(top.get("members"), "`members`").items():
        entry = _object(value, f"`members.{path}`")
        sha256, size = entry.get("sha256"), entry.get("size")
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise BadManifest(f"member {path} has no sha256")
        if type(size) is not int or size < 0:
            raise BadManifest(f"member {path} has no size")
        listed[path] = Listed(sha256, size, clamp_mode(entry.get("mode")))
    return listed


def clamp_mode(text: object) -> int:
    """A listed mode as restored: no wider than 0755, no narrower than 0600."""
    try:
        mode = int(str(text), 8)
    except ValueError:
        mode = 0o644
    return (mode & MAX_MEMBER_MODE) | MIN_MEMBER_MODE


# --- versions --------------------------------------------------------------------------------

_PEP440 = re.compile(
    r"v?(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:[-_.]?(?P<pre>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>[0-9]*))?"
    r"(?:[-_.]?(?P<post>post|rev|r)[-_.]?(?P<post_n>[0-9]*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev_n>[0-9]*))?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?",
    re.IGNORECASE,
)
_PHASES = {"a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "rc": 3, "pre": 3, "preview": 3}

VersionKey = tuple[tuple[int, ...], tuple[int, int], int, tuple[int, int]]


def version_key(text: str) -> VersionKey | None:
    """A PEP 440 version's place in order (None when `text` is not one): 0.2.dev3 < 0.2a1 <
    0.2rc1 < 0.2 = 0.2.0 < 0.2.post1; a +local part is ignored."""
    match = _PEP440.fullmatch(text.strip())
    if match is None:
        return None
    release = tuple(int(part) for part in match["release"].split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre, post, dev = match["pre"], match["post"], match["dev_n"]
    dev_only = pre is None and post is None and dev is not None
    phase = (0, 0) if dev_only else (4, 0) if pre is None else (_PHASES[pre.lower()], 0)
    if pre is not None:
        phase = (phase[0], int(match["pre_n"] or 0))
    post_key = -1 if post is None else int(match["post_n"] or 0)
    dev_key = (1, 0) if dev is None else (0, int(dev or 0))
    return release, phase, post_key, dev_key


def unknown_here(here: str) -> bool:
    """This vigil's version is not known (no metadata): the archive's is not compared."""
    return version_key(here) is None

"""`vigil export`: one installed config (its config as applied, every generation and its state
directory with run history) into one archive, written atomically.

Each file is read once: state files are replaced by rename, so each read sees a whole version
even while the coordinator runs. No secret is ever archived: only the names and paths from
`secrets:`, and every member is searched for each readable secret's content before anything
is written."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.backup import archive
from compiler.backup.archive import Area, Member
from compiler.backup.places import home, stamp, state_path
from compiler.errors import VigilError
from compiler.install.generations import Installation
from compiler.operate.setup import ConfigView
from runner.contract import COORDINATOR_LOCK, INBOX, OUTBOX, RUNS, STATE, TMP, TRIES
from runner.fsatomic import describe, fsync_dir
from runner.running import RUNNING
from runner.spend import LOCK as SPEND_LOCK

LEFT_OUT = frozenset({TMP, TRIES, RUNNING})
"""Top-level entries of the state directory that describe this machine's processes (temp files,
tries in progress, markers and locks of running runs), not state to carry over."""
LOCK_WAIT = 60
"""Seconds export waits for a coordinator pass or a spend booking to end."""
SHORTEST_SECRET = 8
"""Shorter secret contents are not searched for: they would match by chance (a 4-digit PIN)."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote, for the summary."""

    path: Path
    size: int
    manifest: dict[str, Any]
    unchecked: tuple[str, ...]
    """Secrets whose files could not be read here: not searched for in the archive."""


def export(installation: Installation, setup: ConfigView, out: Path) -> Exported:
    """Write the archive of `installation` (whose live setup is `setup`) to `out`."""
    from compiler import __version__

    setup.check_local("vigil export")
    current = installation.current()
    if current is None:
        raise VigilError(f"{installation.name} is not installed ({installation.data_dir})")
    members = [_config(installation, current), *_generations(installation)]
    state = state_path(setup.state_dir, installation.scope)
    with _between_passes(state):
        members += list(_state(state))
    secrets = _secrets(members[0].content)
    unchecked = _check_no_secret(members, secrets)
    source = installation.manifest(current).get("config") or {}
    manifest = {
        "vigil": __version__,
        "name": installation.name,
        "scope": "system" if installation.scope.system else "user",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"file": source.get("file"), "git": source.get("git")},
        "generations": {"current": current, "numbers": installation.numbers()},
        "state_dir": setup.state_dir,
        "home": home(installation.scope),
        "secrets": [{"name": name, "path": path} for name, path in secrets.items()],
        "counts": _counts(members),
        "timers": _last_triggers(installation, current),
    }
    size = _write_atomically(out, manifest, members)
    return Exported(out, size, {**manifest, "format": archive.FORMAT}, unchecked)


def _last_triggers(installation: Installation, current: int) -> dict[str, float]:
    """Each timer's last trigger (its `Persistent=` stamp's mtime), so that the new machine's
    timers catch up what fell due during the move, as after the machine was off."""
    units = installation.manifest(current).get("units") or {}
    found = {}
    for unit in sorted(u for u in units if u.endswith(".timer")):
        with contextlib.suppress(OSError):
            found[unit] = stamp(installation.scope, unit).stat().st_mtime
    return found


def _config(installation: Installation, current: int) -> Member:
    path = installation.generation_dir(current) / archive.CONFIG
    return Member(archive.CONFIG, _read_once(path) or b"", 0o600)


def _generations(installation: Installation) -> Iterator[Member]:
    for number in installation.numbers():
        top = installation.generation_dir(number)
        for relative, content, mode in _files(top, frozenset()):
            yield Member(f"{Area.GENERATIONS}/{number}/{relative}", content, mode)


@contextlib.contextmanager
def _between_passes(state: Path) -> Iterator[None]:
    """Hold the coordinator's lock and the spend ledger's while the state is read: a pass
    changes several files (the nag counts, the outbox, the claim it takes from the inbox), and
    a copy made halfway through one would nag again or lose a count on the new machine."""
    with contextlib.ExitStack() as stack:
        for path in (state / COORDINATOR_LOCK, state / STATE / SPEND_LOCK):
            if path.parent.is_dir():  # never creates the state directory
                stack.enter_context(_flock(path))
        yield


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise VigilError(f"cannot lock {path}: {describe(error)}") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VigilError(f"{path} has been held for {LOCK_WAIT} s (a coordinator "
                                     "pass or a model call): try again") from None  # fmt: skip
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _state(state: Path) -> Iterator[Member]:
    for relative, content, mode in _files(state, LEFT_OUT):
        yield Member(f"{Area.STATE}/{relative}", content, mode)


def _files(top: Path, left_out: frozenset[str]) -> Iterator[tuple[str, bytes, int]]:
    """Regular files below `top` (relative path, content, mode), each read once. Names starting
    with `.` are temp files and locks, never state; links are not followed or kept."""
    for directory, dirs, files in os.walk(top):
        below = Path(directory).relative_to(top)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (below == Path() and d in left_out)
        )
        for name in sorted(files):
            if name.startswith(".") or (below == Path() and name in left_out):
                continue
            path = Path(directory) / name
            try:
                info = path.lstat()
            except FileNotFoundError:  # taken meanwhile (a claimed finding)
                continue
            content = _read_once(path) if stat.S_ISREG(info.st_mode) else None
            if content is not None:
                yield (below / name).as_posix(), content, stat.S_IMODE(info.st_mode)


def _read_once(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise VigilError(f"cannot read {path}: {describe(error)}") from None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _secrets(config_text: bytes) -> dict[str, str]:
    """The config's `secrets:` (name -> path as written)."""
    from compiler.language.loader import load_text
    from compiler.language.validate import validate_document

    document = load_text(config_text, archive.CONFIG)
    return dict(validate_document(document, check_calendar=False).config.secrets)


def _check_no_secret(members: list[Member], secrets: dict[str, str]) -> tuple[str, ...]:
    """Refuse when any member holds a secret's content; the secrets that could not be read."""
    unchecked = []
    for name, written in secrets.items():
        try:
            value = Path(os.path.expanduser(written)).read_bytes().strip()
        except OSError:
            unchecked.append(name)
            continue
        if len(value) < SHORTEST_SECRET:
            continue
        for member in members:
            if value in member.content:
                raise VigilError(
                    f"{member.path} holds the content of secret {name!r}: nothing exported "
                    "(an archive never holds a secret; remove it from that file first)"
                )
    return tuple(unchecked)


def _counts(members: list[Member]) -> dict[str, int]:
    state = [m.path.removeprefix(f"{Area.STATE}/") for m in members if m.area == Area.STATE]
    runs = [m for m in members if m.path in (f"state/{RUNS}", f"state/{RUNS}.1")]
    return {
        "generation_files": sum(1 for m in members if m.area == Area.GENERATIONS),
        "state_files": len(state),
        "runs": sum(m.content.count(b"\n") for m in runs),
        "inbox": sum(1 for path in state if path.startswith(f"{INBOX}/")),
        "outbox": sum(1 for path in state if path.startswith(f"{OUTBOX}/")),
    }


def _write_atomically(out: Path, manifest: dict[str, Any], members: list[Member]) -> int:
    """A temp file beside `out`, renamed over it once complete; a failure leaves nothing."""
    directory = out.absolute().parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as error:
        raise VigilError(f"cannot write {out}: {describe(error)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            archive.write(handle, manifest, members)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # the state holds what the agent found: the user's alone
        os.replace(temporary, out)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise VigilError(f"cannot write {out}: {describe(error)}") from None
        raise
    fsync_dir(directory)
    return out.stat().st_size

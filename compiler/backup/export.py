"""`vigil export`: one installed config (its config as applied, every generation and its state
directory with run history) into one archive, written atomically.

Each file is read once: state files are replaced by rename, so each read sees a whole version
even while the coordinator runs. No secret is ever archived: only the names and paths from
`secrets:` (a secret file inside the state directory is left out of it), and every member is
searched for each secret file's content, lines and values before anything is written. A secret
export cannot read is an error unless the user says go on (`unchecked_secrets`); a secret too
short to search for reliably is named in the summary."""

from __future__ import annotations

import contextlib
import fcntl
import json
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
from compiler.backup.manifest import LATEST_TIME, Counts, Manifest, Secret
from compiler.backup.places import home, secret_files, stamp, state_path
from compiler.errors import VigilError
from compiler.install.generations import Installation
from compiler.operate.setup import ConfigView
from runner.contract import COORDINATOR_LOCK, INBOX, OUTBOX, RUNS, STATE
from runner.fsatomic import describe, fsync_dir
from runner.spend import LOCK as SPEND_LOCK

LOCK_WAIT = 60
"""Seconds export waits for a coordinator pass or a spend booking to end."""
SHORTEST_SECRET = 8
"""Shorter pieces of a secret are not searched for: they would match by chance (a 4-digit PIN);
a secret with no longer piece is named in the summary as not searched for."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote, for the summary."""

    path: Path
    size: int
    manifest: Manifest
    unreadable: tuple[str, ...]
    """Secrets whose files could not be read here (export went on: `unchecked_secrets`)."""
    too_short: tuple[str, ...]
    """Secrets too short to search for reliably: not searched for in the archive."""


def export(
    installation: Installation, setup: ConfigView, out: Path, unchecked_secrets: bool = False
) -> Exported:
    """Write the archive of `installation` (whose live setup is `setup`) to `out`;
    `unchecked_secrets`: go on when a secret file cannot be read (it cannot be searched for)."""
    from compiler import __version__

    setup.check_local("vigil export")
    current = installation.current()
    if current is None:
        raise VigilError(f"{installation.name} is not installed ({installation.data_dir})")
    config = _config(installation, current)
    secrets = _secrets(config.content)
    members = [config, *_generations(installation)]
    state = state_path(setup.state_dir, installation.scope)
    with _between_passes(state):
        members += list(_state(state, secret_files(state, secrets.values())))
    check = _check_no_secret(members, secrets)
    if check.unreadable and not unchecked_secrets:
        names = ", ".join(check.unreadable)
        raise VigilError(f"cannot read secret {names} here, so the archive cannot be searched "
                         "for it: nothing exported (--unchecked-secrets goes on without that "
                         "check)")  # fmt: skip
    source = installation.manifest(current).get("config") or {}
    git: dict[str, Any] = source.get("git") or {}
    manifest = Manifest(
        name=installation.name,
        scope=installation.scope.kind,
        vigil=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        config_file=source.get("file") if isinstance(source.get("file"), str) else None,
        git_revision=str(git["revision"]) if git.get("revision") else None,
        git_dirty=git.get("dirty") is True,
        current=current,
        numbers=tuple(installation.numbers()),
        state_dir=setup.state_dir,
        home=home(installation.scope),
        secrets=tuple(Secret(name, path) for name, path in secrets.items()),
        counts=_counts(members),
        timers=_last_triggers(installation, current),
    )
    size = _write_atomically(out, manifest, members)
    return Exported(out, size, manifest, check.unreadable, check.too_short)


def _last_triggers(installation: Installation, current: int) -> dict[str, float]:
    """Each timer's last trigger (its `Persistent=` stamp's mtime), so that the new machine's
    timers catch up what fell due during the move, as after the machine was off."""
    units = installation.manifest(current).get("units") or {}
    found = {}
    for unit in sorted(u for u in units if u.endswith(".timer")):
        with contextlib.suppress(OSError):
            moment = stamp(installation.scope, unit).stat().st_mtime
            if 0 < moment < LATEST_TIME:  # what import takes for a time
                found[unit] = moment
    return found


def _config(installation: Installation, current: int) -> Member:
    path = installation.generation_dir(current) / archive.CONFIG
    return Member(archive.CONFIG, _read_once(path) or b"", 0o600)


def _generations(installation: Installation) -> Iterator[Member]:
    for number in installation.numbers():
        top = installation.generation_dir(number)
        for relative, content, mode in _files(top):
            yield Member(f"{Area.GENERATIONS}/{number}/{relative}", content, mode)


@contextlib.contextmanager
def _between_passes(state: Path) -> Iterator[None]:
    """Hold the coordinator's lock, the spend ledger's and the run history's while the state is
    read: a pass changes several files (the nag counts, the outbox, the claim it takes from the
    inbox), and a copy made halfway through one would nag again or lose a count on the new
    machine; a rotation of runs.jsonl between reading it and runs.jsonl.1 (runner/history.py
    rotates under runs.jsonl.lock) would archive the same runs twice."""
    locks = (state / COORDINATOR_LOCK, state / STATE / SPEND_LOCK, state / f"{RUNS}.lock")
    with contextlib.ExitStack() as stack:
        for path in locks:
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


def _state(state: Path, secrets: frozenset[str]) -> Iterator[Member]:
    """The state directory's files, less what export leaves out (archive.left_out) and the
    config's secret files kept there (`secrets`, relative to it)."""
    for relative, content, mode in _files(state, secrets):
        if not archive.left_out(relative):
            yield Member(f"{Area.STATE}/{relative}", content, mode)


def _files(top: Path, skipped: frozenset[str] = frozenset()) -> Iterator[tuple[str, bytes, int]]:
    """Regular files below `top` (relative path, content, mode), each read once, less the
    paths in `skipped`. Names starting with `.` are temp files and locks, never kept; links
    are not followed or kept."""
    for directory, dirs, files in os.walk(top):
        below = Path(directory).relative_to(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            relative = (below / name).as_posix()
            if name.startswith(".") or relative in skipped:
                continue
            path = Path(directory) / name
            try:
                info = path.lstat()
            except FileNotFoundError:  # taken meanwhile (a claimed finding)
                continue
            content = _read_once(path) if stat.S_ISREG(info.st_mode) else None
            if content is not None:
                yield relative, content, stat.S_IMODE(info.st_mode)


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


@dataclass(frozen=True)
class SecretCheck:
    unreadable: tuple[str, ...]
    too_short: tuple[str, ...]


def _check_no_secret(members: list[Member], secrets: dict[str, str]) -> SecretCheck:
    """Refuse when any member holds a secret (a needle of its file); which secrets could not be
    read, which are too short to search for."""
    unreadable, too_short = [], []
    for name, written in secrets.items():
        try:
            value = Path(os.path.expanduser(written)).read_bytes()
        except OSError:
            unreadable.append(name)
            continue
        found = needles(value)
        if not found:
            too_short.append(name)
        for member in members:
            if any(needle in member.content for needle in found):
                raise VigilError(
                    f"{member.path} holds the content of secret {name!r}: nothing exported "
                    "(an archive never holds a secret; remove it from that file first)"
                )
    return SecretCheck(tuple(unreadable), tuple(too_short))


def needles(value: bytes) -> set[bytes]:
    """What is searched for of one secret file: its whole content, each line, the value of each
    `KEY=VALUE` or `key: value` line and each string in it when it is JSON, each also as JSON
    escapes it; only pieces of SHORTEST_SECRET bytes or more (shorter ones match by chance)."""
    text = value.decode("utf-8", "replace")
    pieces = {text.strip(), *(line.strip() for line in text.splitlines())}
    for line in text.splitlines():
        for separator in ("=", ":"):
            if separator in line:
                pieces.add(line.split(separator, 1)[1].strip().strip("\",'").strip())
    with contextlib.suppress(ValueError, RecursionError):
        pieces.update(_json_strings(json.loads(text)))
    escaped = {json.dumps(piece)[1:-1] for piece in pieces}
    return {p.encode() for p in pieces | escaped if len(p.encode()) >= SHORTEST_SECRET}


def _json_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _counts(members: list[Member]) -> Counts:
    state = [m.path.removeprefix(f"{Area.STATE}/") for m in members if m.area == Area.STATE]
    runs = [m for m in members if m.path in (f"state/{RUNS}", f"state/{RUNS}.1")]
    return Counts(
        generation_files=sum(1 for m in members if m.area == Area.GENERATIONS),
        state_files=len(state),
        runs=sum(m.content.count(b"\n") for m in runs),
        inbox=sum(1 for path in state if path.startswith(f"{INBOX}/")),
        outbox=sum(1 for path in state if path.startswith(f"{OUTBOX}/")),
    )


def _write_atomically(out: Path, manifest: Manifest, members: list[Member]) -> int:
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

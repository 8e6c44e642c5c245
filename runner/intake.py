"""Claiming the inbox: every file is moved out of inbox/ on every run, so the path unit never
loops. A run moves what it finds into a claim of its own, `processing/<claim>/`, which stays
until the claim's effects (messages queued, state written) are durable; then usable findings
are deleted and anything else goes to rejected/ with the reason, and the reason becomes an
alert.

The claim's name is what the run's message ids derive from: a run killed half-way leaves its
claim behind, and the next run takes it up alone, before the inbox, so it queues the same ids
again (a no-op) however many findings arrived meanwhile.

A claim that has stopped MAX_CLAIM_ATTEMPTS runs in a row (a finding that crashes the rules, or
runs out of memory) is quarantined: moved whole to rejected/ with the reason, and the alert says
so. Without that, every later run would take it up first and die on it, and nothing, not even
the failure alerts about it, would be delivered again. Storage errors do not count: the files
are fine, the disk is not.

Symlinks, FIFOs, devices and directories are moved, never opened or followed; files of another
owner, unreadable (mode 000) and oversized files are never read; bad JSON, binary data, text that
is not valid Unicode and objects that are not findings are rejected.
"""

from __future__ import annotations

import json
import os
import stat
import time
from contextlib import suppress

from runner import stateshapes
from runner.contract import INBOX, PROCESSING, REJECTED
from runner.findings import finding_problem
from runner.fsatomic import ensure_dir, fsync_dir, write_atomic, write_state
from runner.statefile import load_state, own_alert

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime

STALE_TEMP_SECONDS = 60
CLAIM_PREFIX = "claim-"
QUARANTINED = "claim-quarantined"
"""The `kind` of vigil's alert that a claim was quarantined."""
UNMOVABLE_PREFIX = ".unmovable-"
"""An inbox entry that cannot be moved out (a directory of another user) is renamed in place to
this dot-name, which the path unit and every later run ignore: one alert, no loop."""
MAX_CLAIM_ATTEMPTS = 3
ATTEMPTS = "claims.json"
"""State file: how many runs have taken up each claim left behind."""


class Claimed:
    __slots__ = ("finding", "path")

    def __init__(self, path: str, finding: dict[str, object]) -> None:
        self.path = path  # in processing/<claim>/
        self.finding = finding


class Rejected:
    __slots__ = ("name", "path", "reason", "stays")

    def __init__(self, path: str, reason: str, *, name: str | None = None) -> None:
        self.path = path  # in processing/<claim>/ until done() moves it to rejected/
        self.name = shown(name or os.path.basename(path))
        """The file name as alerts and logs show it: odd bytes and newlines escaped."""
        self.reason = reason
        self.stays = os.path.basename(path).startswith(UNMOVABLE_PREFIX)
        """Left in the inbox under an ignored name: done() does not move it."""


class Intake:
    __slots__ = ("claim", "findings", "rejected")

    def __init__(self, claim: str | None) -> None:
        self.claim = claim
        """processing/<claim>/, the name message ids derive from; None when nothing came in."""
        self.findings: list[Claimed] = []
        self.rejected: list[Rejected] = []


def shown(name: str) -> str:
    """A file name fit for a one-line alert: undecodable bytes as \\xNN, control characters
    (a newline in a name) as escapes."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def left_behind(state_dir: str) -> list[str]:
    """Claims of runs that died before finishing them, oldest first."""
    try:
        names = os.listdir(os.path.join(state_dir, PROCESSING))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(CLAIM_PREFIX))


def attempt(state_dir: str, name: str) -> int:
    """Count one more run taking up the claim `name` left behind; the count so far."""
    state = _attempts(state_dir)
    counts = state.get("attempts")
    counts = dict(counts) if isinstance(counts, dict) else {}
    tries = int(counts.get(name) or 0) + 1
    counts[name] = tries
    write_state(state_dir, ATTEMPTS, {"version": 1, "attempts": counts})
    return tries


def forget(state_dir: str, name: str) -> None:
    """The claim is finished, or its run stopped on storage (which is not the claim's fault)."""
    state = _attempts(state_dir)
    counts = state.get("attempts")
    if isinstance(counts, dict) and name in counts:
        rest = {c: n for c, n in counts.items() if c != name and _exists(state_dir, c)}
        write_state(state_dir, ATTEMPTS, {"version": 1, "attempts": rest})


def _attempts(state_dir: str) -> dict[str, object]:
    from runner.clock import now

    return load_state(state_dir, ATTEMPTS, stateshapes.CLAIMS, now())


def _exists(state_dir: str, name: object) -> bool:
    return isinstance(name, str) and os.path.isdir(os.path.join(state_dir, PROCESSING, name))


def quarantine(state_dir: str, name: str, tries: int, now: datetime) -> None:
    """Move the claim `name` whole to rejected/ (see the module docstring): the reason and the
    alert first, in the inbox for this run's own pass over it, so a kill before the move says
    it twice, never not at all."""
    reason = (
        f"stopped the coordinator {tries} times in a row; its {_count(state_dir, name)} "
        f"file(s) are kept in rejected/{name}/ and were not delivered"
    )
    rejected = ensure_dir(os.path.join(state_dir, REJECTED))
    target = os.path.join(rejected, name)
    write_atomic(state_dir, target + ".reason", (reason + "\n").encode("utf-8"))
    own_alert(
        state_dir, f"quarantined:{name}", f"quarantined {name}: it {reason}", now, QUARANTINED
    )
    os.rename(os.path.join(state_dir, PROCESSING, name), target)
    fsync_dir(rejected)
    fsync_dir(os.path.join(state_dir, PROCESSING))
    forget(state_dir, name)


def _count(state_dir: str, name: str) -> int:
    try:
        return len(os.listdir(os.path.join(state_dir, PROCESSING, name)))
    except OSError:
        return 0


def holds_files(directory: str) -> bool:
    """Whether the inbox holds a finding, as DirectoryNotEmpty= sees it: dot-names (a writer's
    temp file, an entry set aside in place) do not count, or a file the coordinator leaves
    alone would wake it for ever."""
    try:
        return any(not name.startswith(".") for name in os.listdir(directory))
    except OSError:
        return False


def claim(
    state_dir: str, max_bytes: int, name: str | None = None, now: datetime | None = None
) -> Intake:
    """Read the claim `name` left behind by a crash, or (None) move the inbox into a new one
    named after `now`, the run's moment (see claim_moment)."""
    stuck: list[Rejected] = []
    if name is None:
        name = _claim_inbox(state_dir, stuck, now)
    intake = Intake(name)
    intake.rejected += stuck
    if name is None:
        return intake
    directory = os.path.join(state_dir, PROCESSING, name)
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        finding, reason = _read(path, max_bytes)
        if finding is None:
            intake.rejected.append(Rejected(path, reason or "cannot be read"))
        else:
            intake.findings.append(Claimed(path, finding))
    return intake


def claim_name(moment: datetime) -> str:
    """A new claim's name: its run's moment (see claim_moment) and a random part."""
    from runner.clock import file_stamp

    return f"{CLAIM_PREFIX}{file_stamp(moment)}-{os.urandom(4).hex()}"


def claim_moment(name: str) -> datetime | None:
    """The moment of the run that made claim `name`: a rerun replays the claim at it, so it
    computes the very messages the killed run queued (same ids, same lines)."""
    from datetime import UTC, datetime

    stamp = name.removeprefix(CLAIM_PREFIX).split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _claim_inbox(state_dir: str, stuck: list[Rejected], moment: datetime | None) -> str | None:
    """Move the inbox (and files an older version left loose in processing/) into a new
    claim; None, and nothing written, when there is nothing to move. An entry that cannot be
    moved is set aside in place and added to `stuck`."""
    from runner.clock import utc_now

    inbox = ensure_dir(os.path.join(state_dir, INBOX))
    processing = ensure_dir(os.path.join(state_dir, PROCESSING))
    now = time.time()
    moving = [os.path.join(processing, n) for n in os.listdir(processing)]
    moving = [p for p in moving if not os.path.basename(p).startswith(CLAIM_PREFIX)]
    for name in os.listdir(inbox):
        path = os.path.join(inbox, name)
        if name.startswith(UNMOVABLE_PREFIX):
            continue  # alerted when it was set aside
        # A dot-name is a writer's temp file, never read. DirectoryNotEmpty= ignores dot-names,
        # so one left behind starts no run; the next run after a minute rejects it.
        try:
            if name.startswith(".") and now - os.lstat(path).st_mtime < STALE_TEMP_SECONDS:
                continue
        except FileNotFoundError:  # the writer renamed its temp file meanwhile
            continue
        moving.append(path)
    if not moving:
        return None
    name = claim_name(moment or utc_now())
    directory = os.path.join(processing, name)
    os.mkdir(directory, 0o700)
    fsync_dir(processing)
    for path in moving:
        target = os.path.join(directory, os.path.basename(path))
        if os.path.lexists(target):  # a loose file of an older version with an inbox name
            target += f".{os.urandom(3).hex()}"
        try:
            _move(path, target)
        except FileNotFoundError:
            continue
        except PermissionError as error:
            stuck.append(_set_aside_in_place(path, error))
    fsync_dir(directory)
    fsync_dir(inbox)
    return name


def _move(path: str, target: str) -> None:
    """Rename `path` to `target`. A directory needs write permission of its own to change
    parent (its `..`): a read-only one of ours gets u+w first, and keeps it in rejected/."""
    try:
        os.rename(path, target)
    except PermissionError:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise
        os.chmod(path, stat.S_IMODE(info.st_mode) | stat.S_IWUSR)
        os.rename(path, target)


def _set_aside_in_place(path: str, error: OSError) -> Rejected:
    """Rename an entry that cannot leave the inbox (another user's directory) to an ignored
    dot-name beside it; the inbox still empties, so the path unit stops triggering."""
    inbox, name = os.path.split(path)
    hidden = os.path.join(inbox, f"{UNMOVABLE_PREFIX}{os.urandom(3).hex()}-{name}")
    os.rename(path, hidden)  # within the inbox: no `..` to change, the inbox's write suffices
    reason = (
        f"cannot be moved out of the inbox ({error.strerror}); renamed to inbox/"
        f"{shown(os.path.basename(hidden))} and ignored: remove it by hand"
    )
    return Rejected(hidden, reason, name=name)


def _problem(path: str, info: os.stat_result, max_bytes: int) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link (never followed)"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (never opened)"
    if os.path.basename(path).startswith("."):
        return f"is a writer's temp file left behind for more than {STALE_TEMP_SECONDS} s"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if not info.st_mode & stat.S_IRUSR:  # root could read it anyway: its owner said no
        return f"is not readable by its owner (mode {stat.S_IMODE(info.st_mode):03o})"
    if info.st_size > max_bytes:
        return f"is {info.st_size} bytes, more than the limit of {max_bytes}"
    return None


def _read(path: str, max_bytes: int) -> tuple[dict[str, object] | None, str | None]:
    """(the finding, None) or (None, why the file is not one)."""
    try:
        raw, reason = _read_at_most(path, max_bytes)
        if reason is not None:
            return None, reason
        data = json.loads(raw.decode("utf-8"))
        # A lone surrogate (`"\udcff"`) parses but can never be written out as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except UnicodeEncodeError:
        return None, "holds a string that is not valid Unicode (a lone surrogate)"
    except RecursionError:
        return None, "is not valid JSON (nested too deeply)"
    except ValueError as error:
        return None, f"is not valid JSON ({error})"
    except OSError as error:
        return None, f"cannot be read ({error.strerror})"
    problem = finding_problem(data)
    if problem is None and not isinstance(data.get("source"), str):
        problem = "has no `source`"
    if problem is None and not isinstance(data.get("timestamp"), str):
        problem = "has no `timestamp`"
    return (data, None) if problem is None else (None, f"is not a finding: {problem}")


def _read_at_most(path: str, max_bytes: int) -> tuple[bytes, str | None]:
    """(the bytes, None) or (b"", why the entry is not read); OSError when it cannot be."""
    reason = _problem(path, os.lstat(path), max_bytes)
    if reason is not None:
        return b"", reason
    # O_NOFOLLOW, O_NONBLOCK and the fstat: a file swapped for a link or a FIFO after the
    # check is still never followed or waited on; at most max_bytes + 1 bytes are read.
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(handle, "rb") as stream:
        reason = _problem(path, os.fstat(handle), max_bytes)
        if reason is not None:
            return b"", reason
        raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        return b"", f"grew past the limit of {max_bytes} bytes"
    return raw, None


def _reject(state_dir: str, item: Rejected) -> None:
    """The reason first, then the file: a crash in between leaves the file in its claim, and
    the rerun rejects it again."""
    rejected = ensure_dir(os.path.join(state_dir, REJECTED))
    target = os.path.join(rejected, os.path.basename(item.path))
    if os.path.lexists(target):
        target += f".{os.urandom(3).hex()}"
    # Whole or not at all: a full disk leaves no empty reason file beside the claim.
    write_atomic(state_dir, target + ".reason", (item.reason + "\n").encode("utf-8"))
    os.rename(item.path, target)


def done(state_dir: str, intake: Intake) -> None:
    """Finish a claim whose effects (state, outbox) are on disk: findings are deleted, rejected
    files moved to rejected/, the claim removed."""
    if intake.claim is None:
        return
    moving = [item for item in intake.rejected if not item.stays]
    for item in moving:
        with suppress(FileNotFoundError):
            _reject(state_dir, item)
    if moving:
        fsync_dir(os.path.join(state_dir, REJECTED))
    for claimed in intake.findings:
        with suppress(FileNotFoundError):
            os.unlink(claimed.path)
    processing = os.path.join(state_dir, PROCESSING)
    os.rmdir(os.path.join(processing, intake.claim))
    fsync_dir(processing)

"""Hostile files in the inbox: oversized (a sparse 2 GB file), invalid JSON, binary data, text
that is not valid Unicode, JSON nested too deeply, symlinks to a file and to a FIFO elsewhere, a
FIFO, a directory, a file of mode 000, a file of another user, a writer's temp file left
behind, a name with a newline and a byte that is not UTF-8.

Each is moved to rejected/ with a `.reason`, and an alert names the file and the reason; none is
followed, opened or read whole, and none makes the coordinator fail or loop. In-process first,
then under the real systemd user manager (path unit, service, journal).
"""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.clock import utc_now
from runner.coordinator import run
from tests.conftest import apply_config
from tests.test_coordinator_systemd import coordinator_runs, failed_units, journal_cursor

LIMIT = 1 << 20  # the coordinator's default max_finding_bytes
HUGE = 2 << 30
GOOD = {"source": "probe", "timestamp": "2026-02-02T09:00:00Z", "message": "a good finding"}
SECRET = {"source": "probe", "timestamp": "2026-02-02T09:00:00Z", "message": "SECRET, unread"}
ODD_NAME = b"odd\nname\xff.json"
IS_ROOT = os.geteuid() == 0
WAVE = 200


CONFIG = """\
name: hi
state_dir: {state}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
  sources:
    probe: {{external: true}}
"""


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path):
    return vigil_manager, apply_config(vigil, tmp_path, "hi", CONFIG)


def deliveries(state: Path) -> list[dict]:
    path = state / "deliveries.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


class Hostile:
    """The hostile files, made beside the inbox and renamed in (as a writer would), with what
    each rejection must say."""

    def __init__(self, state: Path, outside: Path) -> None:
        self.state = state
        self.outside = outside
        self.beside = state / "writer"
        self.reasons: dict[bytes, str] = {}  # name in the inbox -> start of the reason
        self.unread: list[bytes] = []  # regular files whose contents must never be read
        self.secret = outside / "secret.json"
        self.fifo = outside / "fifo"

    def make(self) -> None:
        self.beside.mkdir(parents=True, exist_ok=True)
        self.outside.mkdir(parents=True, exist_ok=True)
        self.secret.write_text(json.dumps(SECRET))
        os.mkfifo(self.fifo)
        finding = json.dumps(GOOD).encode()
        self._file(b"huge.json", b"", f"is {HUGE} bytes, more than the limit of {LIMIT}")
        os.truncate(self.beside / "huge.json", HUGE)  # sparse: no disk, and never read
        self.unread.append(b"huge.json")
        self._file(b"bad.json", b'{"source": "probe", ', "is not valid JSON")
        self._file(b"binary.json", os.urandom(64) + bytes(range(256)), "is not UTF-8 text")
        self._file(
            b"surrogate.json",
            b'{"source": "probe", "timestamp": "x", "message": "\\udcff"}',
            "holds a string that is not valid Unicode",
        )
        self._file(b"deep.json", b"[" * 100_000 + b"]" * 100_000, "is not valid JSON (nested")
        self._file(ODD_NAME, b"nope", "is not valid JSON")
        self._file(b".writer.tmp", b'{"source": "pro', "is a writer's temp file left behind")
        stale = time.time() - 120
        os.utime(self.beside / ".writer.tmp", (stale, stale))
        self._file(b"mode000.json", finding, "is not readable by its owner (mode 000)")
        os.chmod(self.beside / "mode000.json", 0)
        self.unread.append(b"mode000.json")
        if IS_ROOT:
            self._file(b"nobody.json", finding, "is owned by another user (uid 65534)")
            os.chown(self.beside / "nobody.json", 65534, 65534)
            self.unread.append(b"nobody.json")
        self._other(b"link.json", lambda p: os.symlink(self.secret, p), "is a symbolic link")
        self._other(b"link-fifo.json", lambda p: os.symlink(self.fifo, p), "is a symbolic link")
        self._other(b"fifo.json", os.mkfifo, "is not a regular file (never opened)")
        self._other(b"dir.json", _directory_with_a_finding, "is a directory")
        # Every read is seen: an atime older than the ctime (the rename sets it) is updated by
        # a read under relatime and strictatime alike.
        for path in [self.secret, *(self.beside / os.fsdecode(name) for name in self.unread)]:
            os.utime(
                path, (time.time() - 3 * 86400, time.time() - 2 * 86400), follow_symlinks=False
            )

    def _file(self, name: bytes, data: bytes, reason: str) -> None:
        (self.beside / os.fsdecode(name)).write_bytes(data)
        self.reasons[name] = reason

    def _other(self, name: bytes, create: Callable[[Path], object], reason: str) -> None:
        create(self.beside / os.fsdecode(name))
        self.reasons[name] = reason

    def rename_in(self) -> None:
        inbox = self.state / "inbox"
        inbox.mkdir(exist_ok=True)
        for name in self.reasons:
            os.rename(self.beside / os.fsdecode(name), inbox / os.fsdecode(name))

    def atimes(self, where: Path) -> dict[str, float]:
        """When the secret and the files in `where` that must stay unread were last read."""
        paths = {"secret": self.secret}
        paths.update({os.fsdecode(name): where / os.fsdecode(name) for name in self.unread})
        return {name: path.stat().st_atime for name, path in paths.items()}

    def check(self, bodies: list[str]) -> None:
        """rejected/ holds every file and its reason; one alert line for each names both."""
        rejected = self.state / "rejected"
        for name, reason in self.reasons.items():
            shown = name.decode("utf-8", "backslashreplace").replace("\n", "\\n")
            path = rejected / os.fsdecode(name)
            assert os.path.lexists(path), f"{shown} not in rejected/"
            note = rejected / os.fsdecode(name + b".reason")
            assert note.read_text().startswith(reason), (shown, note.read_text())
            line = f"• rejected inbox file {shown}: it {reason}"
            assert sum(body.startswith(line) for body in bodies) == 1, (line, bodies)
        assert (rejected / "link.json").is_symlink() and (rejected / "fifo.json").is_fifo()
        assert (rejected / "dir.json" / "inside.json").exists()
        assert not any("SECRET" in body for body in bodies)


def _directory_with_a_finding(path: Path) -> None:
    path.mkdir()
    (path / "inside.json").write_text(json.dumps(GOOD))


def reads_update_atime(directory: Path) -> bool:
    """Whether this file system records reads (not mounted noatime)."""
    probe = directory / "atime-probe"
    probe.write_text("x")
    os.utime(probe, (time.time() - 3 * 86400, time.time() - 2 * 86400))
    before = probe.stat().st_atime
    probe.read_text()
    return probe.stat().st_atime != before


def run_guarded(spec: dict, timeout: float = 30) -> dict[str, int]:
    """run() in a thread: a coordinator blocked on a FIFO fails the test instead of hanging."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["counts"] = run(spec, utc_now())
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the coordinator blocked (opened a FIFO?)"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["counts"]  # type: ignore[return-value]


def bodies_of(records: list[dict]) -> list[str]:
    return [line for record in records for line in record["body"].splitlines()]


def test_hostile_inbox_files_in_process(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "hi.yaml"
    config.write_text(CONFIG.format(state=state))
    assert vigil("compile", config, "--out", tmp_path / "out").exit_code == 0
    spec = json.loads((tmp_path / "out" / "specs" / "coordinator.json").read_text())
    hostile = Hostile(state, tmp_path / "elsewhere")
    hostile.make()
    atimes = hostile.atimes(hostile.beside)
    hostile.rename_in()
    (state / "inbox" / "good.json").write_text(json.dumps(GOOD))

    tracemalloc.start()
    try:
        counts = run_guarded(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak} bytes at the peak: something was read whole"
    assert counts["rejected"] == len(hostile.reasons) and counts["findings"] == 1
    assert os.listdir(state / "inbox") == [] and os.listdir(state / "processing") == []
    [message] = deliveries(state)
    bodies = bodies_of([message])
    hostile.check(bodies)
    # the good finding beside them went out, its code after the rejections' r1..rN
    assert f"• a good finding [r{len(hostile.reasons) + 1}]" in bodies
    if reads_update_atime(tmp_path):
        assert hostile.atimes(state / "rejected") == atimes, "a file was read"
    assert hostile.secret.read_text() == json.dumps(SECRET)

    run_guarded(spec)  # nothing new: no second alert about the same files
    assert len(deliveries(state)) == 1


# -- under the real user manager --------------------------------------------------------------


def settled(manager, state: Path, quiet: float = 3.0) -> list[dict]:
    """Wait until the inbox and processing/ are empty and no pass has run for `quiet` seconds
    (a file that woke the lingering coordinator again and again never gets there), then stop
    its run; returns the coordinator's passes."""

    def empty() -> bool:
        return not os.listdir(state / "inbox") and not os.listdir(state / "processing")

    def still() -> list[dict] | None:
        runs = coordinator_runs(state)
        if not empty() or not runs:
            return None
        time.sleep(quiet)
        return runs if empty() and coordinator_runs(state) == runs else None

    runs = manager.wait_for(still, timeout=60, what=f"no coordinator pass for {quiet:g} s")
    manager.systemctl("stop", "hi-coordinator.service")  # lingering for the next finding
    return runs


def started(runs: list[dict]) -> int:
    """Service runs among the coordinator's passes (a warm run makes several)."""
    return len({run["invocation_id"] for run in runs})


def assert_units_healthy(manager) -> None:
    path = manager.show("hi-coordinator.path", "ActiveState", "Result")
    assert path == {"ActiveState": "active", "Result": "success"}
    service = manager.show("hi-coordinator.service", "ActiveState", "Result", "NRestarts")
    assert service == {"ActiveState": "inactive", "Result": "success", "NRestarts": "0"}
    assert [unit for unit in failed_units(manager) if unit.startswith("hi-")] == []


@pytest.mark.systemd
def test_hostile_inbox_files_under_the_user_manager(installed, tmp_path: Path) -> None:
    manager, state = installed
    hostile = Hostile(state, tmp_path / "elsewhere")
    hostile.make()
    atimes = hostile.atimes(hostile.beside)
    cursor = journal_cursor(manager)
    hostile.rename_in()  # one after the other: the path unit may start runs in between
    runs = settled(manager, state)
    assert_units_healthy(manager)
    assert all(run["result"] == "ok" for run in runs)
    bodies = bodies_of(deliveries(state))
    hostile.check(bodies)
    if reads_update_atime(tmp_path):
        assert hostile.atimes(state / "rejected") == atimes, "a file was read"
    # As many starts as service runs, as many passes as at most one per file: no loop.
    manager.sync_journal()
    journal = manager.journalctl("--output=cat", f"--after-cursor={cursor}").stdout
    assert journal.count("Starting hi-coordinator.service") == started(runs)
    assert len(runs) <= len(hostile.reasons)
    assert "hi-coordinator.service: Failed" not in journal and "start-limit-hit" not in journal
    print(f"\nhostile: {len(hostile.reasons)} files, {len(runs)} coordinator runs")

    # A second wave, WAVE files of the cheap kinds renamed in as fast as possible.
    wave = state / "wave"
    wave.mkdir()
    for number in range(WAVE):
        path = wave / f"wave-{number:03d}.json"
        kind = number % 5
        if kind == 0:
            path.write_text("{not json")
        elif kind == 1:
            os.symlink(hostile.secret, path)
        elif kind == 2:
            os.mkfifo(path)
        elif kind == 3:
            path.mkdir()
        else:
            path.write_text(json.dumps(GOOD))
            path.chmod(0)
    cursor = journal_cursor(manager)
    for number in range(WAVE):
        name = f"wave-{number:03d}.json"
        os.rename(wave / name, state / "inbox" / name)
    wave_runs = settled(manager, state)[len(runs) :]
    assert_units_healthy(manager)
    assert sum(run["findings"] for run in wave_runs) == 0
    rejected = {path.name for path in (state / "rejected").glob("wave-*.json")}
    assert len(rejected) == WAVE
    lines = [line for line in bodies_of(deliveries(state)) if "inbox file wave-" in line]
    assert len(lines) == WAVE  # one alert each, none twice
    manager.sync_journal()
    journal = manager.journalctl("--output=cat", f"--after-cursor={cursor}").stdout
    assert journal.count("Starting hi-coordinator.service") == started(wave_runs)
    assert len(wave_runs) <= WAVE
    print(f"hostile wave: {WAVE} files, {len(wave_runs)} coordinator runs")


@pytest.mark.systemd
def test_a_writers_temp_file_in_the_inbox_starts_no_run_and_is_not_claimed(installed) -> None:
    """systemd's DirectoryNotEmpty= ignores dot-names: a writer's temp file sitting in the inbox
    never makes the coordinator run (let alone loop); once renamed it is a finding."""
    manager, state = installed
    temp = state / "inbox" / ".slow-writer.tmp"
    temp.write_text(json.dumps(GOOD))
    time.sleep(3)
    assert coordinator_runs(state) == [] and temp.exists()
    os.rename(temp, state / "inbox" / "slow-writer.json")
    manager.wait_for(
        lambda: "• a good finding [r1]" in bodies_of(deliveries(state)),
        timeout=15,
        what="the renamed finding delivered",
    )
    assert len(settled(manager, state)) == 1
    assert_units_healthy(manager)
    assert not (state / "rejected").exists()

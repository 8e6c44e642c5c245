"""The warm coordinator's loop (runner.warm) and its wait on the inbox (runner.dirwatch), in
process with a real directory: which files wake it, when it exits and why. Under the real user
manager: tests/test_warm_systemd.py."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from runner import coordinator, dirwatch, intake, warm
from runner.exitcodes import OK, STORAGE
from runner.spec import file_identity
from runner.stopping import StopRequest


class Passes:
    """A pass that empties the inbox and counts what it took."""

    def __init__(self, inbox: Path, status: int = OK) -> None:
        self.inbox = inbox
        self.status = status
        self.taken: list[list[str]] = []

        self.heartbeats = 0
        self.beats: list[float] = []
        """When each heartbeat pass ran (time.monotonic)."""

    def __call__(self, heartbeat: bool) -> int:
        if heartbeat:
            self.heartbeats += 1
            self.beats.append(time.monotonic())
            return self.status
        names = sorted(name for name in os.listdir(self.inbox) if not name.startswith("."))
        for name in names:
            os.unlink(self.inbox / name)
        self.taken.append(names)
        return self.status


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    generation = tmp_path / "generations" / "1"
    generation.mkdir(parents=True)
    (generation / "coordinator.json").write_text("{}")
    (tmp_path / "current").symlink_to(generation)
    return tmp_path / "current" / "coordinator.json"


def lingering(spec_path: Path, inbox: Path, seconds: int, heartbeat: int = 900) -> warm.Lingering:
    return warm.Lingering(
        spec_path=str(spec_path),
        live=file_identity(str(spec_path)),
        inbox=str(inbox),
        seconds=seconds,
        heartbeat=heartbeat,
    )


def run_warm(settings: warm.Lingering, one_pass) -> int:
    """warm.linger with the SIGTERM handler the coordinator installs, put back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        return warm.linger(settings, StopRequest(), one_pass)
    finally:
        signal.signal(signal.SIGTERM, previous)


def land(inbox: Path, name: str) -> None:
    """As a writer does: written beside the inbox, renamed in."""
    temp = inbox.parent / f".{name}"
    temp.write_text("{}")
    os.rename(temp, inbox / name)


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_each_finding_while_warm_gets_a_pass_then_it_exits_when_idle(
    inbox: Path, spec_path: Path, inotify: bool, monkeypatch, capsys
) -> None:
    if not inotify:
        monkeypatch.setattr(dirwatch, "inotify", lambda _directory, _mask: -1)
    passes = Passes(inbox)
    timers = [later(0.2, lambda: land(inbox, "a.json")), later(0.6, lambda: land(inbox, "b.json"))]
    started = time.monotonic()
    assert run_warm(lingering(spec_path, inbox, 1), passes) == OK
    took = time.monotonic() - started
    for timer in timers:
        timer.join()
    assert passes.taken == [["a.json"], ["b.json"]]
    assert 1.5 <= took < 4  # a second without a finding after the last one
    assert "2 more passes while warm; exiting: no finding for 1s" in capsys.readouterr().err


def test_a_dot_name_in_the_inbox_wakes_nothing(inbox: Path, spec_path: Path) -> None:
    """A writer's temp file (or an entry set aside in place) is not a finding: no pass, and no
    pass after pass for a file no pass takes."""
    (inbox / ".writing.tmp").write_text("{")
    passes = Passes(inbox)
    timer = later(0.2, lambda: (inbox / ".other.tmp").write_text("{}"))
    assert run_warm(lingering(spec_path, inbox, 1), passes) == OK
    timer.join()
    assert passes.taken == []
    assert intake.holds_files(str(inbox)) is False
    land(inbox, "c.json")
    assert intake.holds_files(str(inbox)) is True


def test_sigterm_while_waiting_ends_the_run_at_once(inbox: Path, spec_path: Path, capsys) -> None:
    passes = Passes(inbox)
    later(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    assert run_warm(lingering(spec_path, inbox, 30), passes) == OK
    assert time.monotonic() - started < 5
    assert passes.taken == []
    assert "exiting: asked to stop" in capsys.readouterr().err


def test_sigterm_during_a_pass_lets_it_finish(inbox: Path, spec_path: Path) -> None:
    finished: list[bool] = []

    def slow_pass(_heartbeat: bool) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the pass
        time.sleep(0.1)
        for name in os.listdir(inbox):
            os.unlink(inbox / name)
        finished.append(True)
        return OK

    land(inbox, "a.json")
    assert run_warm(lingering(spec_path, inbox, 30), slow_pass) == OK
    assert finished == [True]


def test_another_generation_live_leaves_the_finding_to_a_new_run(
    inbox: Path, spec_path: Path, tmp_path: Path, capsys
) -> None:
    passes = Passes(inbox)
    newer = tmp_path / "generations" / "2"
    newer.mkdir()
    (newer / "coordinator.json").write_text("{}")

    def switch_then_land() -> None:
        link = tmp_path / "current.new"
        link.symlink_to(newer)
        os.replace(link, tmp_path / "current")
        land(inbox, "a.json")

    timer = later(0.2, switch_then_land)
    assert run_warm(lingering(spec_path, inbox, 30), passes) == OK
    timer.join()
    assert passes.taken == []
    assert os.listdir(inbox) == ["a.json"]  # the path unit starts a run of generation 2 for it
    assert "another generation is live" in capsys.readouterr().err


def test_a_warm_run_makes_the_heartbeats_the_timer_cannot(inbox: Path, spec_path: Path) -> None:
    """The heartbeat timer's start is swallowed by a run in progress: the run beats in its
    stead, `heartbeat` seconds after its last pass; a finding's pass puts the next beat off.
    Every moment below is a second or more from the next, so a busy machine's late wake-ups
    cannot reorder them."""
    passes = Passes(inbox)
    timer = later(0.5, lambda: land(inbox, "a.json"))
    started = time.monotonic()
    assert run_warm(lingering(spec_path, inbox, 3, heartbeat=2), passes) == OK
    timer.join()
    # the finding at 0.5 s puts the beat due at 2 s off to 2.5 s; idle for 3 s since the
    # finding, the run leaves at 3.5 s, before the next beat (4.5 s)
    assert passes.taken == [["a.json"]]
    [beat] = passes.beats
    assert 2.4 <= beat - started < 3.4, beat - started
    assert 3.4 <= time.monotonic() - started < 6


def test_a_failed_pass_ends_the_run_with_its_status(inbox: Path, spec_path: Path) -> None:
    land(inbox, "a.json")
    assert run_warm(lingering(spec_path, inbox, 30), Passes(inbox, STORAGE)) == STORAGE


def test_a_steady_stream_ends_the_run_after_the_longest_linger(
    inbox: Path, spec_path: Path, monkeypatch, capsys
) -> None:
    """Findings landing faster than a pass takes (a real pass claims first, then works) do
    not keep a run past COORDINATOR_LINGER_MAX: the finding there is left to a new run."""
    monkeypatch.setattr(warm, "COORDINATOR_LINGER_MAX", 1)
    passes = Passes(inbox)
    stop = threading.Event()

    def slow(heartbeat: bool) -> int:
        status = passes(heartbeat)
        time.sleep(0.3)
        return status

    def keep_landing() -> None:
        number = 0
        while not stop.wait(0.1):
            land(inbox, f"f{number}.json")
            number += 1

    writer = threading.Thread(target=keep_landing)
    writer.start()
    try:
        started = time.monotonic()
        assert run_warm(lingering(spec_path, inbox, 30), slow) == OK
        took = time.monotonic() - started
    finally:
        stop.set()
        writer.join()
    assert passes.taken  # it did work while warm
    assert took < 2  # the cap, plus at most the pass begun before it
    assert "warm for 1s: the next finding starts a new run" in capsys.readouterr().err


def test_heartbeats_stop_once_another_generation_is_live(
    inbox: Path, spec_path: Path, tmp_path: Path, capsys
) -> None:
    """A heartbeat pass after `vigil apply` switched `current` would use the old spec (old
    channels, rules, quiet hours): the run leaves instead, and the new generation's timer
    beats."""
    passes = Passes(inbox)
    read_from = lingering(spec_path, inbox, 3, heartbeat=1)  # the spec read, then apply:
    newer = tmp_path / "generations" / "2"
    newer.mkdir()
    (newer / "coordinator.json").write_text("{}")
    link = tmp_path / "current.new"
    link.symlink_to(newer)
    os.replace(link, tmp_path / "current")
    assert run_warm(read_from, passes) == OK
    assert passes.heartbeats == 0
    assert "another generation is live" in capsys.readouterr().err


def test_a_due_heartbeat_is_made_before_leaving(inbox: Path, spec_path: Path) -> None:
    """linger >= heartbeat: the timer's firing was swallowed by this run, and the timer counts
    its next one from that firing: leaving without the beat would skip a whole period."""
    passes = Passes(inbox)
    assert run_warm(lingering(spec_path, inbox, 1, heartbeat=1), passes) == OK
    assert passes.heartbeats == 1


def test_a_finding_linked_in_wakes_the_run(inbox: Path, spec_path: Path, tmp_path: Path) -> None:
    """link(2) (and O_TMPFILE + linkat) put a complete file in with IN_CREATE alone, which
    DirectoryNotEmpty= also starts on: a warm run takes it at once, not when its wait ends."""
    source = tmp_path / "made.json"
    source.write_text("{}")
    landed: list[float] = []
    taken: list[float] = []
    passes = Passes(inbox)

    def link_in() -> None:
        os.link(source, inbox / "linked.json")
        landed.append(time.monotonic())

    def timed(heartbeat: bool) -> int:
        taken.append(time.monotonic())
        return passes(heartbeat)

    timer = later(0.2, link_in)
    assert run_warm(lingering(spec_path, inbox, 3), timed) == OK
    timer.join()
    assert passes.taken == [["linked.json"]]
    assert taken[0] - landed[0] < 1


def test_a_file_created_in_place_gets_a_moment_to_be_written(inbox: Path) -> None:
    """IN_CREATE of a file its writer still writes: the wait gives it CREATE_SETTLE to close."""
    watch = dirwatch.DirectoryWatch(str(inbox))
    try:
        seen: list[str] = []

        def write_slowly() -> None:
            with open(inbox / "slow.json", "w") as handle:
                handle.write("{")
                handle.flush()
                time.sleep(dirwatch.CREATE_SETTLE / 2)
                handle.write("}")

        timer = later(0.1, write_slowly)
        assert watch.wait(5)
        seen.append((inbox / "slow.json").read_text())
        timer.join()
    finally:
        watch.close()
    assert seen == ["{}"]


def test_no_ctypes_means_polling(inbox: Path, monkeypatch) -> None:
    """An interpreter built without _ctypes (no libffi at build time) polls; it does not fail
    after its first pass."""
    monkeypatch.setitem(sys.modules, "ctypes", None)  # `import ctypes` raises ImportError
    watch = dirwatch.DirectoryWatch(str(inbox))
    assert watch.fd == -1 and watch.method.startswith("polling")
    land(inbox, "a.json")
    assert watch.wait(1)


def test_only_a_start_by_the_path_unit_lingers(tmp_path: Path, monkeypatch) -> None:
    """systemd keeps $TRIGGER_UNIT from the path unit's last start for later starts by hand:
    the path unit is asked (`running` while the service it started runs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = bin_dir / "answer"
    fake = bin_dir / "systemctl"  # a stand-in for the manager's answer, as systemctl prints it
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/asked\ncat {answer}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    spec = {"config": "wm", "scope": "user", "coordinator": {"linger": 60}}
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.path")
    answer.write_text("running\n")
    assert coordinator._linger(spec) == 60
    asked = (tmp_path / "asked").read_text()
    assert (
        asked == "--user --no-ask-password show --property=SubState --value wm-coordinator.path\n"
    )
    answer.write_text("waiting\n")
    assert coordinator._linger(spec) == 0  # a start by hand after a triggered one
    answer.write_text("running\n")
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.timer")
    assert coordinator._linger(spec) == 0  # the heartbeat: one pass
    monkeypatch.delenv("TRIGGER_UNIT")
    assert coordinator._linger(spec) == 0  # by hand, or outside systemd
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.path")
    assert coordinator._linger({**spec, "coordinator": {"linger": 0}}) == 0
    assert coordinator._linger({**spec, "coordinator": {}}) == 0  # a spec from before linger

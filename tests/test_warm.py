"""The warm coordinator's loop (runner.warm) and its wait on the inbox (runner.dirwatch), in
process with a real directory: which files wake it, when it exits and why. Under the real user
manager: tests/test_warm_systemd.py."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from runner import coordinator, dirwatch, warm
from runner.exitcodes import OK, STORAGE


class Passes:
    """A pass that empties the inbox and counts what it took."""

    def __init__(self, inbox: Path, status: int = OK) -> None:
        self.inbox = inbox
        self.status = status
        self.taken: list[list[str]] = []

        self.heartbeats = 0

    def __call__(self, heartbeat: bool) -> int:
        if heartbeat:
            self.heartbeats += 1
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
        live=os.path.realpath(spec_path),
        inbox=str(inbox),
        seconds=seconds,
        heartbeat=heartbeat,
    )


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
        monkeypatch.setattr(dirwatch, "_inotify", lambda _directory: -1)
    passes = Passes(inbox)
    timers = [later(0.2, lambda: land(inbox, "a.json")), later(0.6, lambda: land(inbox, "b.json"))]
    started = time.monotonic()
    assert warm.linger(lingering(spec_path, inbox, 1), passes) == OK
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
    assert warm.linger(lingering(spec_path, inbox, 1), passes) == OK
    timer.join()
    assert passes.taken == []
    assert dirwatch.holds_files(str(inbox)) is False
    land(inbox, "c.json")
    assert dirwatch.holds_files(str(inbox)) is True


def test_sigterm_while_waiting_ends_the_run_at_once(inbox: Path, spec_path: Path, capsys) -> None:
    passes = Passes(inbox)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        later(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
        started = time.monotonic()
        assert warm.linger(lingering(spec_path, inbox, 30), passes) == OK
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGTERM, previous)
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

    previous = signal.getsignal(signal.SIGTERM)
    try:
        land(inbox, "a.json")
        assert warm.linger(lingering(spec_path, inbox, 30), slow_pass) == OK
    finally:
        signal.signal(signal.SIGTERM, previous)
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
    assert warm.linger(lingering(spec_path, inbox, 30), passes) == OK
    timer.join()
    assert passes.taken == []
    assert os.listdir(inbox) == ["a.json"]  # the path unit starts a run of generation 2 for it
    assert "another generation is live" in capsys.readouterr().err


def test_a_warm_run_makes_the_heartbeats_the_timer_cannot(inbox: Path, spec_path: Path) -> None:
    """The heartbeat timer's start is swallowed by a run in progress: the run beats in its
    stead, `heartbeat` seconds after its last pass; a finding's pass puts the next beat off."""
    passes = Passes(inbox)
    timer = later(1.1, lambda: land(inbox, "a.json"))
    started = time.monotonic()
    assert warm.linger(lingering(spec_path, inbox, 2, heartbeat=1), passes) == OK
    timer.join()
    # beat at 1 s, the finding at 1.1 s, a beat at 2.1 s; at 3.1 s it has been idle for 2 s
    assert passes.taken == [["a.json"]]
    assert passes.heartbeats == 2
    assert 3 <= time.monotonic() - started < 5


def test_a_failed_pass_ends_the_run_with_its_status(inbox: Path, spec_path: Path) -> None:
    land(inbox, "a.json")
    assert warm.linger(lingering(spec_path, inbox, 30), Passes(inbox, STORAGE)) == STORAGE


def test_a_warm_run_ends_after_the_longest_linger(
    inbox: Path, spec_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(warm, "COORDINATOR_LINGER_MAX", 1)
    passes = Passes(inbox)
    stop = threading.Event()

    def keep_landing() -> None:
        number = 0
        while not stop.wait(0.2):
            land(inbox, f"f{number}.json")
            number += 1

    writer = threading.Thread(target=keep_landing)
    writer.start()
    try:
        started = time.monotonic()
        assert warm.linger(lingering(spec_path, inbox, 30), passes) == OK
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        writer.join()
    assert passes.taken  # it did work while warm, then left the rest to a new run
    assert "warm for 1s: the next finding starts a new run" in capsys.readouterr().err


def test_only_a_start_by_the_path_unit_with_findings_waiting_lingers(
    tmp_path: Path, monkeypatch
) -> None:
    spec = {"config": "wm", "state_dir": str(tmp_path), "coordinator": {"linger": 60}}
    (tmp_path / "inbox").mkdir()
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.path")
    assert coordinator._linger(spec) == 0  # systemd's $TRIGGER_UNIT outlives its start
    land(tmp_path / "inbox", "a.json")
    assert coordinator._linger(spec) == 60
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.timer")
    assert coordinator._linger(spec) == 0  # the heartbeat: one pass
    monkeypatch.delenv("TRIGGER_UNIT")
    assert coordinator._linger(spec) == 0  # by hand, or outside systemd
    monkeypatch.setenv("TRIGGER_UNIT", "wm-coordinator.path")
    assert coordinator._linger({**spec, "coordinator": {"linger": 0}}) == 0
    assert coordinator._linger({**spec, "coordinator": {}}) == 0  # a spec from before linger

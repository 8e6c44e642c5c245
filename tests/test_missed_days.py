"""Did it run? across weeks: the real coordinator's heartbeat, every ~15 minutes on a simulated
clock, through both 2026 DST changes in Europe/Berlin and two month ends, against a small model.

The model knows each job's firings from the wall clock alone (every UTC minute whose Berlin time
matches; a skipped wall time has no minute, a repeated one fires on its first pass only) and
what happened to each: a run on time or up to accuracy + grace late, a skipped firing, a run far
too late, the machine off (Persistent= jobs caught up at boot) or asleep (every elapsed timer
fires once on waking), a timer disabled or paused for a while, a job installed mid-way. It then
expects exactly the firings of a running timer that got no run to be recorded missed, once each,
and one alert per outage (missed firings with no run between them) saying how it ended."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner import coordinator
from tests.coordinator_support import compiled_spec, delivered
from tests.missed_support import FakeSystemd, missed, record_run

BERLIN = ZoneInfo("Europe/Berlin")
DAYS = 16
WINDOW = timedelta(seconds=60 + 300)  # default accuracy + grace
HEARTBEAT = timedelta(minutes=15)
CONFIG = """\
name: sim
state_dir: {state}
timezone: Europe/Berlin
channels: {sink: {file: "{state}/sink.jsonl"}}
coordinator: {deliver_to: [sink]}
jobs:
  night: {schedule: "30 2 * * *", run: "true"}
  hourly: {schedule: "0 * * * *", run: "true", catch_up: false}
  month-end: {schedule: "*-*~01 23:00", run: "true"}
  weekday: {schedule: "0 7 * * 1-5", run: "true", catch_up: false}
"""
FIRES: dict[str, Callable[[datetime], bool]] = {
    "night": lambda t: (t.hour, t.minute) == (2, 30),
    "hourly": lambda t: t.minute == 0,
    "month-end": lambda t: (t.hour, t.minute) == (23, 0) and (t + timedelta(days=1)).day == 1,
    "weekday": lambda t: t.weekday() < 5 and (t.hour, t.minute) == (7, 0),
}
CATCH_UP = {"night": True, "hourly": False, "month-end": True, "weekday": False}
CAUGHT_UP, RAN_AGAIN, NOT_SINCE = "caught up", "ran again", "not run since"


def local(day: datetime, offset_days: int, hour: int, minute: int) -> datetime:
    """Berlin wall time `offset_days` after `day`, in UTC (the times chosen exist)."""
    wall = (day + timedelta(days=offset_days)).replace(hour=hour, minute=minute)
    return wall.replace(tzinfo=BERLIN).astimezone(UTC)


@dataclass
class Run:
    at: datetime
    catch_up: bool  # a catch-up (boot, waking, far too late), not a firing's own run


@dataclass
class World:
    """What happens, decided up front; down and asleep end at minute 10-25 or 40-55, so that
    the run on waking falls in no firing's window; transitions at minute 40 or later."""

    start: datetime
    end: datetime
    down: list[tuple[datetime, datetime]]
    asleep: list[tuple[datetime, datetime]]
    stopped: dict[str, list[tuple[datetime, datetime]]]
    installed: dict[str, datetime]
    firings: dict[str, list[datetime]] = field(default_factory=dict)
    runs: dict[str, list[Run]] = field(default_factory=dict)
    expected: dict[str, list[datetime]] = field(default_factory=dict)


def world(first_day: datetime, seed: int) -> World:
    day = first_day
    w = World(
        start=local(day, 0, 0, 0),
        end=local(day, DAYS, 0, 0),
        down=[(local(day, 2, 21, 43), local(day, 3, 8, 12))],
        asleep=[
            (local(day, 9, 0, 40), local(day, 9, 5, 50)),
            (local(day, 12, 13, 5), local(day, 12, 13, 24)),
        ],
        stopped={
            "hourly": [(local(day, 5, 10, 40), local(day, 6, 9, 20))],
            "night": [(local(day, 13, 12, 45), local(day, 14, 14, 22))],
        },
        installed={"weekday": local(day, 4, 12, 47)},
    )
    rng = random.Random(seed)
    for job, fires in FIRES.items():
        w.firings[job] = _firings(w, fires)
        w.runs[job], w.expected[job] = _happenings(w, job, rng)
    return w


def _firings(w: World, fires: Callable[[datetime], bool]) -> list[datetime]:
    found, minute = [], w.start
    while minute < w.end:
        wall = minute.astimezone(BERLIN)
        if fires(wall) and wall.fold == 0:
            found.append(minute)
        minute += timedelta(minutes=1)
    return found


def _within(moment: datetime, spans: list[tuple[datetime, datetime]]) -> bool:
    return any(a <= moment < b for a, b in spans)


def _happenings(w: World, job: str, rng: random.Random) -> tuple[list[Run], list[datetime]]:
    """The job's runs, and its firings that should be recorded missed."""
    runs: list[Run] = []
    expected: list[datetime] = []
    stopped = w.stopped.get(job, [])
    quiet = [(a - timedelta(hours=2), b) for a, b in stopped]  # no skips next to a transition
    off = w.down + w.asleep
    installed = w.installed.get(job, w.start)
    for firing in w.firings[job]:
        if firing < installed or _within(firing, stopped):
            continue  # its timer was not running: nothing was due
        if _within(firing, off):
            expected.append(firing)
            continue
        luck = rng.random()
        if luck < 0.03 and not _within(firing, quiet):
            expected.append(firing)  # skipped: the clock moved past it
        elif luck < 0.05 and not _within(firing, quiet):
            expected.append(firing)
            runs.append(Run(firing + timedelta(minutes=20), catch_up=True))  # far too late
        else:
            late = rng.uniform(300, 359) if luck > 0.9 else rng.uniform(0, 60)
            runs.append(Run(firing + timedelta(seconds=late), catch_up=False))
    catching = [w.down[0][1]] if CATCH_UP[job] else []
    for end in [*catching, *(b for _, b in w.asleep)]:
        elapsed = [f for f in expected if _within(f, w.down + w.asleep) and f < end]
        if elapsed and end - elapsed[-1] < timedelta(days=1) and not _within(end, stopped):
            runs.append(Run(end + timedelta(seconds=3), catch_up=True))
    runs.sort(key=lambda run: run.at)
    return runs, expected


def heartbeats(w: World) -> list[datetime]:
    """10 to 70 minutes apart (runs started by the path unit put the heartbeat timer off), none
    while the machine is off or asleep, the first 15 minutes after it is back."""
    rng = random.Random(w.start.toordinal())
    beats, moment = [], w.start
    for a, b in [*sorted(w.down + w.asleep), (w.end, w.end)]:
        while moment < a:
            beats.append(moment)
            moment += timedelta(seconds=rng.randint(600, 4200))
        moment = b + HEARTBEAT
    return beats


def expected_alerts(w: World, beats: list[datetime]) -> dict[str, Counter[str]]:
    """Per job, how many outages end each way, as seen by the heartbeat that finds them."""
    found: dict[str, Counter[str]] = {}
    for job, misses in w.expected.items():
        counts: Counter[str] = Counter()
        runs = w.runs[job]
        for index, firing in enumerate(misses):
            before = [r.at for r in runs if r.at < firing]
            if index and (not before or before[-1] < misses[index - 1]):
                continue  # no run since the previous miss: the same outage
            seen = next(beat for beat in beats if beat >= firing + WINDOW)
            after = [r for r in runs if firing < r.at <= seen]
            if not after:
                counts[NOT_SINCE] += 1
            else:
                counts[CAUGHT_UP if after[0].catch_up else RAN_AGAIN] += 1
        found[job] = counts
    return found


def drive(w: World, spec: dict[str, Any], state: Path, systemd: FakeSystemd) -> None:
    units = {job: f"sim-{job}.timer" for job in FIRES}
    events: list[tuple[datetime, int, Callable[[], object]]] = []

    def at(moment: datetime, order: int, action: Callable[[], object]) -> None:
        events.append((moment, order, action))

    systemd.boot(w.start - timedelta(days=3))
    for job, unit in units.items():
        installed = w.installed.get(job, w.start)
        at(installed, 0, lambda u=unit, t=installed: systemd.start(u, t))
        for a, b in w.stopped.get(job, []):
            at(a, 0, lambda u=unit: systemd.stop(u))
            at(b, 0, lambda u=unit, t=b: systemd.start(u, t))
        for run in w.runs[job]:
            at(run.at, 1, lambda j=job, t=run.at: record_run(state, j, t))
    for a, b in w.down:
        at(a, 0, systemd.halt)
        at(b, 0, lambda t=b: systemd.boot(t))
    for beat in heartbeats(w):
        at(beat, 2, lambda t=beat: coordinator.run(spec, t, heartbeat=True))
    for _, _, action in sorted(events, key=lambda e: (e[0], e[1])):
        action()


ALERT = re.compile(r"• (\S+) did not run at .*?(caught up|ran again|not run since)")


@pytest.mark.parametrize(
    ("first_day", "seed"),
    [(datetime(2026, 3, 20), 1), (datetime(2026, 10, 18), 2)],
    ids=["spring-forward-and-march-end", "fall-back-and-october-end"],
)
def test_missed_firings_are_recorded_once_and_alerted_once_per_outage(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_day: datetime, seed: int
) -> None:
    spec = compiled_spec(vigil, tmp_path, CONFIG)
    state = Path(spec["state_dir"])
    w = world(first_day, seed)
    drive(w, spec, state, FakeSystemd(tmp_path, monkeypatch))
    last = heartbeats(w)[-1]
    for job, misses in w.expected.items():
        judged = [firing for firing in misses if firing + WINDOW <= last]
        assert missed(state, job) == judged, job
    said: dict[str, Counter[str]] = {job: Counter() for job in FIRES}
    for message in delivered(state, "sink"):
        for line in message["body"].splitlines():
            match = ALERT.match(line)
            assert match, line
            said[match[1]][match[2]] += 1
    assert said == expected_alerts(w, heartbeats(w))
    # What the model covers: both kinds of DST night, a month end, every way an outage ends.
    assert any(f.astimezone(BERLIN).day == 31 for f in w.firings["month-end"])
    assert sum(said.values(), Counter()).keys() == {CAUGHT_UP, RAN_AGAIN, NOT_SINCE}

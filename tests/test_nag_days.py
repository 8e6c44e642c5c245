"""Nag rules over simulated days: a nag counts only when a message names it, caps rotate the
items they cut, and periods in days are calendar days in the config's time zone across both
clock changes and month ends. The real coordinator, in-process, on a spec from `vigil compile`."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.coordinator_support import compiled_spec, delivered, drop, heartbeat

CONFIG = """\
name: nags
timezone: {zone}
state_dir: {state}
channels:
  sink: {file: {state}/sink.jsonl}
coordinator:
  deliver_to: [sink]
  total_cap: 6
  message: {line: "{source}/{priority}: {text}"}
  sources:
    todo: {external: true, cap: 3}
    stale: {external: true}
    seen: {external: true}
    keep: {external: true}
nag:
  todo:
    source: todo
    items: overdue
    key: id
    days_field: days
    min_interval: 20h
    ladder:
      - {min_count: 1, message: "nag 1: {id}"}
      - {min_count: 2, message: "nag 2: {id}"}
      - {min_count: 3, message: "nag 3: {id}"}
    stop_after: 3
    priority: 3
  weekly:
    source: stale
    items: projects
    key: name
    once_per: 7d
    message: "{name} is stale"
  counted:
    source: seen
    items: items
    key: id
    ladder:
      - {min_count: 1, message: "{id} is new"}
      - {min_count: 2, min_days: 2, message: "{id} for {days} days"}
  kept:
    source: keep
    items: items
    key: id
    resolve_missing: false
    once_per: 1d
    message: "{id} kept"
"""


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def spec_in(vigil, tmp_path: Path, zone: str = "America/New_York") -> dict[str, Any]:
    return compiled_spec(vigil, tmp_path, CONFIG.replace("{zone}", zone))


def lines(state: Path) -> list[str]:
    return [line for m in delivered(state, "sink") for line in m["body"].splitlines()]


def items(state: Path, rule: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / f"state/nag-{rule}.json").read_text())["items"]
    return data


def finding(source: str, field: str, *keys: str, **extra: Any) -> dict[str, Any]:
    key = "name" if source == "stale" else "id"
    found = [{key: k, **extra} for k in keys]
    return {"source": source, "timestamp": "x", field: found}


def test_caps_rotate_and_a_nag_counts_only_when_named(vigil, tmp_path: Path) -> None:
    """Five overdue items, a cap of three a message: each day the items cut last time go
    first, no item climbs the ladder unnamed, and all five hear all three nags."""
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    keys = ("A", "B", "C", "D", "E")
    named_per_day = []
    for day in range(6):
        drop(state, finding("todo", "overdue", *keys, days=10))
        heartbeat(spec, local("America/New_York", 2026, 2, 2 + day, 9))
        named = Counter(re.findall(r"nag \d: (\w)", "\n".join(lines(state))))
        named_per_day.append(dict(named))
        for key, record in items(state, "todo").items():
            assert record["nagCount"] == named[key], (day, key)  # never advanced unnamed
            assert (record["status"] == "stopped") == (named[key] == 3)
    assert named_per_day[0] == {"A": 1, "B": 1, "C": 1}
    assert named_per_day[1] == {"A": 2, "B": 1, "C": 1, "D": 1, "E": 1}  # D, E first
    assert named_per_day[4] == dict.fromkeys(keys, 3)
    first = delivered(state, "sink")[0]["body"].splitlines()
    assert first[-1] == "+2 more" and len(first) == 4


def test_vigils_own_alerts_are_never_cut_by_a_findings_priority(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    spec["coordinator"]["total_cap"] = 1
    drop(state, {"source": "disk", "timestamp": "x", "message": "me first", "priority": 101})
    (state / "inbox/broken.json").write_text("{not json")
    (state / "inbox/broken2.json").write_text("[]")
    heartbeat(spec, local("America/New_York", 2026, 2, 2, 9))
    shown = lines(state)
    assert [line.split(":")[0] for line in shown] == ["vigil/100", "vigil/100", "+1 more"]
    assert "broken.json" in shown[0] and "broken2.json" in shown[1]
    spec["coordinator"]["total_cap"] = 5
    drop(state, {"source": "disk", "timestamp": "x", "message": "me first", "priority": 101})
    heartbeat(spec, local("America/New_York", 2026, 2, 3, 9))
    assert lines(state)[-1] == "disk/99: me first [r3]"  # below vigil's own ALERT_PRIORITY


# Mondays around both clock changes and a month end, in two zones: (zone, first Monday).
WEEKS = [
    ("America/New_York", (2026, 3, 2)),  # spring forward on Sunday 8 March
    ("America/New_York", (2026, 10, 19)),  # fall back on Sunday 1 November; October ends
    ("Europe/Berlin", (2026, 3, 23)),  # spring forward on Sunday 29 March; March ends
    ("Europe/Berlin", (2026, 10, 19)),  # fall back on Sunday 25 October
]


@pytest.mark.parametrize(("zone", "monday"), WEEKS, ids=[f"{z} {m}" for z, m in WEEKS])
def test_once_a_week_is_every_monday_whatever_the_clock_does(
    vigil, tmp_path: Path, zone: str, monday: tuple[int, int, int]
) -> None:
    """The weekly check runs every day at 09:00, a few seconds late one week and on the dot
    the next: the project is mentioned every Monday, and on no other day."""
    spec, state = spec_in(vigil, tmp_path, zone), tmp_path / "state"
    start = local(zone, *monday, 9)
    mentioned = []
    for day in range(22):
        moment = local(zone, *(start + timedelta(days=day)).timetuple()[:3], 9)
        moment += timedelta(seconds=3 if day % 14 == 0 else 0)
        before = len(lines(state))
        drop(state, finding("stale", "projects", "garden"))
        heartbeat(spec, moment)
        if len(lines(state)) > before:
            mentioned.append(day)
    assert mentioned == [0, 7, 14, 21]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin"])
def test_days_without_a_days_field_are_calendar_days_since_first_seen(
    vigil, tmp_path: Path, zone: str
) -> None:
    """First seen at 23:30 on a Friday before spring forward; two calendar days later (less
    than 48 hours) the second rung, which needs 2 days, is due."""
    spec, state = spec_in(vigil, tmp_path, zone), tmp_path / "state"
    friday = (2026, 3, 6) if zone == "America/New_York" else (2026, 3, 27)
    first = local(zone, *friday, 23, 30)
    for moment in (first, first + timedelta(hours=10), first + timedelta(hours=24, minutes=40)):
        drop(state, finding("seen", "items", "X"))
        heartbeat(spec, moment)
    assert [line.split(": ", 1)[1] for line in lines(state)] == [
        "X is new [r1]",
        "X for 2 days [r1]",
    ]


def test_a_ladder_without_stop_after_keeps_nagging(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    for day in range(6):
        drop(state, finding("seen", "items", "X"))
        heartbeat(spec, local("America/New_York", 2026, 2, 2 + day, 9))
    assert [line.split(": ", 1)[1] for line in lines(state)] == [
        "X is new [r1]",
        "X for 2 days [r1]",
        "X for 3 days [r1]",
        "X for 4 days [r1]",
        "X for 5 days [r1]",
    ]
    assert (
        items(state, "counted")["X"] | {"nagCount": 5, "status": "active"}
        == items(state, "counted")["X"]
    )


def test_the_first_rung_nags_an_item_due_today(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    drop(state, finding("todo", "overdue", "T", days=0))
    heartbeat(spec, local("America/New_York", 2026, 2, 2, 9))
    assert lines(state) == ["todo/3: nag 1: T [r1]"]  # and the rule's priority, 3, in the line


def test_min_interval_holds_back_the_next_nag(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    first = local("America/New_York", 2026, 2, 2, 9)
    for moment in (first, first + timedelta(hours=19, minutes=50), first + timedelta(hours=20)):
        drop(state, finding("todo", "overdue", "T", days=5))
        heartbeat(spec, moment)
    assert lines(state) == ["todo/3: nag 1: T [r1]", "todo/3: nag 2: T [r1]"]


def test_an_item_that_comes_back_is_active_again(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    monday = local("America/New_York", 2026, 2, 2, 9)
    for day, keys in enumerate((("A", "B"), ("B",), ("A", "B"))):
        drop(state, finding("todo", "overdue", *keys, days=5))
        heartbeat(spec, monday + timedelta(days=day))
        if day == 1:
            assert items(state, "todo")["A"]["status"] == "resolved"
    assert items(state, "todo")["A"]["status"] == "active"
    assert lines(state)[-2:] == ["todo/3: nag 2: A [r3]", "todo/3: nag 3: B [r2]"]


def test_resolve_missing_false_keeps_a_missing_item_active(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    monday = local("America/New_York", 2026, 2, 2, 9)
    drop(state, finding("keep", "items", "A", "B"))
    heartbeat(spec, monday)
    drop(state, finding("keep", "items", "B"))
    heartbeat(spec, monday + timedelta(days=1))
    assert {k: r["status"] for k, r in items(state, "kept").items()} == {
        "A": "active",
        "B": "active",
    }


def test_the_rules_priority_decides_what_the_total_cap_keeps(vigil, tmp_path: Path) -> None:
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    spec["coordinator"]["total_cap"] = 1
    drop(state, finding("seen", "items", "S"))  # rule priority 0, dropped first
    drop(state, finding("todo", "overdue", "T", days=1))  # rule priority 3
    heartbeat(spec, local("America/New_York", 2026, 2, 2, 9))
    assert lines(state) == ["todo/3: nag 1: T [r1]", "+1 more"]  # the cut S has no code
    assert items(state, "counted")["S"]["nagCount"] == 0


def test_a_nag_held_overnight_counts_when_the_morning_message_names_it(
    vigil, tmp_path: Path
) -> None:
    """Findings at 23:00 and 02:00 (quiet) give one line at 07:15, counted then: the 09:00
    finding is within min_interval of it, and the next morning's is the second nag."""
    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    spec["coordinator"]["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": None}
    evening = local("America/New_York", 2026, 2, 2, 23)
    for moment in (evening, evening + timedelta(hours=3)):
        drop(state, finding("todo", "overdue", "T", days=5))
        heartbeat(spec, moment)
    assert lines(state) == [] and items(state, "todo")["T"]["nagCount"] == 0
    heartbeat(spec, evening + timedelta(hours=8, minutes=15))
    assert lines(state) == ["todo/3: nag 1: T [r1]"]
    assert items(state, "todo")["T"]["lastNagged"] == "2026-02-03T12:15:00Z"
    for moment in (evening + timedelta(hours=10), evening + timedelta(days=1, hours=10)):
        drop(state, finding("todo", "overdue", "T", days=5))
        heartbeat(spec, moment)
    assert lines(state) == ["todo/3: nag 1: T [r1]", "todo/3: nag 2: T [r1]"]


def test_a_rerun_after_the_nag_state_was_saved_counts_nothing_twice(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run dies after it queued the message and saved the nag state, before the claim
    is done; the machine is off until the next morning. The rerun takes up the same claim (same
    message ids) and must not count a nag no message will say."""
    from runner import coordinator

    spec, state = spec_in(vigil, tmp_path), tmp_path / "state"
    done = coordinator.done

    def dies_before_done(*_args: Any, **_kwargs: Any) -> None:
        raise SystemExit("killed")

    drop(state, finding("todo", "overdue", "A", days=10))
    monkeypatch.setattr(coordinator, "done", dies_before_done)
    with pytest.raises(SystemExit):
        heartbeat(spec, local("America/New_York", 2026, 2, 2, 9))
    assert items(state, "todo")["A"]["nagCount"] == 1
    monkeypatch.setattr(coordinator, "done", done)
    heartbeat(spec, local("America/New_York", 2026, 2, 3, 6))  # past min_interval
    assert items(state, "todo")["A"]["nagCount"] == 1
    assert lines(state) == ["todo/3: nag 1: A [r1]"]
    drop(state, finding("todo", "overdue", "A", days=11))
    heartbeat(spec, local("America/New_York", 2026, 2, 3, 9))
    # nag 2 said, not skipped
    assert lines(state) == ["todo/3: nag 1: A [r1]", "todo/3: nag 2: A [r1]"]
    assert items(state, "todo")["A"]["nagCount"] == 2


def test_a_period_written_in_hours_is_elapsed_time_one_in_days_calendar_days(
    vigil, tmp_path: Path
) -> None:
    """`min_interval: 24h` waits 24 hours, even across midnight; `once_per: 1d` (written in
    days) is the next calendar day: findings at 23:50 and 00:05 get one nag, then two."""
    hours = CONFIG.replace("min_interval: 20h", "min_interval: 24h")
    spec, state = (
        compiled_spec(vigil, tmp_path, hours.replace("{zone}", "Europe/Berlin")),
        (tmp_path / "state"),
    )
    evening, after_midnight = (
        local("Europe/Berlin", 2026, 3, 2, 23, 50),
        local("Europe/Berlin", 2026, 3, 3, 0, 5),
    )
    for moment in (evening, after_midnight):
        drop(state, finding("todo", "overdue", "A", days=10))
        drop(state, finding("keep", "items", "K"))
        heartbeat(spec, moment)
    said = lines(state)
    # 24h not passed; 1d, written in days, is a new day
    assert [line for line in said if "nag" in line] == ["todo/3: nag 1: A [r1]"]
    assert [line for line in said if "kept" in line] == ["keep/0: K kept [r2]"] * 2


@pytest.mark.parametrize(
    "zone_name", ["America/New_York", "Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe"]
)
def test_a_calendar_period_passes_at_the_first_instant_of_its_day(zone_name: str) -> None:
    """not_before (what the runner waits for and `vigil state` shows) is the first instant at
    which N calendar days have passed, around every clock change of 2018 and 2027 (Sao Paulo's
    DST began at midnight: that day starts at 01:00)."""
    import random

    from runner.clock import calendar_days
    from runner.rules.nag import not_before

    rng = random.Random(zone_name)
    tiny = timedelta(microseconds=1)
    for year in (2018, 2027):
        start = datetime(year, 1, 1, tzinfo=UTC)
        for _ in range(400):
            last = start + timedelta(seconds=rng.randrange(365 * 86400))
            days = rng.choice((1, 2, 7, 14))
            when = not_before(last, days * 86400, True, zone_name)
            assert calendar_days(last, when, zone_name) == days
            assert calendar_days(last, when - tiny, zone_name) == days - 1

"""The reference setup's heartbeat flow, rebuilt as rules: real files, simulated days.

The coordinator runs in-process at chosen moments; findings go through the inbox and messages
through the outbox to a file channel, exactly as in production.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

MONDAY_9AM = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York


def reminders(*items: tuple[str, str, int]) -> dict:
    return {
        "source": "reminder-check",
        "timestamp": "2026-02-02T14:00:00Z",
        "overdue": [
            {"id": key, "title": title, "list": "Immediate", "days_overdue": days}
            for key, title, days in items
        ],
    }


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_nag_ladder_over_several_days(state: Path) -> None:
    spec = bruba_spec(state)
    sent: list[str] = []
    # (day offset, hour offset, days overdue) at the three daily checks; the ladder nags at
    # 1 (any), 2 (3+ days), 3 (7+ days), at most every 20 hours, then stops.
    for day in range(12):
        for hour in (0, 5, 9):
            now = MONDAY_9AM + timedelta(days=day, hours=hour)
            drop(state, reminders(("ABC123", "Call dentist", 1 + day)))
            heartbeat(spec, now)
        sent = [m["body"] for m in delivered(state)]
    assert sent == [
        "• Reminder: Call dentist is overdue [r1]",
        "• Call dentist overdue for 3 days [r1]",
        "• Call dentist overdue 7 days — remove it? [r1]",
    ]
    history = json.loads((state / "state/nag-reminders.json").read_text())
    record = history["items"]["ABC123"]
    assert record["nagCount"] == 3 and record["status"] == "stopped"
    assert record["firstSeen"] == "2026-02-02T14:00:00Z"
    assert record["fields"]["title"] == "Call dentist"
    assert not list((state / "inbox").iterdir())


def test_item_that_vanishes_is_resolved_and_later_pruned(state: Path) -> None:
    spec = bruba_spec(state)
    drop(state, reminders(("A", "One", 1), ("B", "Two", 1)))
    heartbeat(spec, MONDAY_9AM)
    drop(state, reminders(("B", "Two", 2)))
    heartbeat(spec, MONDAY_9AM + timedelta(days=1))
    items = json.loads((state / "state/nag-reminders.json").read_text())["items"]
    assert items["A"]["status"] == "resolved" and items["B"]["status"] == "active"
    drop(state, reminders(("B", "Two", 40)))
    heartbeat(spec, MONDAY_9AM + timedelta(days=40))
    items = json.loads((state / "state/nag-reminders.json").read_text())["items"]
    assert "A" not in items  # pruned after the 30-day retention


def test_staleness_is_mentioned_at_most_once_a_week(state: Path) -> None:
    spec = bruba_spec(state)
    finding = {
        "source": "staleness-check",
        "timestamp": "2026-02-02T15:00:00Z",
        "projects": [{"name": "garden", "days_stale": 15}],
    }
    for day in (0, 3, 6, 7, 10, 14):
        drop(state, finding)
        heartbeat(spec, MONDAY_9AM + timedelta(days=day))
    bodies = [m["body"] for m in delivered(state)]
    assert bodies == ["• garden has not moved in 15 days [r1]"] * 3  # days 0, 7 and 14


def test_caps_and_truncation_as_the_reference_describes(state: Path) -> None:
    spec = bruba_spec(state)
    drop(state, reminders(*[(f"R{i}", f"Task {i}", 1) for i in range(5)]))
    drop(
        state,
        {
            "source": "staleness-check",
            "timestamp": "2026-02-02T14:00:00Z",
            "projects": [{"name": f"p{i}", "days_stale": 20} for i in range(3)],
        },
    )
    for i in range(3):
        drop(state, {"source": "calendar-prep", "timestamp": "x", "message": f"Prep meeting {i}"})
    heartbeat(spec, MONDAY_9AM)
    [message] = delivered(state)
    lines = message["body"].splitlines()
    assert message["title"] == "Bruba: 11 new"
    # at most 3 reminders, 1 staleness, 2 calendar, 5 in total, by priority; the rest counted.
    # Only what a line names gets a code, in the order of the lines: no gaps.
    assert lines[:3] == [
        "• Reminder: Task 0 is overdue [r1]",
        "• Reminder: Task 1 is overdue [r2]",
        "• Reminder: Task 2 is overdue [r3]",
    ]
    assert [line[-5:] for line in lines[3:5]] == [" [r4]", " [r5]"]
    assert sum("Prep meeting" in line for line in lines) == 2
    assert len(lines) == 6 and lines[-1] == "+6 more"


def test_one_message_per_run_and_nothing_when_nothing_to_say(state: Path) -> None:
    spec = bruba_spec(state)
    counts = heartbeat(spec, MONDAY_9AM)
    assert counts["messages"] == 0 and delivered(state) == []
    drop(state, {"source": "morning-briefing", "timestamp": "x", "message": "Good morning"})
    drop(state, {"source": "calendar-prep", "timestamp": "x", "message": "Prep the 10:00"})
    heartbeat(spec, MONDAY_9AM)
    assert len(delivered(state)) == 1
    assert delivered(state)[0]["body"] == "• Good morning [r1]\n• Prep the 10:00 [r2]"


def test_pending_research_task_completes_and_another_is_stuck(state: Path, tmp_path: Path) -> None:
    spec = bruba_spec(state)
    results = tmp_path / "results"
    results.mkdir()
    spec["watches"]["research-result"]["file"]["roots"] = [str(results)]
    drop(
        state,
        {
            "source": "research-dispatch",
            "timestamp": "2026-02-02T15:00:00Z",
            "tasks": [
                {"id": "task-abc", "topic": "quantum", "expectedFile": str(results / "abc.md")},
                {"id": "task-def", "topic": "fusion", "expectedFile": str(results / "def.md")},
            ],
        },
    )
    heartbeat(spec, MONDAY_9AM)
    assert delivered(state) == []  # arming says nothing
    (results / "abc.md").write_text("# Quantum computing trends\nThree findings.\n")
    heartbeat(spec, MONDAY_9AM + timedelta(minutes=5))
    heartbeat(spec, MONDAY_9AM + timedelta(minutes=16))
    bodies = [m["body"] for m in delivered(state)]
    assert bodies[0].startswith("• Research task-abc: satisfied (")
    assert "Quantum computing trends / Three findings." in bodies[0]
    assert bodies[1].startswith("• Research task-def: expired (no ")
    assert "may be stuck" in bodies[1]
    assert len(bodies) == 2
    watch = json.loads((state / "state/watch-research-result.json").read_text())
    assert {k: v["state"] for k, v in watch["instances"].items()} == {
        "task-abc": "satisfied",
        "task-def": "expired",
    }


def test_quiet_hours_hold_messages_until_the_window_ends(state: Path) -> None:
    spec = bruba_spec(state)
    spec["coordinator"]["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": None}
    night = datetime(2026, 2, 3, 4, 0, tzinfo=UTC)  # 23:00 in New York
    drop(state, {"source": "calendar-prep", "timestamp": "x", "message": "later please"})
    drop(state, {"source": "vigil", "timestamp": "x", "message": "backup failed", "urgent": True})
    heartbeat(spec, night)
    assert [m["body"] for m in delivered(state)] == ["• backup failed [r1]"]
    heartbeat(spec, night + timedelta(hours=3))  # 02:00, still quiet
    assert len(delivered(state)) == 1
    heartbeat(spec, night + timedelta(hours=8, minutes=15))  # 07:15
    assert [m["body"] for m in delivered(state)][1] == "• later please [r2]"


def test_unusable_inbox_files_are_rejected_with_an_alert(state: Path, tmp_path: Path) -> None:
    spec = bruba_spec(state)
    inbox = state / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "bad.json").write_text("{not json")
    (inbox / "list.json").write_text("[1, 2]")
    (inbox / "nosource.json").write_text('{"timestamp": "x"}')
    (inbox / "big.json").write_text(
        json.dumps({"source": "a", "timestamp": "x", "m": "x" * 2_000_000})
    )
    (inbox / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    secret = tmp_path / "secret.json"
    secret.write_text('{"source": "x", "timestamp": "y", "message": "do not follow"}')
    os.symlink(secret, inbox / "link.json")
    heartbeat(spec, MONDAY_9AM)
    assert list(inbox.iterdir()) == []
    rejected = sorted(
        p.name for p in (state / "rejected").iterdir() if not p.name.endswith(".reason")
    )
    assert rejected == [
        "bad.json",
        "big.json",
        "binary.json",
        "link.json",
        "list.json",
        "nosource.json",
    ]
    assert (state / "rejected/link.json").is_symlink()
    [message] = delivered(state)
    assert "do not follow" not in message["body"]
    assert "rejected inbox file link.json: it is a symbolic link" in message["body"]
    assert "rejected inbox file big.json: it is 2000" in message["body"]


def test_a_crash_before_bookkeeping_reprocesses_without_loss_or_duplicate(state: Path) -> None:
    spec = bruba_spec(state)
    drop(state, reminders(("A", "One", 1)))
    # A run that dies after claiming: the finding waits in processing/.
    from runner.intake import claim

    claim(str(state), 1 << 20)
    assert list((state / "processing").iterdir())
    heartbeat(spec, MONDAY_9AM)
    heartbeat(spec, MONDAY_9AM + timedelta(minutes=1))
    assert [m["body"] for m in delivered(state)] == ["• Reminder: One is overdue [r1]"]
    assert list((state / "processing").iterdir()) == []


def test_every_run_is_recorded(state: Path) -> None:
    spec = bruba_spec(state)
    heartbeat(spec, MONDAY_9AM)
    runs = [json.loads(line) for line in (state / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["job"] == "coordinator" and runs[-1]["tokens_in"] == 0

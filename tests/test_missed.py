"""Did it run? The real coordinator's heartbeat, in-process on chosen moments, compares each
running timer's firings with the runs recorded: a firing without a run is recorded `missed` and
alerted once per outage, never for a stopped timer or before the timer started."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner import coordinator
from runner.history import last_run, runs
from tests.coordinator_support import compiled_spec, delivered
from tests.missed_support import FakeSystemd, missed, record_run

CONFIG = """\
name: miss
timezone: Europe/Berlin
state_dir: {state}
jobs:
  morning: {schedule: "0 7 * * *", run: "true"}
  hourly: {schedule: "0 * * * *", run: "true", catch_up: false}
channels:
  sink: {file: {state}/sink.jsonl}
coordinator:
  deliver_to: [sink]
"""
MORNING, HOURLY = "miss-morning.timer", "miss-hourly.timer"


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """A moment on Monday 2 February 2026, Berlin time (UTC+1)."""
    return datetime(2026, 2, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


@pytest.fixture
def spec(vigil, tmp_path: Path) -> dict[str, Any]:
    return compiled_spec(vigil, tmp_path, CONFIG)


@pytest.fixture
def state(spec: dict[str, Any]) -> Path:
    return Path(spec["state_dir"])


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSystemd:
    fake = FakeSystemd(tmp_path, monkeypatch)
    fake.boot(at(12, day=1))
    return fake


def heartbeat(spec: dict[str, Any], now: datetime) -> dict[str, int]:
    return coordinator.run(spec, now, heartbeat=True)


def alerts(state: Path) -> list[str]:
    """Every line of every message delivered (one message may carry several alerts)."""
    return [line for message in delivered(state, "sink") for line in message["body"].splitlines()]


def installed(systemd: FakeSystemd, spec: dict[str, Any], moment: datetime) -> None:
    systemd.start(MORNING, moment)
    systemd.start(HOURLY, moment)
    heartbeat(spec, moment)


def hourly_runs(state: Path, first: int, last: int) -> None:
    for hour in range(first, last + 1):
        record_run(state, "hourly", at(hour, 0) + timedelta(seconds=20))


def test_a_firing_without_a_run_is_recorded_and_alerted_once(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 8)
    counts = heartbeat(spec, at(7, 15))
    assert missed(state) == [at(7)]
    assert counts["missed"] == 1
    assert alerts(state) == ["• morning did not run at 07:00; it has not run since [r1]"]
    [record] = [r for r in runs(str(state)) if r.get("result") == "missed"]
    assert record["job"] == "morning" and record["kind"] == "job"
    assert record["exit_status"] is None and record["invocation_id"] is None
    assert record["reason"] == "no run started within 360s of this firing"
    heartbeat(spec, at(7, 30))
    heartbeat(spec, at(8, 45))
    assert missed(state) == [at(7)]
    assert len(alerts(state)) == 1


def test_a_catch_up_run_is_named_in_the_alert(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 8)
    record_run(state, "morning", at(8, 12))
    heartbeat(spec, at(8, 20))
    assert missed(state) == [at(7)]
    assert alerts(state) == ["• morning did not run at 07:00; caught up at 08:12 [r1]"]


def test_a_run_within_accuracy_and_grace_is_no_miss(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    record_run(state, "morning", at(7, 5) + timedelta(seconds=59))  # 60 s accuracy + 5 min
    hourly_runs(state, 7, 9)
    heartbeat(spec, at(9, 30))
    assert missed(state) == []
    assert alerts(state) == []


def test_a_run_still_going_counts(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 7)
    running = state / "running"
    running.mkdir()
    marker = {"job": "morning", "pid": 1, "start": "2026-02-02T06:00:30.000Z"}
    (running / "morning.json").write_text(json.dumps(marker))
    heartbeat(spec, at(7, 30))
    assert missed(state) == []


def test_no_firing_before_the_timer_was_installed_counts(spec, state, systemd) -> None:
    heartbeat(spec, at(6))  # the coordinator runs; the jobs' timers do not exist yet
    installed(systemd, spec, at(7, 30))
    heartbeat(spec, at(8, 30))
    assert missed(state) == [at(8)]  # hourly's, not 07:00's
    assert alerts(state) == ["• hourly did not run at 08:00; it has not run since [r1]"]


def test_a_disabled_or_paused_timer_misses_nothing(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    systemd.stop(MORNING)
    systemd.stop(HOURLY)
    heartbeat(spec, at(7, 30))
    heartbeat(spec, at(9, 30))
    # Resumed between two heartbeats: firings before the resume are not its.
    systemd.start(HOURLY, at(10, 5))
    heartbeat(spec, at(10, 30))
    assert missed(state) == []
    heartbeat(spec, at(11, 30))
    assert missed(state) == [at(11)]
    assert alerts(state) == ["• hourly did not run at 11:00; it has not run since [r1]"]


def test_firings_while_the_manager_was_down_are_missed(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    systemd.halt()
    systemd.boot(at(9, 2))  # the machine was off; Persistent= catches the morning job up
    record_run(state, "morning", at(9, 2) + timedelta(seconds=3))
    hourly_runs(state, 10, 10)
    heartbeat(spec, at(10, 30))
    assert missed(state, "morning") == [at(7)]
    assert missed(state, "hourly") == [at(7), at(8), at(9)]
    # Both alerts reach the inbox in no set order, and codes go in the order they are taken.
    hourly = "• hourly did not run at 07:00 (nor at the 2 firings after it); it ran again at 10:00"
    morning = "• morning did not run at 07:00; caught up at 09:02"
    assert sorted(alerts(state)) in (
        [f"{hourly} [r1]", f"{morning} [r2]"],
        [f"{hourly} [r2]", f"{morning} [r1]"],
    )


def test_one_alert_per_outage_across_heartbeats(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    heartbeat(spec, at(7, 30))
    heartbeat(spec, at(8, 30))  # 08:00 missed too: the same outage
    assert missed(state, "hourly") == [at(7), at(8)]
    assert len([a for a in alerts(state) if "hourly" in a]) == 1
    hourly_runs(state, 9, 9)
    heartbeat(spec, at(10, 30))  # ran at 09:00, missed 10:00: a new outage
    assert missed(state, "hourly") == [at(7), at(8), at(10)]
    first, second = [a for a in alerts(state) if "hourly" in a]
    code = first.rpartition(" ")[2]  # hourly's missed firings are one item: one code
    assert second == f"• hourly did not run at 10:00; it has not run since {code}"


def test_without_systemd_nothing_is_judged_and_nothing_forgotten(
    spec, state, systemd, capsys
) -> None:
    installed(systemd, spec, at(6, 30))
    systemd.halt()
    heartbeat(spec, at(7, 30))
    assert "cannot ask systemd about the timers" in capsys.readouterr().err
    assert missed(state) == []
    systemd.boot(at(12, day=1))  # answers again: the timers ran all along
    heartbeat(spec, at(8, 30))
    assert missed(state) == [at(7), at(7), at(8)]  # morning's and hourly's


def test_a_lost_state_file_records_and_alerts_nothing_twice(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 9)
    heartbeat(spec, at(7, 30))
    (state / "state" / "firings.json").write_text('{"version": 7}')
    heartbeat(spec, at(9, 30))
    assert missed(state) == [at(7)]
    bodies = alerts(state)
    assert bodies[0] == "• morning did not run at 07:00; it has not run since [r1]"
    assert len(bodies) == 2 and "vigil set aside state/firings.json" in bodies[1]


def test_a_missed_firing_is_no_run_for_a_chain(spec, state, systemd) -> None:
    installed(systemd, spec, at(6, 30))
    record_run(state, "morning", at(8, 12))
    heartbeat(spec, at(8, 20))  # appends the 07:00 miss after the 08:12 catch-up
    last = last_run(str(state), "morning")
    assert last is not None and last["result"] == "ok"


def test_only_a_heartbeat_checks(spec, state, systemd, monkeypatch) -> None:
    installed(systemd, spec, at(6, 30))
    coordinator.run(spec, at(7, 30))  # started by the path unit, outside systemd
    assert missed(state) == []
    monkeypatch.setenv("INVOCATION_ID", "0" * 32)  # under systemd: due after two heartbeats
    coordinator.run(spec, at(6, 30) + timedelta(minutes=29))
    assert missed(state) == []
    coordinator.run(spec, at(7, 30))
    assert missed(state, "morning") == [at(7)]


def test_history_of_a_job_lists_its_runs_and_missed_firings(
    vigil, spec, state, systemd, tmp_path
) -> None:
    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 7)
    heartbeat(spec, at(8, 30))  # hourly's 08:00 is missed
    config = tmp_path / "vigil.yaml"
    result = vigil("history", "hourly", "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(row["start"], row["result"]) for row in rows] == [
        ("2026-02-02T06:00:20.000Z", "ok"),
        ("2026-02-02T07:00:00.000Z", "missed"),
    ]
    assert rows[1]["reason"] == "no run started within 360s of this firing"
    table = vigil("history", "hourly", "--config", config)
    assert table.stdout.splitlines()[0].split() == ["START", "RESULT", "DURATION_S", "REASON"]
    assert vigil("history", "nightly", "--config", config).exit_code == 2
    assert vigil("history", "--json").exit_code == 2  # generations have no --json


def test_status_notes_a_missed_firing_not_run_since(spec, state, systemd, tmp_path) -> None:
    from compiler.language.validate import load_config
    from compiler.layout import Scope
    from compiler.operate.setup import ConfigView
    from compiler.operate.status import collect

    installed(systemd, spec, at(6, 30))
    hourly_runs(state, 7, 7)
    heartbeat(spec, at(8, 30))
    config = ConfigView.of_config(load_config(tmp_path / "vigil.yaml", check_calendar=False).config)
    rows = {row.name: row for row in collect(config, Scope(root=tmp_path), state, warn=print)}
    hourly = rows["hourly"]
    assert hourly.result == "ok" and hourly.failures_in_row == 0 and not hourly.failed
    assert hourly.note == "missed its 2026-02-02T07:00:00.000Z firing; no run since"
    assert rows["morning"].note == "missed its 2026-02-02T06:00:00.000Z firing; no run since"
    hourly_runs(state, 9, 9)
    rows = {row.name: row for row in collect(config, Scope(root=tmp_path), state, warn=print)}
    assert rows["hourly"].note == ""

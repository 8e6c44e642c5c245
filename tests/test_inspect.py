"""`vigil inbox`, `vigil outbox` and `vigil state` read a config's runtime files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import ROOT
from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

NOW = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)


def config_for(tmp_path: Path, state: Path) -> Path:
    path = tmp_path / "vigil.yaml"
    text = (ROOT / "examples/bruba.yaml").read_text()
    path.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state}\n"))
    return path


def test_state_shows_nag_items_and_the_next_step(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = bruba_spec(state)
    drop(
        state,
        {
            "source": "reminder-check",
            "timestamp": "x",
            "overdue": [{"id": "A1", "title": "Call dentist", "days_overdue": 1}],
        },
    )
    heartbeat(spec, NOW)
    result = vigil("state", "--config", config_for(tmp_path, state))
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "RULE", "KEY", "CODE", "TITLE", "STATUS", "COUNT", "LAST_NAGGED", "NEXT"
    ]  # fmt: skip
    assert row.startswith("reminders  A1   r1    Call dentist  active  1")  # r1: its message's
    assert "nag 2 once 3+ days overdue, not before 2026-02-03 04:59 EST" in row
    rows = json.loads(vigil("state", "--config", config_for(tmp_path, state), "--json").stdout)
    assert rows[0]["count"] == 1 and rows[0]["code"] == "r1"


def test_state_shows_when_a_weekly_mention_is_next_as_the_runner_counts_it(
    vigil, tmp_path: Path
) -> None:
    """once_per: 7d is calendar days in the config's zone: mentioned on the Saturday before
    the clocks spring forward, the next mention may come from the next Saturday's midnight,
    local time (168 elapsed hours would be 01:00 EDT), and the runner agrees."""
    state = tmp_path / "state"
    spec = bruba_spec(state)
    stale = {"source": "staleness-check", "timestamp": "x", "projects": [{"name": "P"}]}
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # 10:00 EST
    drop(state, stale)
    heartbeat(spec, saturday)
    result = vigil("state", "--config", config_for(tmp_path, state))
    assert "next mention, not before 2026-03-14 00:00 EDT" in result.stdout
    told = len(delivered(state))
    drop(state, stale)
    heartbeat(spec, datetime(2026, 3, 14, 3, 59, tzinfo=UTC))  # Friday 23:59 EDT
    assert len(delivered(state)) == told
    drop(state, stale)
    heartbeat(spec, datetime(2026, 3, 14, 4, 0, tzinfo=UTC) + timedelta(seconds=1))
    assert len(delivered(state)) == told + 1


def test_inbox_lists_pending_and_rejected(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "inbox").mkdir(parents=True)
    (state / "inbox" / "bad.json").write_text("{nope")
    heartbeat(bruba_spec(state), NOW)
    drop(state, {"source": "calendar-prep", "timestamp": "x", "message": "m"}, name="new.json")
    rows = json.loads(vigil("inbox", "-c", config_for(tmp_path, state), "--json").stdout)
    assert [(r["where"], r["file"]) for r in rows] == [
        ("inbox", "new.json"),
        ("rejected", "bad.json"),
    ]
    assert rows[0]["source"] == "calendar-prep"
    assert rows[1]["reason"].startswith("is not valid JSON")


def failed_once(tmp_path: Path) -> Path:
    """A state directory with one message to signal, whose first attempt failed."""
    state = tmp_path / "state"
    spec = bruba_spec(state)
    spec["channels"]["signal"]["file"] = str(tmp_path / "missing-dir-is-a-file" / "x.jsonl")
    (tmp_path / "missing-dir-is-a-file").write_text("")
    drop(state, {"source": "calendar-prep", "timestamp": "x", "message": "m"})
    heartbeat(spec, NOW)
    return state


def test_outbox_shows_retrying_messages(vigil, tmp_path: Path) -> None:
    state = failed_once(tmp_path)
    result = vigil("outbox", "-c", config_for(tmp_path, state))
    assert result.exit_code == 0, result.stderr
    assert "retrying  signal" in result.stdout


def test_outbox_shows_a_message_whose_send_began_and_never_ended(vigil, tmp_path: Path) -> None:
    """What a run killed while appending it leaves: the queue file marked `sending`."""
    state = failed_once(tmp_path)
    [path] = (state / "outbox").glob("*.json")
    entry = json.loads(path.read_text())
    path.write_text(json.dumps({**entry, "sending": {"at": "2026-02-02T14:05:00Z", "offset": 0}}))
    result = vigil("outbox", "-c", config_for(tmp_path, state))
    assert result.exit_code == 0, result.stderr
    assert "sending  signal" in result.stdout
    rows = json.loads(vigil("outbox", "-c", config_for(tmp_path, state), "--json").stdout)
    assert [(row["state"], row["attempts"]) for row in rows] == [("sending", 1)]


def test_default_config_is_found_in_the_current_directory(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    config_for(tmp_path, state)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = vigil("inbox")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0 and "inbox empty" in result.stderr


def test_missing_config_is_a_usage_error(vigil, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = vigil("state")
    assert result.exit_code == 2 and "pass --config FILE" in result.stderr


# -- state files of another shape, and watch commands that would change nothing -----------------


def state_with(tmp_path: Path, name: str, data: object) -> Path:
    state = tmp_path / "state"
    (state / "state").mkdir(parents=True, exist_ok=True)
    (state / "state" / name).write_text(json.dumps(data))
    return config_for(tmp_path, state)


def test_state_of_another_shape_is_one_line_not_a_traceback(vigil, tmp_path: Path) -> None:
    items = {"A1": {"status": "active", "nagCount": 2, "fields": {"title": "Dentist"}}, "B": "x"}
    config = state_with(tmp_path, "nag-reminders.json", {"version": 1, "items": items})
    state_with(tmp_path, "nag-stale-projects.json", {"version": 2, "items": {}})
    result = vigil("state", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "nag-reminders.json has 1 entry of another shape (B: not an object)" in result.stderr
    assert "nag-stale-projects.json is version 2; this vigil reads version 1" in result.stderr
    assert "Dentist" in result.stdout


def test_state_that_cannot_be_read_or_parsed_is_one_line_each(vigil, tmp_path: Path) -> None:
    config = state_with(tmp_path, "nag-reminders.json", {})
    (tmp_path / "state" / "state" / "nag-reminders.json").write_text("{torn")
    (tmp_path / "state" / "state" / "nag-stale-projects.json").mkdir()  # open() fails
    result = vigil("state", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "nag-reminders.json is not valid JSON; not shown" in result.stderr
    assert "nag-stale-projects.json cannot be read (Is a directory); not shown" in result.stderr


def test_watches_of_another_shape_is_one_line_not_a_traceback(vigil, tmp_path: Path) -> None:
    config = state_with(tmp_path, "watch-urgent-reply.json", {"instances": {"k": ["odd"]}})
    result = vigil("watches", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "watch-urgent-reply.json has 1 entry of another shape (k: not an object)" in result.stderr
    )


def test_ack_of_an_unknown_key_fails_and_names_the_known_ones(vigil, tmp_path: Path) -> None:
    fired = {"state": "fired", "at": "2026-02-02T14:00:00Z"}
    config = state_with(tmp_path, "watch-urgent-reply.json", {"instances": {"m1": fired}})
    result = vigil("ack", "urgent-reply", "no-such-key", "--config", config)
    assert result.exit_code == 2
    assert "urgent-reply has no instance 'no-such-key'; known keys: m1" in result.stderr
    assert not (tmp_path / "state" / "inbox").exists()
    assert vigil("ack", "urgent-reply", "m1", "--config", config).exit_code == 0


def test_arm_within_zero_or_less_is_refused(vigil, tmp_path: Path) -> None:
    config = config_for(tmp_path, tmp_path / "state")
    for within in ("0s", "0m"):
        result = vigil(
            "watch", "arm", "research-result", "--key", "k", "--within", within, "-c", config
        )
        assert result.exit_code == 2, result.stderr
        assert "--within must be more than 0s" in result.stderr
    assert not (tmp_path / "state" / "inbox").exists()

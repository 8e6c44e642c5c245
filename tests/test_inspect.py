"""`vigil inbox`, `vigil outbox` and `vigil state` read a config's runtime files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import ROOT
from tests.coordinator_support import bruba_spec, drop, heartbeat

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
    assert header.split() == ["RULE", "KEY", "TITLE", "STATUS", "COUNT", "LAST_NAGGED", "NEXT"]
    assert row.startswith("reminders  A1   Call dentist  active  1")
    assert "nag 2 once 3+ days overdue, not before 2026-02-03 10:00 UTC" in row
    rows = json.loads(vigil("state", "--config", config_for(tmp_path, state), "--json").stdout)
    assert rows[0]["count"] == 1


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


def test_outbox_shows_retrying_messages(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = bruba_spec(state)
    spec["channels"]["signal"]["file"] = str(tmp_path / "missing-dir-is-a-file" / "x.jsonl")
    (tmp_path / "missing-dir-is-a-file").write_text("")
    drop(state, {"source": "calendar-prep", "timestamp": "x", "message": "m"})
    heartbeat(spec, NOW)
    result = vigil("outbox", "-c", config_for(tmp_path, state))
    assert result.exit_code == 0, result.stderr
    assert "retrying  signal" in result.stdout


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

"""A failure after a change, against a real systemd user manager: the failure alert names the
generation that changed the job and what the one before did; with `release.auto_rollback` the
config goes back to that generation once, with one alert and the reason in `vigil history`, and
a rollback generation that fails too is not rolled back again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: rb
state_dir: {state}
jobs:
  digest:
    schedule: "0 0 1 1 *"
    run: "{digest}"
  other:
    schedule: "0 0 1 1 *"
    run: "true"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
release:
  auto_rollback: {auto}
"""


def install(vigil, tmp_path: Path, **fields: str) -> tuple[Path, Path]:
    state = apply_config(vigil, tmp_path, "rb", CONFIG, **fields)
    return tmp_path / "rb.yaml", state


def deliveries(state: Path) -> list[dict[str, object]]:
    path = state / "deliveries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def current(home: Path) -> str:
    return os.readlink(home / ".local/share/vigil/rb/current")


def test_the_alert_names_the_change_and_the_rollback(vigil, vigil_manager, tmp_path) -> None:
    config, state = install(vigil, tmp_path, digest="true", auto="false")
    for _ in range(2):
        assert vigil("run", "digest", "--wait", "--config", config).exit_code == 0
    config.write_text(CONFIG.format(state=state, digest="exit 3", auto="false"))
    assert vigil("apply", config, "--yes").exit_code == 0
    assert vigil("run", "digest", "--wait", "--config", config).exit_code == 1
    (alert,) = vigil_manager.wait_for(lambda: deliveries(state), 20, what="the failure alert")
    body = str(alert["body"])
    assert "first run since generation 2 (run changed)" in body, body
    assert "generation 1 ran it 2 times without failure; `vigil rollback 1`" in body, body
    home = Path(vigil_manager.env["HOME"])
    assert current(home) == "generations/2"


def test_auto_rollback_goes_back_once(vigil, vigil_manager, tmp_path) -> None:
    home = Path(vigil_manager.env["HOME"])
    config, state = install(vigil, tmp_path, digest="true", auto="true")
    assert vigil("run", "digest", "--wait", "--config", config).exit_code == 0
    config.write_text(CONFIG.format(state=state, digest="exit 3", auto="true"))
    assert vigil("apply", config, "--yes").exit_code == 0
    assert vigil("run", "digest", "--wait", "--config", config).exit_code == 1

    vigil_manager.wait_for(
        lambda: current(home) == "generations/3", 60, what="the automatic rollback"
    )
    (alert,) = vigil_manager.wait_for(lambda: deliveries(state), 20, what="the failure alert")
    body = str(alert["body"])
    assert "first run since generation 2 (run changed)" in body, body
    assert "rolling back to generation 1 (release.auto_rollback" in body, body
    history = vigil("history").stderr + vigil("history").stdout
    assert "auto-rollback to 1: rb-digest failed" in history, history
    # Removed once the rollback's apply has ended (a moment after `current` switched).
    vigil_manager.wait_for(
        lambda: not (state / "state/rollback.json").exists(), 30, what="the request removed"
    )
    data = home / ".local/share/vigil/rb"
    unit = (home / ".config/systemd/user/rb-digest.service").read_text()
    assert unit == (data / "generations/1/units/rb-digest.service").read_text()

    # The rollback generation fails too (the trouble was elsewhere): no second rollback.
    (data / "generations/3/bin/rb-digest").write_text("#!/bin/sh\nexit 5\n")
    assert vigil("run", "digest", "--wait", "--config", config).exit_code == 5
    alerts = vigil_manager.wait_for(
        lambda: len(deliveries(state)) >= 2 and deliveries(state), 20, what="the second alert"
    )
    body = str(alerts[1]["body"])
    assert "first run since generation 3 (run changed)" in body, body
    assert "this generation is a rollback: not rolled back again" in body, body
    assert current(home) == "generations/3" and sorted(os.listdir(data / "generations")) == [
        "1",
        "2",
        "3",
    ]

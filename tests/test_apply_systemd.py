"""plan / apply / rollback against a real systemd user manager.

The manager runs in a private mount namespace with its own HOME (see systemd_manager.py); vigil
runs in-process with that environment, so `systemctl --user` and `%h` agree with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.cli.views import next_runs
from tests.conftest import ROOT, commit_two_revisions

pytestmark = pytest.mark.systemd
BRUBA = ROOT / "examples" / "bruba.yaml"


@pytest.fixture
def manager(vigil_manager):
    return vigil_manager


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bruba.yaml"
    path.write_text(BRUBA.read_text())
    return path


def timers(manager) -> dict[str, dict[str, str]]:
    """Loaded bruba timers with their next elapse (list-timers --all as JSON)."""
    out = manager.systemctl("list-timers", "--all", "--output=json").stdout
    return {t["unit"]: t for t in json.loads(out) if t["unit"].startswith("bruba-")}


def state(manager, unit: str) -> dict[str, str]:
    return manager.show(unit, "ActiveState", "LoadState", "UnitFileState", "Result")


def apply(vigil, config: Path, *args: str):
    result = vigil("apply", config, "--yes", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def test_apply_lists_every_timer_with_its_next_elapse(vigil, manager, config: Path) -> None:
    apply(vigil, config)
    listed = timers(manager)
    from compiler.generate.build import build

    _, tree = build(config)
    expected = next_runs(tree)
    assert set(listed) == set(expected) | {"bruba-coordinator.timer"}
    for unit, moment in expected.items():
        assert moment is not None
        next_elapse = datetime.fromtimestamp(listed[unit]["next"] / 1e6, UTC)
        assert abs((next_elapse - moment).total_seconds()) < 1, unit
    assert state(manager, "bruba-coordinator.path")["ActiveState"] == "active"
    assert state(manager, "bruba-reminder-check.timer")["UnitFileState"] == "enabled"
    failed = manager.systemctl("list-units", "--failed", "--plain", "--no-legend").stdout
    assert "bruba-" not in failed


def test_editing_one_schedule_restarts_only_that_timer(vigil, manager, config: Path) -> None:
    apply(vigil, config)
    before = {u: manager.show(u, "ActiveEnterTimestampMonotonic") for u in timers(manager)}
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    planned = vigil("plan", config)
    updates = [line.split()[1] for line in planned.stderr.splitlines() if "  update " in line]
    assert [u for u in updates if u.startswith("units/")] == ["units/bruba-staleness-check.timer"]
    result = apply(vigil, config)
    assert "restarted: bruba-staleness-check.timer" in result.stderr
    after = {u: manager.show(u, "ActiveEnterTimestampMonotonic") for u in timers(manager)}
    changed = sorted(u for u in before if before[u] != after[u])
    assert changed == ["bruba-staleness-check.timer"]
    next_elapse = timers(manager)["bruba-staleness-check.timer"]["next"] / 1e6
    assert datetime.fromtimestamp(next_elapse, UTC).astimezone().minute == 30


def test_removing_a_job_removes_its_units_and_leaves_nothing_failed(
    vigil, manager, config: Path
) -> None:
    apply(vigil, config)
    text = config.read_text()
    start, end = text.index("  calendar-prep:"), text.index("  morning-briefing:")
    config.write_text(text[:start] + text[end:].replace("calendar-prep: {cap: 2, priority: 7}", ""))
    apply(vigil, config)
    assert "bruba-calendar-prep.timer" not in timers(manager)
    assert state(manager, "bruba-calendar-prep.timer")["LoadState"] == "not-found"
    failed = manager.systemctl("list-units", "--all", "--failed", "--plain", "--no-legend").stdout
    assert "bruba-" not in failed


def test_rollback_brings_back_the_previous_generation(vigil, manager, config: Path) -> None:
    apply(vigil, config)
    first = timers(manager)
    text = config.read_text()
    start, end = text.index("  calendar-prep:"), text.index("  morning-briefing:")
    config.write_text(text[:start] + text[end:].replace("calendar-prep: {cap: 2, priority: 7}", ""))
    apply(vigil, config)
    assert "bruba-calendar-prep.timer" not in timers(manager)
    result = vigil("rollback", "--yes")
    assert result.exit_code == 0, result.stderr
    assert set(timers(manager)) == set(first)
    assert state(manager, "bruba-calendar-prep.timer")["ActiveState"] == "active"


def test_hand_edited_unit_shows_as_drift(vigil, manager, config: Path) -> None:
    apply(vigil, config)
    unit = manager.unit_dir / "bruba-reminder-check.timer"
    unit.write_text(unit.read_text().replace("AccuracySec=1min", "AccuracySec=1h"))
    result = vigil("plan", config, "--check")
    assert result.exit_code == 1
    assert "drift: units/bruba-reminder-check.timer was changed by hand" in result.stderr


def test_apply_git_revision(vigil, manager, config: Path) -> None:
    commit_two_revisions(config, '"0 10 * * 1"', '"30 10 * * 1"')
    apply(vigil, config)
    apply(vigil, config, "--git", "HEAD~1")
    timer = manager.unit_dir / "bruba-staleness-check.timer"
    assert "OnCalendar=Mon *-*-* 10:00:00 America/New_York" in timer.read_text()
    shown = manager.show("bruba-staleness-check.timer", "TimersCalendar")["TimersCalendar"]
    assert "10:00:00" in shown


def test_a_unit_that_fails_to_start_restores_the_previous_generation(
    vigil, manager, config: Path, tmp_path: Path
) -> None:
    apply(vigil, config)
    before = timers(manager)
    units_before = {p.name: p.read_bytes() for p in manager.unit_dir.glob("bruba-*")}
    # A state directory below a regular file: the path unit cannot create its inbox.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config.write_text(
        config.read_text().replace("name: bruba\n", f"name: bruba\nstate_dir: {blocker}/state\n")
    )
    result = vigil("apply", config, "--yes")
    assert result.exit_code == 1
    assert "apply failed at" in result.stderr and "generation 1 is active again" in result.stderr
    assert {p.name: p.read_bytes() for p in manager.unit_dir.glob("bruba-*")} == units_before
    assert set(timers(manager)) == set(before)
    assert state(manager, "bruba-coordinator.path")["ActiveState"] == "active"
    history = vigil("history").stdout.splitlines()
    assert len(history) == 1 and history[0].startswith("*    1")


def test_a_daemon_reload_failure_restores_the_previous_generation(
    vigil, manager, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(vigil, config)
    units_before = {p.name: p.read_bytes() for p in manager.unit_dir.glob("bruba-*")}
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    from compiler.install.systemctl import Systemctl, SystemdError

    real_reload = Systemctl.daemon_reload
    calls = []

    def failing_once(self: Systemctl) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise SystemdError("systemctl daemon-reload: Connection timed out")
        real_reload(self)

    monkeypatch.setattr(Systemctl, "daemon_reload", failing_once)
    result = vigil("apply", config, "--yes")
    assert result.exit_code == 1
    assert "apply failed at daemon-reload" in result.stderr
    assert {p.name: p.read_bytes() for p in manager.unit_dir.glob("bruba-*")} == units_before
    shown = manager.show("bruba-staleness-check.timer", "TimersCalendar")["TimersCalendar"]
    assert "10:00:00" in shown


def test_uninstall_leaves_nothing_loaded(vigil, manager, config: Path) -> None:
    apply(vigil, config)
    result = vigil("uninstall", config, "--yes")
    assert result.exit_code == 0, result.stderr
    assert timers(manager) == {}
    assert state(manager, "bruba-coordinator.path")["LoadState"] == "not-found"
    assert not list(manager.unit_dir.glob("bruba-*"))

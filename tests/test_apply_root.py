"""plan / apply / rollback / history / uninstall into a directory tree (`--root`), no systemd.

The same code paths run against a real user manager in test_apply_systemd.py; here the file-level
behaviour is pinned down quickly: generations, the `current` link, unit copies, enablement links,
drift, conflicts, rollback and failures that must leave the previous generation intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compiler.generate.render import GeneratedFile
from compiler.install.generations import Installation
from compiler.install.workflows import prepare, run
from compiler.layout import Scope
from tests.conftest import ROOT, commit_two_revisions, require_systemd_analyze

BRUBA = ROOT / "examples" / "bruba.yaml"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bruba.yaml"
    path.write_text(BRUBA.read_text())
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require_systemd_analyze()  # apply verifies the units first
    return tmp_path / "root"


def unit_dir(root: Path) -> Path:
    return root / ".config/systemd/user"


def data_dir(root: Path) -> Path:
    return root / ".local/share/vigil/bruba"


def snapshot(directory: Path) -> dict[str, bytes | str]:
    """Every file (content) and link (target) under a directory."""
    found: dict[str, bytes | str] = {}
    for path in sorted(directory.rglob("*")):
        key = path.relative_to(directory).as_posix()
        if path.is_symlink():
            found[key] = os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def test_apply_installs_a_generation(vigil, config: Path, root: Path) -> None:
    result = vigil("apply", config, "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    assert os.readlink(data_dir(root) / "current") == "generations/1"
    units = sorted(p.name for p in unit_dir(root).iterdir() if p.is_file())
    assert "bruba-reminder-check.timer" in units and "bruba-failure@.service" in units
    wants = sorted(p.name for p in (unit_dir(root) / "timers.target.wants").iterdir())
    assert "bruba-reminder-check.timer" in wants and "bruba-coordinator.timer" in wants
    assert [p.name for p in (unit_dir(root) / "paths.target.wants").iterdir()] == [
        "bruba-coordinator.path"
    ]
    meta = json.loads((data_dir(root) / "generations/1/generation.json").read_text())
    assert meta["reason"] == "apply" and meta["changes"]["create"] > 30
    again = vigil("plan", config, "--root", root, "--check")
    assert again.exit_code == 0, again.stderr
    assert "No changes." in again.stderr


def test_editing_one_schedule_updates_exactly_one_unit(vigil, config: Path, root: Path) -> None:
    vigil("apply", config, "--root", root, "--yes")
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    result = vigil("plan", config, "--root", root, "--check")
    assert result.exit_code == 1
    updates = [line.split()[1] for line in result.stderr.splitlines() if "  update " in line]
    # The coordinator's spec carries each job's calendar (its heartbeat checks that jobs ran),
    # but no other unit changes, and only the timer restarts.
    assert updates == [
        "config.yaml",
        "specs/coordinator.json",
        "units/bruba-staleness-check.timer",
    ]
    assert "+OnCalendar=Mon *-*-* 10:30:00 America/New_York" in result.stdout
    assert "bruba-staleness-check.timer" in result.stderr and "10:30 EST" in result.stderr
    applied = vigil("apply", config, "--root", root, "--yes")
    assert "restarted: bruba-staleness-check.timer" in applied.stderr
    assert "  started:" not in applied.stderr


def test_removing_a_job_removes_its_units(vigil, config: Path, root: Path) -> None:
    vigil("apply", config, "--root", root, "--yes")
    text = config.read_text()
    start = text.index("  calendar-prep:")
    end = text.index("  morning-briefing:")
    config.write_text(text[:start] + text[end:].replace("calendar-prep: {cap: 2, priority: 7}", ""))
    result = vigil("apply", config, "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    assert not (unit_dir(root) / "bruba-calendar-prep.timer").exists()
    assert not (unit_dir(root) / "timers.target.wants/bruba-calendar-prep.timer").exists()
    assert not (data_dir(root) / "current/bin/bruba-calendar-prep").exists()
    assert "stopped: bruba-calendar-prep.service, bruba-calendar-prep.timer" in result.stderr


def test_rollback_restores_the_previous_generation(vigil, config: Path, root: Path) -> None:
    vigil("apply", config, "--root", root, "--yes")
    first = snapshot(unit_dir(root))
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    vigil("apply", config, "--root", root, "--yes")
    assert snapshot(unit_dir(root)) != first
    result = vigil("rollback", "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    assert snapshot(unit_dir(root)) == first
    history = vigil("history", "--root", root)
    lines = history.stdout.splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("*    3") and "rollback to 1" in lines[2]
    # rolling back again goes to the generation before the current one
    assert vigil("rollback", "2", "--root", root, "--yes").exit_code == 0
    assert b"10:30:00" in (unit_dir(root) / "bruba-staleness-check.timer").read_bytes()


def test_rollback_to_a_missing_generation_is_exit_2(vigil, config: Path, root: Path) -> None:
    vigil("apply", config, "--root", root, "--yes")
    result = vigil("rollback", "7", "--root", root, "--yes")
    assert result.exit_code == 2
    assert "no generation 7 (generations: 1)" in result.stderr


def test_hand_edit_shows_as_drift_and_apply_restores_it(vigil, config: Path, root: Path) -> None:
    vigil("apply", config, "--root", root, "--yes")
    unit = unit_dir(root) / "bruba-reminder-check.timer"
    generated = unit.read_text()
    unit.write_text(generated.replace("Persistent=true", "Persistent=false"))
    result = vigil("plan", config, "--root", root)
    assert "drift: units/bruba-reminder-check.timer was changed by hand" in result.stderr
    assert "-Persistent=false" in result.stdout
    vigil("apply", config, "--root", root, "--yes")
    assert unit.read_text() == generated


def test_apply_never_overwrites_a_unit_it_did_not_write(vigil, config: Path, root: Path) -> None:
    unit_dir(root).mkdir(parents=True)
    mine = unit_dir(root) / "bruba-reminder-check.timer"
    mine.write_text("[Timer]\nOnCalendar=daily\n")
    result = vigil("apply", config, "--root", root, "--yes")
    assert result.exit_code == 1
    assert "refusing to overwrite unit files vigil did not write" in result.stderr
    assert mine.read_text() == "[Timer]\nOnCalendar=daily\n"
    assert not data_dir(root).exists()


def test_a_unit_that_verify_rejects_leaves_everything_as_it_was(config: Path, root: Path) -> None:
    scope = Scope(root=root)
    run(prepare(config, scope))
    before = snapshot(root)
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    prepared = prepare(config, scope)
    assert prepared.tree is not None
    timer = prepared.tree["units/bruba-staleness-check.timer"]
    prepared.tree["units/bruba-staleness-check.timer"] = GeneratedFile(
        timer.content.replace(b"[Timer]\n", b"[Timer]\nOnCalender=daily\n"), timer.mode
    )
    with pytest.raises(Exception, match="apply failed at verify") as failure:
        run(prepared)
    assert "OnCalender" in str(failure.value) and "nothing was changed" in str(failure.value)
    assert snapshot(root) == before


def test_a_failure_after_switching_puts_the_previous_generation_back(
    config: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = Scope(root=root)
    run(prepare(config, scope))
    before = snapshot(root)
    config.write_text(config.read_text().replace('"0 10 * * 1"', '"30 10 * * 1"'))
    prepared = prepare(config, scope)

    # Unit files are already replaced when the `current` link moves; make that step fail.
    switch = Installation.switch

    def refuse_new(self: Installation, number: int | None) -> None:
        if number == 2:
            raise OSError("disk full")
        switch(self, number)

    monkeypatch.setattr(Installation, "switch", refuse_new)
    with pytest.raises(
        Exception, match="failed at switching the current generation: disk full"
    ) as failure:
        run(prepared)
    assert "generation 1 is active again" in str(failure.value)
    monkeypatch.undo()
    assert snapshot(root) == before


def test_uninstall_removes_what_vigil_wrote_and_nothing_else(
    vigil, config: Path, root: Path
) -> None:
    vigil("apply", config, "--root", root, "--yes")
    other = unit_dir(root) / "unrelated.service"
    other.write_text("[Service]\nExecStart=/bin/true\n")
    result = vigil("uninstall", config, "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    assert not data_dir(root).exists() or not any(data_dir(root).rglob("*.timer"))
    assert sorted(p.name for p in unit_dir(root).rglob("*") if p.is_file()) == ["unrelated.service"]


def test_apply_asks_unless_yes(vigil, config: Path, root: Path) -> None:
    result = vigil("apply", config, "--root", root)
    assert result.exit_code == 1
    assert "re-run with --yes" in result.stderr
    assert not data_dir(root).exists()


def test_apply_git_revision_restores_an_earlier_config(vigil, config: Path, root: Path) -> None:
    commit_two_revisions(config, '"0 10 * * 1"', '"30 10 * * 1"')
    vigil("apply", config, "--root", root, "--yes")
    timer = unit_dir(root) / "bruba-staleness-check.timer"
    assert b"10:30:00" in timer.read_bytes()
    result = vigil("apply", config, "--git", "HEAD~1", "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    assert b"Mon *-*-* 10:00:00" in timer.read_bytes()
    history = vigil("history", "--root", root).stdout.splitlines()
    assert "apply --git HEAD~1" in history[-1]
    assert vigil("apply", config, "--git", "nope", "--root", root, "--yes").exit_code == 1


def test_system_scope_installs_under_etc_and_var_lib(vigil, config: Path, root: Path) -> None:
    result = vigil("apply", config, "--system", "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    unit = root / "etc/systemd/system/bruba-reminder-check.service"
    assert "ExecStart=/var/lib/vigil/bruba/current/bin/bruba-reminder-check" in unit.read_text()
    assert os.readlink(root / "var/lib/vigil/bruba/current") == "generations/1"
    path_unit = (root / "etc/systemd/system/bruba-coordinator.path").read_text()
    assert "DirectoryNotEmpty=/var/lib/vigil/bruba/state/inbox" in path_unit
    assert (root / "etc/systemd/system/timers.target.wants/bruba-reminder-check.timer").is_symlink()


def test_the_same_config_from_git_changes_no_unit(vigil, config: Path, root: Path) -> None:
    """Applying HEAD after applying the same working-tree file only records the revision: no
    unit changes, so no timer restarts (a restarted unchanged timer can fire off-schedule)."""
    commit_two_revisions(config, '"0 10 * * 1"', '"30 10 * * 1"')
    assert vigil("apply", config, "--root", root, "--yes").exit_code == 0
    result = vigil("apply", config, "--git", "HEAD", "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    changed = [line for line in result.stderr.splitlines() if line.strip().startswith("update")]
    assert changed == []
    assert "restarted" not in result.stderr

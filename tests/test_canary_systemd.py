"""Canary applies against a real systemd user manager: the new generation is tried before it
goes live, a broken changed job leaves everything as it was, a job with side effects runs only
its `check:`, and Ctrl-C during a try leaves the old generation live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, apply_config

pytestmark = pytest.mark.systemd

CONFIG = """\
name: cn
state_dir: {state}
jobs:
  report:
    schedule: "0 0 1 1 *"
    run: "{report}"
  reset:
    description: Sends /reset to the agents (a side effect)
    schedule: "0 0 1 1 *"
    run: "echo reset >> {state}/resets; {reset}"
    check: "echo probing agents"
  cleanup:
    schedule: "0 0 1 1 *"
    run: "touch {state}/cleaned; {cleanup}"
    canary: skip
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""
CLI = "from compiler.cli.commands import main; main()"
FIELDS = {"report": "echo v1", "reset": "true", "cleanup": "true"}


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path):
    del vigil_manager  # the manager the config is installed into
    state = apply_config(vigil, tmp_path, "cn", CONFIG, **FIELDS)
    return tmp_path / "cn.yaml", state


def write(config: Path, state: Path, **changes: str) -> None:
    config.write_text(CONFIG.format(state=state, **{**FIELDS, **changes}))


def live(home: Path) -> dict[str, object]:
    """Everything a canary must leave alone: unit files, generations and the current link."""
    units = home / ".config/systemd/user"
    data = home / ".local/share/vigil/cn"
    return {
        "units": {p.name: p.read_bytes() for p in sorted(units.glob("cn-*"))},
        "generations": sorted(p.name for p in (data / "generations").iterdir()),
        "current": os.readlink(data / "current"),
        "tries": sorted(p.name for p in data.glob("tries/*")),
    }


def try_units(manager, stem: str) -> list[str]:
    """The try units of `stem` the manager has loaded (running or failed, not yet collected)."""
    shown = manager.systemctl("list-units", "--all", "--plain", "--no-legend", f"{stem}.try-*")
    return [line.split()[0] for line in shown.stdout.splitlines() if line.strip()]


def canary_in_a_try(manager, config: Path) -> subprocess.Popen[str]:
    """`vigil apply --canary` as a process of its own, once its try of `report` is running."""
    env = {**os.environ, **manager.env, "PYTHONPATH": str(ROOT)}
    apply = subprocess.Popen(
        [sys.executable, "-c", CLI, "apply", str(config), "--yes", "--canary"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if try_units(manager, "cn-report"):
            return apply
        time.sleep(0.1)
    apply.kill()
    raise AssertionError("the try never started: " + apply.communicate()[1])


def test_a_broken_changed_job_changes_nothing(vigil, installed, vigil_manager) -> None:
    config, state = installed
    home = Path(vigil_manager.env["HOME"])
    before = live(home)
    write(config, state, report="echo v2 is broken >&2; exit 3")
    plan_before = vigil("plan", config, "--check")

    applied = vigil("apply", config, "--yes", "--canary")
    assert applied.exit_code == 1, applied.stdout + applied.stderr
    assert "canary: try   report (run changed)" in applied.stderr
    assert "== try report: FAILED, exit status 1" in applied.stderr
    assert "  | v2 is broken" in applied.stderr
    assert "canary failed (report): generation 1 is still live; nothing was changed" in (
        applied.stderr
    )
    assert live(home) == before
    plan_after = vigil("plan", config, "--check")
    assert (plan_after.exit_code, plan_after.stdout, plan_after.stderr) == (
        plan_before.exit_code,
        plan_before.stdout,
        plan_before.stderr,
    )
    units = vigil_manager.systemctl("list-units", "--all", "--no-legend", "cn-*").stdout
    assert ".try." not in units


def test_side_effects_run_only_their_check_and_skip_is_skipped(
    vigil, installed, vigil_manager
) -> None:
    config, state = installed
    home = Path(vigil_manager.env["HOME"])
    write(config, state, report="echo v2", reset="echo v2", cleanup="echo v2")
    plan = vigil("plan", config, "--canary")
    assert "canary: try   report (run changed)" in plan.stderr
    assert "canary: check reset (run changed)" in plan.stderr
    assert "canary: skip  cleanup (run changed)" in plan.stderr

    applied = vigil("apply", config, "--yes", "--canary")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "canary: check of reset: passed" in applied.stderr
    assert "canary: report: passed" in applied.stderr
    assert "cleanup:" not in applied.stderr
    assert not (state / "resets").exists() and not (state / "cleaned").exists()
    assert live(home)["current"] == "generations/2"
    assert live(home)["tries"] == []
    ran = vigil("run", "report", "--wait", "--config", config)
    assert ran.exit_code == 0, ran.stderr


def test_release_canary_is_the_default_and_no_canary_overrides_it(vigil, installed) -> None:
    config, state = installed
    write(config, state, report="exit 4")
    text = config.read_text() + "release:\n  canary: true\n"
    config.write_text(text)
    refused = vigil("apply", config, "--yes")
    assert refused.exit_code == 1 and "canary failed (report)" in refused.stderr
    forced = vigil("apply", config, "--yes", "--no-canary")
    assert forced.exit_code == 0, forced.stderr


def test_ctrl_c_during_a_try_leaves_the_old_generation_live(installed, vigil_manager) -> None:
    config, state = installed
    home = Path(vigil_manager.env["HOME"])
    before = live(home)
    write(config, state, report="echo started; sleep 60")
    apply = canary_in_a_try(vigil_manager, config)
    apply.send_signal(signal.SIGINT)
    _, err = apply.communicate(timeout=60)
    assert apply.returncode != 0, err
    assert live(home) == before
    assert try_units(vigil_manager, "cn-report") == []


def test_a_try_that_times_out_fails_the_canary(vigil, installed, vigil_manager) -> None:
    config, state = installed
    home = Path(vigil_manager.env["HOME"])
    before = live(home)
    write(config, state, report="sleep 30")
    config.write_text(
        config.read_text().replace('    run: "sleep 30"', '    run: "sleep 30"\n    timeout: 1s')
    )
    applied = vigil("apply", config, "--yes", "--canary")
    assert applied.exit_code == 1, applied.stderr
    assert "FAILED, exit status 4, timeout" in applied.stderr
    assert live(home) == before

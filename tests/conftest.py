"""Shared fixtures: the repository layout and an in-process CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.cli.commands import app
from tests.systemd_manager import UserManager, clean_user_manager, skip_or_fail, user_manager

__all__ = ["clean_user_manager", "user_manager"]  # fixtures: a private systemd user manager

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CASES = ROOT / "tests" / "cases"


def fleet_hosts(config: Path) -> list[str | None]:
    """The hosts a config is compiled for: each of a fleet's `hosts`, or [None] without one."""
    from compiler.language.validate import load_config

    loaded = load_config(config, check_calendar=False).config
    return list(loaded.hosts) if loaded.fleet is not None and loaded.hosts else [None]


EXAMPLE_BUILDS = [(path, host) for path in EXAMPLES for host in fleet_hosts(path)]
"""Every example with each host it is compiled for (None: one machine)."""
EXAMPLE_BUILD_IDS = [f"{path.stem}-{host}" if host else path.stem for path, host in EXAMPLE_BUILDS]

# The long variants (hundreds of crash trials, thousands of fuzz examples) run when VIGIL_LONG=1;
# CI runs the quick ones. `sized(quick, long)` picks the figure for the current run.
LONG = os.environ.get("VIGIL_LONG", "") not in ("", "0")


def sized(quick: int, long: int) -> int:
    return long if LONG else quick


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def vigil() -> Callable[..., Result]:
    """Run the CLI in-process, with stdout and stderr kept apart."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


def require_systemd_analyze() -> None:
    """Skip where systemd-analyze is missing; under CI that is a failure, not a skip."""
    if not shutil.which("systemd-analyze"):
        skip_or_fail("systemd-analyze not available")


def git(directory: Path, *args: str) -> str:
    """Run git in `directory` (an identity is set so commits work anywhere)."""
    return subprocess.run(
        ["git", "-C", str(directory), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def commit_two_revisions(config: Path, old: str, new: str) -> None:
    """A git repo around `config` whose HEAD~1 has `old` and HEAD has `new` in place of it."""
    git(config.parent, "init", "-q")
    git(config.parent, "add", config.name)
    git(config.parent, "commit", "-qm", "first")
    config.write_text(config.read_text().replace(old, new))
    git(config.parent, "commit", "-qam", "second")


def apply_config(vigil, tmp_path: Path, name: str, template: str, **fields: object) -> Path:
    """`template` (a config with a `{state}` field, and `fields`) written to NAME.yaml and
    installed with `vigil apply` in this process; returns the state directory."""
    state = tmp_path / "state"
    config = tmp_path / f"{name}.yaml"
    config.write_text(template.format(state=state, **fields))
    result = vigil("apply", config, "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    return state


def vigil_in_namespace(
    manager: UserManager, cwd: Path, *args: str | Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`vigil ARGS` as a subprocess inside the manager's mount namespace, from `cwd`: there
    journalctl reads the manager's private journal (`vigil logs`)."""
    return manager.in_namespace(
        "env",
        "-C",
        str(cwd),
        f"PYTHONPATH={ROOT}",
        sys.executable,
        "-c",
        "from compiler.cli.commands import main; main()",
        *map(str, args),
        check=check,
    )


@pytest.fixture
def vigil_manager(clean_user_manager, monkeypatch: pytest.MonkeyPatch):
    """The real user manager, with vigil in this process talking to it (its HOME, runtime dir
    and bus), and no generations or state left from earlier tests in that shared home."""
    for key, value in clean_user_manager.env.items():
        monkeypatch.setenv(key, value)
    home = Path(clean_user_manager.env["HOME"])
    for leftover in (home / ".local/share/vigil", home / ".local/state/vigil"):
        shutil.rmtree(leftover, ignore_errors=True)
    return clean_user_manager

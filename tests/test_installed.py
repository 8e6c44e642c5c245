"""vigil as users run it: the wheel built from this checkout, installed on its own, its console
script run from a directory outside the checkout. Every command that reads package data or
templates runs, so a file left out of the wheel fails here, not on a user's machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runner_support import ROOT

Vigil = Callable[..., subprocess.CompletedProcess[str]]
PACKAGES = ("compiler", "runner")
PIP = (sys.executable, "-m", "pip")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a clean copy: an egg-info left in the checkout by an earlier build would
    bring files the package data declarations leave out."""
    source = tmp_path_factory.mktemp("source")
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    [built] = dist.glob("vigil-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel alone in a directory of its own (its dependencies come from this environment)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [*PIP, "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def vigil(installed: Path, tmp_path: Path) -> Vigil:
    """`vigil ARGS` through the installed console script, from an empty directory."""
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed), "HOME": str(tmp_path / "home")}

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed / "bin" / "vigil"), *map(str, args)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def source_files() -> set[str]:
    """The packages' files as the checkout has them (git's list when there is one)."""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "--", *PACKAGES],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {path for path in listed if (ROOT / path).exists()}
    return {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_file_of_the_packages(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
    absent = sorted(source_files() - members)
    assert not absent, f"missing from the wheel: {absent}"
    assert "compiler/generate/templates/starter.yaml" in members


def test_the_installed_code_is_what_runs(vigil: Vigil, installed: Path) -> None:
    result = vigil("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vigil ")
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import compiler, runner; print(compiler.__file__, runner.__file__)",
        ],
        cwd=installed.parent,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(str(installed)) for path in probe.stdout.split())


def test_the_walk_through_from_init(vigil: Vigil, tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = vigil("init", "--name", "agent", "--timezone", "Europe/Berlin")
    assert result.returncode == 0, result.stderr
    config = work / "vigil.yaml"
    assert "name: agent" in config.read_text()
    assert "Europe/Berlin" in config.read_text()
    assert json.loads((work / "vigil.schema.json").read_text())["title"]
    assert (work / ".git").is_dir()

    validated = vigil("validate", "vigil.yaml")
    assert validated.returncode == 0, validated.stderr
    assert "warning" not in validated.stderr

    compiled = vigil("compile", "vigil.yaml", "--out", "build")
    assert compiled.returncode == 0, compiled.stderr
    assert (work / "build" / "units" / "agent-coordinator.path").is_file()
    assert (work / "build" / "manifest.json").is_file()

    planned = vigil("plan", "vigil.yaml", "--root", "root")
    assert planned.returncode == 0, planned.stderr
    assert "create" in planned.stdout + planned.stderr

    applied = vigil("apply", "vigil.yaml", "--root", "root", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert list((work / "root").rglob("agent-coordinator.service"))


def test_the_reference_workload_compiles(vigil: Vigil, tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "bruba.yaml", tmp_path / "work" / "bruba.yaml")
    result = vigil("compile", "bruba.yaml", "--out", "build")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "work" / "build" / "units" / "bruba-reminder-check.timer").is_file()
    validated = vigil("validate", "bruba.yaml")
    assert validated.returncode == 0 and "warning" not in validated.stderr, validated.stderr


def test_schema_is_the_committed_one(vigil: Vigil) -> None:
    result = vigil("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schemas" / "vigil.schema.json").read_text()
    finding = vigil("schema", "--finding")
    assert finding.returncode == 0, finding.stderr
    assert json.loads(finding.stdout)


def test_explain(vigil: Vigil) -> None:
    result = vigil("explain", "0 9 1 * mon", "--tz", "Europe/Berlin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("OnCalendar=") == 2  # cron ORs day-of-month and day-of-week

"""The lock, the ranges and the README's commands agree with each other."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.latest import LOCK, ROOT, canonical, differences, locked_versions

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    wanted += PYPROJECT["build-system"]["requires"]
    return [Requirement(line) for line in wanted]


def test_every_declared_requirement_is_locked_within_its_range() -> None:
    locked = locked_versions()
    for requirement in declared():
        name = canonical(requirement.name)
        assert name in locked, f"{name} is not in {LOCK.name}: refresh the lock (README)"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside {requirement}: refresh the lock (README)"
        )


def test_every_locked_version_carries_hashes() -> None:
    hashes: dict[str, int] = {}
    current = ""
    for line in LOCK.read_text().splitlines():
        if pin := re.match(r"([A-Za-z0-9][\w.-]*)==", line):
            current = canonical(pin.group(1))
            hashes[current] = 0
        elif re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            hashes[current] += 1
    assert hashes.keys() == locked_versions().keys()
    assert all(hashes.values()), [name for name, count in hashes.items() if not count]


def test_the_packages_a_user_install_needs_for_the_example_are_not_extras() -> None:
    """examples/bruba.yaml has prompt jobs and an apprise (Signal) channel."""
    core = {canonical(Requirement(line).name) for line in PYPROJECT["project"]["dependencies"]}
    assert {"anthropic", "apprise"} <= core


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    [command] = [line for line in ci.splitlines() if line.startswith("python3 -m venv")]
    assert command in README
    assert "--require-hashes -r requirements/test.txt" in command
    assert command.endswith(".venv/bin/python -m pytest -q")


def test_differences_name_what_moved() -> None:
    lines = differences(
        {"pyyaml": "6.0.3", "jinja2": "3.1.6"}, {"pyyaml": "6.0.4", "jinja2": "3.1.6"}
    )
    assert lines == ["  pyyaml: 6.0.3 -> 6.0.4"]


def test_pins_for_other_platforms_are_not_reported_as_newer() -> None:
    here = locked_versions(here_only=True)
    assert "colorama" in locked_versions() and "colorama" not in here  # sys_platform == 'win32'
    assert differences(here, dict(here)) == []

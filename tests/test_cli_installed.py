"""The inspecting commands read the installed generation a config file was applied from: found
by the file's content wherever it lives now, or by its path when it changed since (then the
installed generation is shown, with a note). A file never applied is validated and shown as
written, with a note; a file that cannot be read is a bad argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.cli.commands import app
from compiler.cli.overview import COMMANDS, top_help
from compiler.language.validate import load_config
from compiler.operate.cost import estimate
from compiler.operate.setup import ConfigView, find_installed
from tests.conftest import ROOT

MINIMAL = (ROOT / "examples/minimal.yaml").read_text()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def applied(vigil, home: Path, text: str, name: str = "vigil.yaml") -> Path:
    config = home / name
    config.write_text(text)
    result = vigil("apply", config, "--root", home, "--yes")
    assert result.exit_code == 0, result.stderr
    return config


def names(stdout: str) -> list[str]:
    return [row["name"] for row in json.loads(stdout)]


def test_an_installed_config_is_read_from_its_generation(vigil, home: Path) -> None:
    config = applied(vigil, home, MINIMAL)
    found = find_installed(config, system=False)
    assert found is not None and not found.changed and found.generation == 1
    result = vigil("status", "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    assert names(result.stdout) == ["hello", "coordinator"]
    assert result.stderr == ""


def test_a_moved_copy_is_found_by_its_content(vigil, home: Path) -> None:
    config = applied(vigil, home, MINIMAL)
    moved = home / "elsewhere.yaml"
    moved.write_bytes(config.read_bytes())
    config.unlink()
    found = find_installed(moved, system=False)
    assert found is not None and not found.changed


def test_a_file_changed_since_apply_shows_what_is_installed(vigil, home: Path) -> None:
    config = applied(vigil, home, MINIMAL)
    config.write_text(
        MINIMAL.replace("jobs:\n", "jobs:\n  added:\n    schedule: '@daily'\n    run: 'true'\n")
    )
    result = vigil("status", "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    assert names(result.stdout) == ["hello", "coordinator"]  # what runs, not the edit
    assert f"{config} has changed since it was applied" in result.stderr
    assert f"`vigil plan {config}`" in result.stderr
    # cost estimates the file as it is: the edit's cost before it is applied
    costs = json.loads(vigil("cost", config, "--json").stdout)
    assert [row["job"] for row in costs] == ["added", "hello"]


def test_a_config_never_applied_is_validated_and_said_so(vigil, home: Path) -> None:
    config = home / "vigil.yaml"
    config.write_text(MINIMAL)
    result = vigil("status", "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    assert names(result.stdout) == ["hello", "coordinator"]
    assert f"demo is not installed (--user): shown from {config} as written" in result.stderr


def test_a_missing_config_is_a_bad_argument_naming_it(vigil, home: Path) -> None:
    for command in (["status", "--config"], ["inbox", "-c"], ["cost"]):
        result = vigil(*command, home / "nope.yaml")
        assert result.exit_code == 2
        assert f"{home / 'nope.yaml'}: cannot read the config: No such file" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_invalid_config_not_installed_says_where(vigil, home: Path) -> None:
    config = home / "vigil.yaml"
    config.write_text(MINIMAL.replace("run: ", "runn: "))
    result = vigil("watches", "--config", config)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{config}:")


def test_cost_from_the_installed_specs_equals_the_estimate_of_the_file(vigil, home: Path) -> None:
    text = (ROOT / "examples/bruba.yaml").read_text()
    config = applied(vigil, home, text)
    found = find_installed(config, system=False)
    assert found is not None and not found.changed
    validated = ConfigView.of_config(load_config(config).config)
    assert estimate(found.setup, warn=print) == estimate(validated, warn=print)
    assert found.setup == validated


def test_the_typer_app_runs_the_inspecting_commands_through_their_parsers() -> None:
    runner = CliRunner()
    helped = runner.invoke(app, ["status", "--help"])
    assert helped.exit_code == 0 and "usage: vigil status" in helped.stdout
    wrong = runner.invoke(app, ["inbox", "--bogus"])
    assert wrong.exit_code == 2 and "unrecognized arguments: --bogus" in wrong.stderr


def test_help_lists_every_command_of_the_app_with_its_line() -> None:
    listed = {command.name for command in app.registered_commands}
    listed |= {group.name for group in app.registered_groups}
    assert listed == set(COMMANDS)
    assert [c.name for c in app.registered_commands] == [
        n for n in COMMANDS if n in listed - {"watch"}
    ]
    typer_help = CliRunner().invoke(app, ["--help"]).stdout
    for name, summary in COMMANDS.items():
        assert f"  {name:<9}  {summary}" in top_help()
        assert f"  {name:<9}  {summary}" in typer_help


def test_a_generation_from_an_older_vigil_is_read_through_the_file(vigil, home: Path) -> None:
    """A manifest without an inventory (written before it existed): the file is validated."""
    config = applied(vigil, home, MINIMAL)
    manifest = home / ".local/share/vigil/demo/generations/1/manifest.json"
    data = json.loads(manifest.read_text())
    del data["inventory"]
    manifest.write_text(json.dumps(data))
    assert find_installed(config, system=False) is None
    result = vigil("status", "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    assert names(result.stdout) == ["hello", "coordinator"]
    assert "not from demo's generation 1 (applied from another file, or by an older vigil" in (
        result.stderr
    )

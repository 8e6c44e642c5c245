"""`vigil init`: a starter config that validates, its schema beside it, a git repository, and
refusals (exit 2) for an existing file, a bad name or an unknown timezone."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from compiler.language import schemas
from tests.conftest import git, require_systemd_analyze


def test_init_writes_a_config_that_validates_its_schema_and_a_git_repo(
    vigil, tmp_path: Path
) -> None:
    require_systemd_analyze()
    config = tmp_path / "agent" / "vigil.yaml"
    config.parent.mkdir()
    result = vigil("init", config, "--name", "homebot", "--timezone", "Europe/Berlin")
    assert result.exit_code == 0, result.stderr
    assert f"wrote {config}" in result.stderr
    assert f"initialized a git repository in {config.parent}" in result.stderr
    assert f"next: vigil validate {config} && vigil plan {config}" in result.stderr

    text = config.read_text()
    assert text.startswith(f"# yaml-language-server: $schema={schemas.CONFIG_SCHEMA_FILE}\n")
    data = yaml.safe_load(text)
    assert (data["name"], data["timezone"]) == ("homebot", "Europe/Berlin")

    schema_file = config.parent / schemas.CONFIG_SCHEMA_FILE
    assert schema_file.read_text() == schemas.render_all()[schemas.CONFIG_SCHEMA_FILE]
    jsonschema.validate(data, json.loads(schema_file.read_text()))

    checked = vigil("validate", config)
    assert checked.exit_code == 0, checked.stderr
    assert "disk-space" in checked.stdout

    assert (config.parent / ".git").is_dir()
    assert git(config.parent, "rev-parse", "--show-toplevel") == str(config.parent.resolve())


def test_init_inside_a_git_repository_makes_no_new_one(vigil, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    config = tmp_path / "config" / "vigil.yaml"
    config.parent.mkdir()
    result = vigil("init", config)
    assert result.exit_code == 0, result.stderr
    assert "is already in a git repository: commit vigil.yaml there" in result.stderr
    assert not (config.parent / ".git").exists()
    assert yaml.safe_load(config.read_text())["name"] == "agent"  # the default name


def test_init_never_overwrites(vigil, tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text("name: mine\n")
    result = vigil("init", config)
    assert result.exit_code == 2
    assert "already exists; vigil init never overwrites a config" in result.stderr
    assert config.read_text() == "name: mine\n"
    assert not (tmp_path / schemas.CONFIG_SCHEMA_FILE).exists()
    assert not (tmp_path / ".git").exists()


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--name", "my agent", "invalid name 'my agent'"),
        ("--name", "../up", "invalid name '../up'"),
        ("--timezone", "Mars/Olympus_Mons", "unknown timezone 'Mars/Olympus_Mons'"),
    ],
)
def test_init_rejects_a_bad_name_or_timezone(
    vigil, tmp_path: Path, option: str, value: str, says: str
) -> None:
    config = tmp_path / "vigil.yaml"
    result = vigil("init", config, option, value)
    assert result.exit_code == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []

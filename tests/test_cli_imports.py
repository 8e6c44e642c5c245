"""What `vigil --help` and `vigil --version` load: the CLI framework and vigil's command table,
nothing that validates or renders a config, and not rich's help renderer (rich.markdown and
markdown-it cost more than all of typer). Start-up is most of what these commands take."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("pydantic", "jinja2", "jsonschema", "yaml", "anthropic", "apprise", "runner")
RICH_HELP = ("rich.markdown", "markdown_it", "typer.rich_utils")


def imported(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "compiler.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, result.stderr
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_load_no_config_machinery(args: tuple[str, ...]) -> None:
    modules = imported(*args)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in RICH_HELP)
    assert heavy == [], heavy
    assert "typer" in modules  # the check reads the real import list

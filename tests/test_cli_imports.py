"""What `vigil --help` and `vigil --version` load: the CLI framework and vigil's command table,
nothing that validates or renders a config, and not rich's help renderer (rich.markdown and
markdown-it cost more than all of typer). Start-up is most of what these commands take."""

from __future__ import annotations

import pytest

from tests.test_runner_imports import imported_modules

HEAVY = ("pydantic", "jinja2", "jsonschema", "yaml", "anthropic", "apprise", "runner")
RICH_HELP = ("rich.markdown", "markdown_it", "typer.rich_utils")


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_load_no_config_machinery(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args, module="compiler.cli")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in RICH_HELP)
    assert heavy == [], heavy
    assert "typer" in modules  # the check reads the real import list

"""What the inspecting commands, `vigil --help` and `vigil --version` load: the standard library
and vigil's own readers of an installed generation, not typer (whose parameters build pydantic
adapters), nothing that validates or renders a config. Start-up is most of what these commands
take (cli/main.py). The commands that check a config (validate, compile, plan) load what
validates and renders it, and still not typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.runner_support import runner_env
from tests.test_runner_imports import imported_modules

CLI_FRAMEWORK = ("typer", "click")
HEAVY = ("pydantic", "jinja2", "jsonschema", "yaml", "anthropic", "apprise", "typer", "click")
RICH_HELP = ("rich.markdown", "markdown_it", "typer.rich_utils")

INSPECTING = [
    ("status",),
    ("status", "reminder-check", "--json"),
    ("logs", "reminder-check", "-n", "1"),
    ("history",),
    ("history", "reminder-check"),
    ("watches",),
    ("inbox",),
    ("inbox", "--silenced"),
    ("silence", "list"),
    ("outbox",),
    ("state",),
    ("cost", "vigil.yaml"),
]


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m in RICH_HELP)


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()])
def test_help_and_version_load_no_config_machinery(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args, module="compiler.cli")
    assert heavy(modules) == []
    assert "compiler.cli.main" in modules  # the check reads the real import list


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference workload installed (apply --root) into a home directory of its own,
    applied from home/vigil.yaml, with a state directory holding a run and a nag item."""
    home = tmp_path_factory.mktemp("home")
    text = (ROOT / "examples/bruba.yaml").read_text()
    (home / "vigil.yaml").write_text(text)
    applied = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "apply", "vigil.yaml", "--root", home, "--yes"],
        cwd=home,
        env=runner_env(HOME=str(home)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    return home


@pytest.mark.parametrize("args", INSPECTING, ids=" ".join)
def test_inspecting_an_installed_config_loads_no_config_machinery(
    home: Path, args: tuple[str, ...]
) -> None:
    config = [] if args[0] == "cost" else ["--config", str(home / "vigil.yaml")]
    if args == ("history",):
        config = []
    where = [str(home / arg) if arg == "vigil.yaml" else arg for arg in args]
    modules = imported_modules(*where, *config, module="compiler.cli", env={"HOME": str(home)})
    assert heavy(modules) == []
    assert "compiler.cli.inspect" in modules


def test_the_import_check_sees_a_config_that_is_not_installed(tmp_path: Path) -> None:
    """The same command on a file never applied validates it: the check would see that."""
    (tmp_path / "vigil.yaml").write_text((ROOT / "examples/minimal.yaml").read_text())
    modules = imported_modules(
        "state", "--config", tmp_path / "vigil.yaml", module="compiler.cli",
        env={"HOME": str(tmp_path)},
    )  # fmt: skip
    assert "pydantic" in heavy(modules)


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "examples/minimal.yaml"),
        ("validate", "examples/minimal.yaml", "examples/bruba.yaml", "--quiet"),
        ("compile", "examples/minimal.yaml", "--out", "{tmp}/out"),
        ("plan", "examples/bruba.yaml", "--root", "{tmp}/root", "--check"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_checking_a_config_loads_no_cli_framework(tmp_path: Path, args: tuple[str, ...]) -> None:
    where = [arg.format(tmp=tmp_path) for arg in args]
    modules = imported_modules(*where, module="compiler.cli", env={"HOME": str(tmp_path)})
    assert sorted(m for m in modules if m.split(".")[0] in CLI_FRAMEWORK) == []
    assert {"compiler.cli.checking", "pydantic", "yaml"} <= modules  # it did check the config


def test_a_usage_error_of_compile_loads_nothing_heavy() -> None:
    modules = imported_modules("compile", "examples/minimal.yaml", module="compiler.cli")
    assert heavy(modules) == []
    assert "compiler.cli.checking" in modules


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """`vigil --help | head -1`: the pipe closes before vigil writes; vigil says nothing more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from compiler.cli.main import main; main()", "--help"],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""

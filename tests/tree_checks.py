"""What systemd and sh read back from a compiled tree; shared by the fuzz and injection tests.

Unit files are read the way systemd 252 reads them (src/shared/conf-parser.c): lines end at
"\\n"; a line whose first non-blank character is '#' or ';' is a comment; any other line ending
in an unescaped backslash is joined with the next one; keys and values are stripped of
whitespace; values then go through `%` specifier expansion.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing

from compiler.cli.commands import app
from compiler.generate.render import GeneratedFile, Tree
from compiler.generate.verify import verify_tree
from compiler.language.validate import load_config
from runner.contract import RUNNER_ENTRY, rollback_unit
from runner.coordinator import load_spec as load_coordinator_spec
from runner.spec import load_failure_spec, load_job_spec


@pytest.fixture
def one_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """typer builds the click command again on every CliRunner.invoke (~50 ms); tests that
    run the CLI hundreds of times build it once."""
    command = typer.main.get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)


HOME = "/HOME"  # what %h stands for once expanded
INSTANCE = "<instance>"  # %i
_WHITESPACE = " \t\n\r"
# Directives whose value systemd splits into words (quotes group words, backslashes escape).
WORD_LISTS = frozenset(
    {
        "ExecStart",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "InaccessiblePaths",
        "ExecPaths",
        "NoExecPaths",
        "BindPaths",
        "BindReadOnlyPaths",
        "TemporaryFileSystem",
        "WantedBy",
        "Environment",
    }
)

Directive = tuple[str, str, str]  # (section, key, value as written)


def read_unit(text: str) -> list[Directive]:
    """Every directive of a unit file; fails on anything systemd would read differently from
    what a template meant: joined lines, stray text, a directive outside a section."""
    assert "\x00" not in text and "\r" not in text, "NUL or CR in a unit file"
    directives: list[Directive] = []
    section = ""
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_WHITESPACE)
        if not line or line[0] in "#;":
            continue
        assert not _continues(line), f"line {number} joins the next one: {raw!r}"
        if line.startswith("["):
            assert line.endswith("]"), f"line {number}: bad section header {raw!r}"
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        assert equals and section, f"line {number} is not a directive: {raw!r}"
        assert key.strip(_WHITESPACE).isalnum(), f"line {number}: odd key {key!r}"
        directives.append((section, key.strip(_WHITESPACE), value.strip(_WHITESPACE)))
    return directives


def _continues(line: str) -> bool:
    escaped = False
    for char in line:
        escaped = not escaped if char == "\\" else False
    return escaped


def expand(value: str, unit: str) -> str:
    """`value` as systemd expands it, for the specifiers the templates use (%h, %n, %i, %%).
    Any other specifier means a config value reached the unit unescaped."""
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char != "%":
            out.append(char)
            index += 1
            continue
        specifier = value[index + 1 : index + 2]
        replacement = {"%": "%", "h": HOME, "n": f"<{unit}>", "i": INSTANCE}.get(specifier)
        assert replacement is not None, f"{unit}: unexpected specifier %{specifier} in {value!r}"
        out.append(replacement)
        index += 2
    return "".join(out)


def words(value: str) -> list[str]:
    """A word list as systemd splits it (close enough for vigil's values: quotes, backslashes)."""
    return shlex.split(value, posix=True)


def read_values(unit: str, text: str) -> list[tuple[str, str, str | list[str]]]:
    """Directives with values expanded, word lists split: what systemd ends up using."""
    out: list[tuple[str, str, str | list[str]]] = []
    for section, key, value in read_unit(text):
        expanded = expand(value, unit)
        out.append((section, key, words(expanded) if key in WORD_LISTS else expanded))
    return out


# --- a whole compiled tree ------------------------------------------------------------------


def read_tree(out: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def stub_python(directory: Path) -> Path:
    """An "interpreter" that prints its argv NUL-separated: what a runner script execs."""
    stub = directory / "stub python"
    stub.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
    stub.chmod(0o755)
    return stub


def script_argv(script: Path, *args: str) -> list[str]:
    """Run a runner script as systemd would (by path) and return the argv its python got."""
    result = subprocess.run([str(script), *args], capture_output=True, timeout=30, check=True)
    return result.stdout.decode().split("\0")[:-1]


def check_tree(out: Path, source: Path, *, stub: Path | None = None) -> dict[str, Any]:
    """Every invariant of a compiled tree that holds for any valid config; returns the manifest.

    With `stub` (the tree was compiled with --python STUB), every runner script is run too.
    """
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = read_tree(out)
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for relative, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256(files[relative]).hexdigest(), relative
        assert entry["mode"] == f"{stat.S_IMODE((out / relative).stat().st_mode):04o}", relative
    assert files["config.yaml"] == source.read_bytes()
    _check_units(files)
    _check_scripts(out, files, manifest, stub)
    _check_specs(out, source, files)
    tree: Tree = {
        relative: GeneratedFile(content, int(manifest["files"][relative]["mode"], 8))
        for relative, content in files.items()
        if relative != "manifest.json"
    }
    problems = verify_tree(tree, manifest["name"], system=manifest["scope"] == "system")
    assert problems == [], problems
    return manifest


def _check_units(files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        if relative.startswith("units/"):
            read_values(relative.removeprefix("units/"), content.decode("utf-8"))


def _check_scripts(
    out: Path, files: dict[str, bytes], manifest: dict[str, Any], stub: Path | None
) -> None:
    for relative, content in files.items():
        if not relative.startswith("bin/"):
            continue
        script = out / relative
        syntax = subprocess.run(["sh", "-n", str(script)], capture_output=True, timeout=30)
        assert syntax.returncode == 0, syntax.stderr
        text = content.decode("utf-8")
        last = shlex.split(text[text.index("\nexec ") + 1 :])  # a quoted path may span lines
        if relative == f"bin/{rollback_unit(manifest['name'])}":
            _check_rollback_script(script, last, manifest, stub)
            continue
        assert last[:5] == ["exec", manifest["python"], "-I", "-c", RUNNER_ENTRY], last
        kind, spec = last[5], last[6].removeprefix("${0%/bin/*}/")
        assert last[6:] == ["${0%/bin/*}/" + spec, "$@"] and spec in files, last
        if stub is not None:
            argv = script_argv(script)
            assert argv == ["-I", "-c", RUNNER_ENTRY, kind, str(out / spec)], argv


def _check_rollback_script(
    script: Path, last: list[str], manifest: dict[str, Any], stub: Path | None
) -> None:
    """The automatic rollback runs `vigil rollback N --auto` for this config and scope."""
    scope = ["--system"] if manifest["scope"] == "system" else []
    expected = ["rollback", "$1", "--auto", "--name", manifest["name"], *scope, "--yes"]
    assert last == ["exec", manifest["python"], "-I", "-m", "compiler.cli", *expected], last
    if stub is not None:
        argv = script_argv(script, "6")
        assert argv == ["-I", "-m", "compiler.cli", *(a.replace("$1", "6") for a in expected)]


def _check_specs(out: Path, source: Path, files: dict[str, bytes]) -> None:
    """The runner's own readers accept every spec, and job specs say what the config says."""
    config = load_config(source, check_calendar=False).config
    for relative in files:
        if not relative.startswith("specs/"):
            continue
        path = str(out / relative)
        kind = json.loads(files[relative])["kind"]
        if kind == "coordinator":
            assert (
                load_coordinator_spec(path)["channels"]
                == config.model_dump(mode="json", by_alias=True)["channels"]
            )
        elif kind == "failure":
            load_failure_spec(path)
        elif kind == "job":
            spec = load_job_spec(path)
            job = config.jobs[spec.job]
            if isinstance(job.run, str):
                assert spec.argv == ["/bin/sh", "-c", job.run]
            else:
                assert spec.argv == job.run
            assert spec.environment == job.environment
            if job.working_directory is not None:
                assert spec.working_directory == os.path.expanduser(job.working_directory)
            assert (spec.llm.prompt if spec.llm else None) == job.prompt
        elif kind == "forward":
            jobs = json.loads(files[relative])["jobs"]
            assert set(jobs) <= set(config.jobs), relative
        elif kind == "reply":
            reply = json.loads(files[relative])
            assert reply["source"] in config.replies, relative
            assert reply["source_kind"] == config.replies[reply["source"]].kind, relative
        else:
            assert kind == "watch", relative

"""Config text cannot inject into what vigil generates.

Every field whose text reaches a generated file gets each hostile character class (CI a
representative subset, VIGIL_LONG=1 all of them). Either
`vigil compile` rejects it (exit 2, an issue naming the field, nothing written), or the files
carry it so that systemd, sh and the runner read back exactly the original value: each unit is
read the way systemd reads it (tests/tree_checks.py) and compared with the same config holding
a harmless marker in that field, specs are compared as JSON, runner scripts are run. Per hostile
value, one config with it in every field that took it is verified by `systemd-analyze verify`.
Then the runner runs real jobs: an argv reaches the program without a shell, a shell string
reaches /bin/sh byte for byte, environment values and the working directory arrive intact.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.errors import ConfigError
from compiler.language.loader import format_path, load_text
from compiler.language.validate import validate_document
from tests.conftest import LONG, Result, require_systemd_analyze
from tests.runner_support import runner_env
from tests.tree_checks import check_tree, one_command, read_tree, read_values, stub_python

pytestmark = pytest.mark.usefixtures(one_command.__name__)

MARK = "mQm"  # stands where the field's value lands; replaced by the hostile text to compare

HOSTILE = {
    "newline": "a\nb",
    "CR": "a\rb",
    "CRLF": "a\r\nb",
    "percent": "100%",
    "%n": "%n",
    "%h": "%h",
    "%i": "%i",
    "%%": "%%",
    "double quote": 'say "hi"',
    "single quote": "it's",
    "dollar": "$HOME $PATH",
    "backtick": "`id`",
    "backslash": "a\\b",
    "trailing backslash": "a\\",
    "semicolon": "a; rm -rf ~",
    "and": "true && false",
    "substitution": "$(touch /tmp/vigil-pwned)",
    "NUL": "a\x00b",
    "escape": "\x1b[31mred",
    "DEL": "a\x7f",
    "C1": "a\x9bb",
    "NEL": "a\x85b",
    "line separator": "a\u2028b",
    "tab": "a\tb",
    "BOM": "\ufeffa",
    "trailing space": "a ",
    "long": "x" * 5000,
    "huge": "x" * (2**20 + 1),  # past the longest line systemd reads
    "unicode": "é✓😀",
    "braces": "{ }",
    "equals": "a=b",
    "hash": "# a",
    "new section": "\n[Service]\nExecStartPre=/bin/sh -c 'touch /tmp/vigil-pwned'",
    "continuation": "\\\nExecStartPre=/bin/true",
    "dot dot": "../..",
}

# CI tries one of each kind; VIGIL_LONG=1 all of them, "huge" included (1 MiB values make the
# compiler's per-character checks and a regex compile take seconds).
QUICK = ["newline", "CR", "percent", "%n", "%h", "double quote", "single quote", "dollar"]
QUICK += ["backtick", "backslash", "trailing backslash", "semicolon", "substitution", "NUL"]
QUICK += ["C1", "line separator", "trailing space", "long", "unicode", "new section"]
QUICK += ["continuation", "dot dot"]
VALUES = HOSTILE if LONG else {name: HOSTILE[name] for name in QUICK}

BASE: dict[str, Any] = {
    "name": "demo",
    "state_dir": "/tmp/vigil-injection/state",
    "secrets": {"token": "~/.config/vigil/token"},
    "llm": {"api_key": "token"},
    "jobs": {
        "shell": {
            "description": "a shell job",
            "schedule": "0 3 * * *",
            "run": "echo hi",
            "environment": {"VAR": "value"},
            "working_directory": "/tmp",
            "secrets": ["token"],
            "sandbox": {"writable": ["/tmp/w"]},
        },
        "argv": {"schedule": "0 4 * * *", "run": ["/bin/echo", "hi"], "prompt": "Report it."},
    },
    "watches": {
        "late": {
            "description": "late watch",
            "deadline": {"at": "0 5 * * *", "job": "shell"},
            "message": "late: {evidence}",
        },
        "stamp": {"deadline": {"at": "0 6 * * *", "file": "/tmp/stamp"}},
        "result": {"file": {"path": "/tmp/{key}.json", "within": "15m"}, "handoff": "agent"},
        "mail": {"match": {"source": "shell", "any": [{"field": "subject", "regex": "urgent"}]}},
    },
    "nag": {"overdue": {"source": "shell", "once_per": "1d", "message": "{title} is overdue"}},
    "channels": {
        "sink": {"file": "/tmp/out.jsonl"},
        "agent": {"command": ["agent", "--message", "{message}"]},
        "phone": {"apprise": "json://localhost/x"},
    },
    "coordinator": {"deliver_to": ["sink"], "message": {"title": "{count} new"}},
}

# Fields whose value lands in generated files: (path, value with MARK where hostile text goes).
FIELDS: dict[str, tuple[tuple[str | int, ...], str]] = {
    "config name": (("name",), MARK),
    "job description": (("jobs", "shell", "description"), "a shell job " + MARK),
    "watch description": (("watches", "late", "description"), "late " + MARK),
    "run (shell)": (("jobs", "shell", "run"), "echo " + MARK),
    "run (program)": (("jobs", "argv", "run", 0), "/bin/" + MARK),
    "run (argument)": (("jobs", "argv", "run", 1), MARK),
    "environment value": (("jobs", "shell", "environment", "VAR"), MARK),
    "working_directory": (("jobs", "shell", "working_directory"), "/tmp/" + MARK),
    "state_dir": (("state_dir",), "/tmp/" + MARK),
    "secret path": (("secrets", "token"), "~/" + MARK),
    "channel file": (("channels", "sink", "file"), "/tmp/" + MARK + "/out.jsonl"),
    "command channel argument": (("channels", "agent", "command", 2), "{message}" + MARK),
    "apprise URL": (("channels", "phone", "apprise"), "json://localhost/" + MARK),
    "prompt": (("jobs", "argv", "prompt"), "Report " + MARK),
    "model": (("llm", "model"), MARK),
    "base_url": (("llm", "base_url"), "http://localhost/" + MARK),
    "nag message": (("nag", "overdue", "message"), "{title} " + MARK),
    "watch message": (("watches", "late", "message"), "late " + MARK),
    "message title": (("coordinator", "message", "title"), "{count} " + MARK),
    "file watch path": (("watches", "result", "file", "path"), "/tmp/{key}/" + MARK),
    "deadline file": (("watches", "stamp", "deadline", "file"), "/tmp/" + MARK),
    "sandbox writable": (("jobs", "shell", "sandbox", "writable", 0), "/tmp/" + MARK),
    "regex": (("watches", "mail", "match", "any", 0, "regex"), MARK),
}
# Fields checked by systemd or the time zone database, not free text: the hostile text is appended.
CHECKED_FIELDS: dict[str, tuple[str | int, ...]] = {
    "timezone": ("timezone",),
    "job timezone": ("jobs", "shell", "timezone"),
    "cron schedule": ("jobs", "shell", "schedule"),
    "calendar schedule": ("watches", "late", "deadline", "at"),
}
CHECKED_VALUES = {"timezone": "UTC", "job timezone": "UTC", "calendar schedule": "Mon 05:00"}
# Names become parts of unit, file and state names: only [A-Za-z0-9_-] gets through.
KEY_FIELDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "job name": (("jobs",), "shell", "invalid name"),
    "watch name": (("watches",), "late", "invalid name"),
    "channel name": (("channels",), "sink", "invalid name"),
    "secret name": (("secrets",), "token", "invalid name"),
    "environment name": (("jobs", "shell", "environment"), "VAR", "invalid environment variable"),
}

# Free text must keep these (a description may say 100%, a command may use $HOME and ;) ...
KEPT = ["percent", "%n", "%h", "double quote", "single quote", "dollar", "backtick", "semicolon"]
KEPT += ["and", "substitution", "unicode", "equals", "hash"]
# ... and nothing may hold a NUL (no argv, environment or file name can).
REFUSED = ["NUL"]
STRICT = {"config name", "apprise URL", "regex"}  # their own syntax decides


# --- writing configs -----------------------------------------------------------------------


def yaml_text(value: Any) -> str:
    """Flow-style YAML with every string double-quoted and every unprintable character escaped,
    so that the hostile text reaches the field itself, not the YAML reader."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_text(k)}: {yaml_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_text(item) for item in value) + "]"
    if not isinstance(value, str):
        return json.dumps(value)
    if value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def with_value(path: tuple[str | int, ...], value: Any, config: Any = None) -> dict[str, Any]:
    data = copy.deepcopy(BASE if config is None else config)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    result: dict[str, Any] = data
    return result


def with_key(parent_path: tuple[str, ...], old: str, new: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    parent = data
    for part in parent_path:
        parent = parent[part]
    parent[new] = parent.pop(old)
    return data


class Compiler:
    """`vigil compile` of configs written to one path (so that headers match), each into a
    directory of its own, with runner scripts that exec a stub interpreter."""

    def __init__(self, vigil: Callable[..., Result], directory: Path) -> None:
        self.vigil, self.directory = vigil, directory
        self.config = directory / "vigil.yaml"
        self.stub = stub_python(directory)
        self.count = 0

    def compile(self, data: dict[str, Any]) -> tuple[Result, Path]:
        self.count += 1
        out = self.directory / f"out{self.count}"
        self.config.write_text(yaml_text(data) + "\n", encoding="utf-8")
        return self.vigil("compile", self.config, "--out", out, "--python", self.stub), out

    def fields_named(self, result: Result) -> list[str]:
        """The field of every issue; every stderr line must be one `FILE:LINE:COL:` issue."""
        issue = re.compile(re.escape(str(self.config)) + r":\d+:\d+: (.*?): ")
        every = re.compile(re.escape(str(self.config)) + r":\d+:\d+: ")
        lines = result.stderr.splitlines()
        assert lines and all(every.match(line) for line in lines), lines
        return [match.group(1) for line in lines if (match := issue.match(line))]


def rejected(compiler: Compiler, result: Result, out: Path, path: tuple[str | int, ...]) -> bool:
    """True when compile refused the config for the field at `path` and wrote nothing."""
    if result.exit_code == 0:
        return False
    assert result.exit_code == 2, result.stderr
    assert not out.exists()
    full = format_path(path)
    # A list item may be reported on its list ("jobs.argv.run" for run[1]).
    least = format_path(path[:-1]) if isinstance(path[-1], int) else full
    named = compiler.fields_named(result)
    assert any(full.startswith(f) and len(f) >= len(least) for f in named), (full, named)
    return True


# --- what systemd, sh and the runner read back ----------------------------------------------


def substituted(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list | tuple):
        return type(value)(substituted(item, old, new) for item in value)
    if isinstance(value, dict):
        return {substituted(k, old, new): substituted(v, old, new) for k, v in value.items()}
    return value


def read_back(out: Path) -> dict[str, Any]:
    """Everything a reader of the tree uses: unit directives as systemd reads them, specs as
    JSON, runner scripts as bytes. Not the manifest (hashes) or config.yaml (checked apart)."""
    files = read_tree(out)
    seen: dict[str, Any] = {}
    for relative, content in files.items():
        if relative.startswith("units/"):
            seen[relative] = read_values(relative.removeprefix("units/"), content.decode())
        elif relative.startswith("specs/"):
            seen[relative] = json.loads(content)
        elif relative.startswith("bin/"):
            seen[relative] = content.decode()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("field", FIELDS)
def test_free_text_is_rejected_or_read_back_exactly(vigil, tmp_path: Path, field: str) -> None:
    require_systemd_analyze()
    path, template = FIELDS[field]
    compiler = Compiler(vigil, tmp_path)
    result, out = compiler.compile(with_value(path, template))
    assert result.exit_code == 0, result.stderr
    check_tree(out, compiler.config, stub=compiler.stub)
    baseline = read_back(out)
    # Else the comparison below would prove nothing.
    assert any(MARK in json.dumps(v) for v in baseline.values()), f"{field} reaches no file"
    accepted = []
    for name, text in VALUES.items():
        result, out = compiler.compile(with_value(path, template.replace(MARK, text)))
        if rejected(compiler, result, out, path):
            continue
        assert result.exit_code == 0, result.stderr
        assert read_back(out) == substituted(baseline, MARK, text), f"{field}: {name}"
        assert (out / "config.yaml").read_bytes() == compiler.config.read_bytes()
        accepted.append(name)
    if field not in STRICT:
        assert not set(accepted) & set(REFUSED), accepted
        assert set(KEPT) & set(VALUES) <= set(accepted), sorted(set(KEPT) - set(accepted))


@pytest.mark.parametrize("field", CHECKED_FIELDS)
def test_checked_values_take_no_hostile_text(vigil, tmp_path: Path, field: str) -> None:
    require_systemd_analyze()
    path = CHECKED_FIELDS[field]
    compiler = Compiler(vigil, tmp_path)
    value = CHECKED_VALUES.get(field, "0 3 * * *")
    result, _ = compiler.compile(with_value(path, value))
    assert result.exit_code == 0, result.stderr
    for name, text in VALUES.items():
        if name in ("trailing space", "tab") and "schedule" in field:
            continue  # blanks around a schedule are insignificant, as in crontab
        result, out = compiler.compile(with_value(path, value + text))
        assert rejected(compiler, result, out, path), f"{field}: {name} was accepted"


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_names_take_only_plain_characters(vigil, tmp_path: Path, field: str) -> None:
    parent, old, message = KEY_FIELDS[field]
    compiler = Compiler(vigil, tmp_path)
    for name, text in VALUES.items():
        result, out = compiler.compile(with_key(parent, old, "x" + text))
        assert result.exit_code == 2, f"{field}: {name} was accepted"
        assert not out.exists()
        named = compiler.fields_named(result)
        if len(text) >= 1024:
            continue  # YAML itself refuses a key that long: a syntax error, no field to name
        assert any(f.startswith(format_path(parent)) for f in named), named
        assert message in result.stderr, result.stderr


def valid(data: dict[str, Any]) -> bool:
    try:
        validate_document(load_text(yaml_text(data), "vigil.yaml"))
    except ConfigError:
        return False
    return True


@pytest.mark.slow
def test_every_field_at_once_verifies_clean(vigil, tmp_path: Path) -> None:
    """Per hostile value, one config holding it in every field that takes it: systemd-analyze
    verify, sh -n, the runner scripts and the runner's spec readers all accept the tree."""
    require_systemd_analyze()
    compiler = Compiler(vigil, tmp_path)
    for text in VALUES.values():
        data = BASE
        for path, template in FIELDS.values():
            candidate = with_value(path, template.replace(MARK, text), data)
            if valid(candidate):
                data = candidate
        result, out = compiler.compile(data)
        assert result.exit_code == 0, result.stderr
        check_tree(out, compiler.config, stub=compiler.stub)


def test_config_and_interpreter_paths_stay_inert(vigil, tmp_path: Path) -> None:
    """Not config values, but text in generated files too: the config's path (unit and script
    headers, the manifest) and the interpreter's (`--python`, exec'd by every runner script)."""
    require_systemd_analyze()
    hostile = f"$(touch {tmp_path}/pwned) `touch {tmp_path}/pwned` 'q' \"d\"; %n \\\n# x\\"
    directory = tmp_path / hostile  # several levels deep: the commands hold slashes
    directory.mkdir(parents=True)
    config, out = directory / "vigil.yaml", tmp_path / "out"
    # With auto_rollback: its script runs `vigil rollback` through the same interpreter.
    config.write_text(yaml_text({**BASE, "release": {"auto_rollback": True}}) + "\n")
    stub = stub_python(directory)
    result = vigil("compile", config, "--out", out, "--python", stub)
    assert result.exit_code == 0, result.stderr
    manifest = check_tree(out, config, stub=stub)  # sh -n, every script run, verify
    assert "bin/demo-rollback" in manifest["files"]
    assert manifest["python"] == str(stub)
    assert manifest["config"]["path"] == str(config)
    assert not (tmp_path / "pwned").exists()


# --- the runner runs what the config says ---------------------------------------------------

DUMP = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps([sys.argv[2:], os.getcwd()]))"
# What commands take; not "huge": Linux refuses to exec an argument over 128 KiB (the run fails
# with "Argument list too long", which the runner reports).
PASSED = [text for name, text in HOSTILE.items() if name not in (*REFUSED, "huge")]


def run_job(tmp_path: Path, vigil: Callable[..., Result], job: dict[str, Any]) -> Path:
    """Compile a one-job config with the real interpreter and run the job's runner script."""
    config = tmp_path / "vigil.yaml"
    data = {
        "name": "demo",
        "state_dir": str(tmp_path / "state"),
        "jobs": {"probe": {"schedule": "@daily", "output": "log", **job}},
        "channels": {"sink": {"file": str(tmp_path / "out.jsonl")}},
        "coordinator": {"deliver_to": ["sink"]},
    }
    config.write_text(yaml_text(data) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = vigil("compile", config, "--out", out, "--python", sys.executable)
    assert result.exit_code == 0, result.stderr
    ran = subprocess.run(
        [out / "bin" / "demo-probe"],
        env=runner_env(HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    return out


def test_argv_reaches_the_program_without_a_shell(vigil, tmp_path: Path) -> None:
    dump = tmp_path / "argv.json"
    out = run_job(tmp_path, vigil, {"run": [sys.executable, "-c", DUMP, str(dump), *PASSED]})
    assert json.loads(dump.read_text())[0] == PASSED
    assert json.loads((out / "specs" / "probe.json").read_text())["command"]["argv"][4:] == PASSED


def test_shell_string_reaches_sh_byte_for_byte(vigil, tmp_path: Path) -> None:
    # sh runs the string (that is what a string `run` means); quoted words come out exactly.
    dump = tmp_path / "words"
    script = "printf '%s\\0' " + " ".join(map(shlex.quote, PASSED)) + " > " + shlex.quote(str(dump))
    run_job(tmp_path, vigil, {"run": script})
    assert dump.read_bytes().decode().split("\0")[:-1] == PASSED  # bytes: CR stays CR


def test_environment_and_working_directory_arrive_intact(vigil, tmp_path: Path) -> None:
    # Environment values are text: newlines and tabs, no other control characters.
    texts = [t for t in PASSED if not any(ord(c) < 32 and c not in "\n\t" for c in t)]
    values = {f"V{n}": text for n, text in enumerate(texts)}
    directory = tmp_path / "dir $HOME; `id` 'q' \"d\" %n é"
    directory.mkdir()
    dump = tmp_path / "env.json"
    program = DUMP.replace("sys.argv[2:]", "{k: v for k, v in os.environ.items() if k[0] == 'V'}")
    job = {
        "run": [sys.executable, "-c", program, str(dump)],
        "environment": values,
        "working_directory": str(directory),
    }
    run_job(tmp_path, vigil, job)
    environment, cwd = json.loads(dump.read_text())
    assert {k: v for k, v in environment.items() if k in values} == values
    assert cwd == str(directory)

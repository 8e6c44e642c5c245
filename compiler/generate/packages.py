"""The Python packages a config needs at run time, and whether the units' interpreter has them.

The runner imports `anthropic` (a prompt job's model call) and `apprise` (an apprise channel)
only in the runs that use them, so a missing one would otherwise show only when a detector
first finds something or a message is first sent. `validate`, `plan`, `apply` and `doctor` ask
the interpreter the units run with beforehand, the way the units run it (no user site, no
PYTHON* variables, not from the current directory).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

from compiler.errors import UsageError
from compiler.language.model import Config
from runner.contract import RUNNER_ENTRY, SPEC_VERSION
from runner.packages import requirement

MIN_PYTHON = (3, 11)
PROBE_TIMEOUT = 10.0
# Runs on any Python (2.7 included, so it can say which version it found): prints the version,
# whether it is managed by the system (PEP 668), then each module it cannot find, and for
# vigil's runner the spec version it reads and the entry point its scripts call. Nothing is
# imported but the runner's spec and contract modules.
_PROBE = r"""
import sys, os
sys.path = [p for p in sys.path if p]
print("%d.%d" % sys.version_info[:2])
if sys.version_info < (3, 11):
    sys.exit(0)
import importlib.util, sysconfig
managed = sys.prefix == sys.base_prefix and os.path.exists(
    os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
print("managed" if managed else "own")
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        print("missing " + name)
    elif name == "runner":
        try:
            from runner.spec import SPEC_VERSION
        except Exception:
            SPEC_VERSION = None
        print("runner %s" % SPEC_VERSION)
        try:
            from runner.contract import RUNNER_ENTRY
        except Exception:
            RUNNER_ENTRY = "none"
        print("entry " + RUNNER_ENTRY)
"""


@dataclass(frozen=True)
class Need:
    module: str  # what the runner imports
    distribution: str  # what pip installs
    users: str  # who needs it, in words: "prompt jobs a and b", "every unit"
    plural: bool = False


@dataclass(frozen=True)
class Problem:
    """What the units' interpreter lacks, and how to give it that."""

    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.detail}: {self.fix}"


def interpreter(python: str) -> str:
    """The absolute path the units will run: a relative path or a bare name would be resolved
    by systemd against another directory and PATH than vigil's."""
    found = shutil.which(python) if os.sep not in python else python
    if found is None:
        raise UsageError(f"--python {python}: no such interpreter on PATH")
    return os.path.abspath(found)


def needs(config: Config) -> list[Need]:
    """The packages the units of `config` import, with who needs each."""
    found = [Need("runner", "vigil", "every unit")]
    prompts = [name for name, job in config.jobs.items() if job.prompt and job.enabled]
    if prompts:
        found.append(
            Need("anthropic", "anthropic", _named("prompt job", prompts), len(prompts) > 1)
        )
    channels = [name for name, ch in config.channels.items() if ch.apprise or ch.apprise_secret]
    if channels:
        found.append(Need("apprise", "apprise", _named("channel", channels), len(channels) > 1))
    return found


def _named(kind: str, names: list[str]) -> str:
    """("prompt job", [a, b, c]) -> "prompt jobs a, b and c"."""
    if len(names) == 1:
        return f"{kind} {names[0]}"
    return f"{kind}s {', '.join(names[:-1])} and {names[-1]}"


def missing(python: str, wanted: list[Need]) -> list[Problem]:
    """What `python` lacks of `wanted`; empty when it has them all."""
    report = _probe(python, tuple(need.module for need in wanted))
    if isinstance(report, Problem):
        return [report]
    version, managed, absent, runner_spec, runner_entry = report
    if version < MIN_PYTHON:
        return [
            Problem(
                f"the units' interpreter {python} is Python {version[0]}.{version[1]}",
                f"vigil needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer: pass one with "
                "--python",
            )
        ]
    other_spec = runner_spec is not None and runner_spec != str(SPEC_VERSION)
    other_entry = runner_spec is not None and runner_entry != RUNNER_ENTRY
    if "runner" in absent or other_spec or other_entry:
        if "runner" in absent:
            what = "cannot import vigil's runner"
        elif other_spec:
            what = (
                f"has a vigil runner for another spec version ({runner_spec}, not {SPEC_VERSION})"
            )
        else:
            what = "has a vigil runner from another release (the scripts call an entry it lacks)"
        # Installing vigil there brings the other packages too: one line says it all.
        return [
            Problem(f"the units' interpreter {python} {what}", _install(python, "vigil", managed))
        ]
    return [
        Problem(
            f"the units' interpreter {python} lacks the {need.distribution} package, which the "
            f"{need.users} need{'' if need.plural else 's'}",
            _install(python, requirement(need.distribution), managed),
        )
        for need in wanted
        if need.module in absent
    ]


def _install(python: str, what: str, managed: bool) -> str:
    if managed:
        return (
            f"{python} is managed by the system (PEP 668): make a virtual environment "
            "(`python3 -m venv DIR`), install vigil there as you installed it for "
            f"{sys.executable}, and pass --python DIR/bin/python (or leave out --python)"
        )
    if what == "vigil":
        return (
            f"install vigil into that environment as you installed it for {sys.executable}, "
            "or leave out --python"
        )
    return f"install it with `{python} -m pip install '{what}'`"


Report = tuple[tuple[int, int], bool, set[str], str | None, str | None]
"""Python version, managed by the system, modules missing, the runner's spec version and the
entry point it offers."""


@cache  # one probe per interpreter and module set in a command, however many configs
def _probe(python: str, modules: tuple[str, ...]) -> Report | Problem:
    fix = "pass a working Python 3.11+ with --python"
    try:
        process = subprocess.Popen(
            [python, "-E", "-s", "-c", _PROBE, *modules],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
            start_new_session=True,  # a hung interpreter is killed with all it started
        )
    except OSError as error:
        return Problem(f"the units' interpreter {python} cannot be run: {error.strerror}", fix)
    try:
        out, err = process.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return Problem(
            f"the units' interpreter {python} did not answer within {PROBE_TIMEOUT:g}s", fix
        )
    lines = out.split("\n")
    version = _version(lines[0])
    if process.returncode != 0 or version is None:
        said = [line for line in err.strip().splitlines() if line.strip()]
        detail = said[0] if said else f"exit status {process.returncode}"
        return Problem(f"the units' interpreter {python} does not work: {detail}", fix)
    managed = len(lines) > 1 and lines[1] == "managed"
    absent = {line.split(" ", 1)[1] for line in lines if line.startswith("missing ")}
    runner = next((line.split(" ", 1)[1] for line in lines if line.startswith("runner ")), None)
    entry = next((line.split(" ", 1)[1] for line in lines if line.startswith("entry ")), None)
    return version, managed, absent, runner, entry


def _version(line: str) -> tuple[int, int] | None:
    major, _, minor = line.partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None

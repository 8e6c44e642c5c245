"""The Python packages a config needs at run time, and whether the units' interpreter has them.

The runner imports `anthropic` (a prompt job's model call) and `apprise` (an apprise channel)
only in the runs that use them, so a missing one would otherwise show only when a detector
first finds something or a message is first sent. `validate`, `plan`, `apply` and `doctor` ask
the interpreter the units run with beforehand, the way the units run it (`python -I`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from importlib import metadata

from compiler.model import Config

PROBE_TIMEOUT = 30
# Prints the modules the interpreter cannot find, one a line, without importing them.
_PROBE = (
    "import importlib.util, sys\n"
    "for name in sys.argv[1:]:\n"
    "    if importlib.util.find_spec(name) is None: print(name)\n"
)


@dataclass(frozen=True)
class Need:
    module: str  # what the runner imports
    distribution: str  # what pip installs
    users: str  # who needs it, in words: "prompt jobs a and b", "every unit"
    plural: bool = False


def needs(config: Config) -> list[Need]:
    """The packages the units of `config` import, with who needs each."""
    found = [Need("runner", "vigil", "every unit")]
    prompts = [name for name, job in config.jobs.items() if job.prompt]
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


def missing(python: str, wanted: list[Need]) -> list[str]:
    """One line per package `python -I` cannot import, saying who needs it and how to install
    it; empty when it has them all."""
    if not wanted:
        return []
    try:
        probe = subprocess.run(
            [python, "-I", "-c", _PROBE, *(need.module for need in wanted)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return [f"the units' interpreter {python} cannot be run: {error}"]
    if probe.returncode != 0:
        detail = probe.stderr.strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        return [f"the units' interpreter {python} does not work: {detail[0]}"]
    absent = set(probe.stdout.split())
    return [_advice(python, need) for need in wanted if need.module in absent]


def _advice(python: str, need: Need) -> str:
    if need.distribution == "vigil":
        return (
            f"the units' interpreter {python} cannot import vigil's runner, which every unit runs: "
            f"install vigil into that environment, or leave out --python"
        )
    return (
        f"the units' interpreter {python} lacks the {need.distribution} package, which "
        f"the {need.users} need{'' if need.plural else 's'}: install it with "
        f"`{python} -m pip install '{requirement(need.distribution)}'`"
    )


def requirement(distribution: str) -> str:
    """`anthropic>=0.40,<3` as vigil's own metadata asks for it; the bare name otherwise."""
    try:
        declared = metadata.requires("vigil") or []
    except metadata.PackageNotFoundError:
        return distribution
    for line in declared:
        spec = line.split(";", 1)[0].strip()
        name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0]
        if name.lower() == distribution.lower() and ";" not in line:
            return spec.replace(" ", "")
    return distribution

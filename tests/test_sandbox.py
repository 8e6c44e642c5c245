"""The sandbox directives: what each level writes, and what `systemd-analyze security` scores.

The scores are systemd's own exposure estimate (0 = locked down, 10 = unprotected), measured on
the unit files as rendered. Whether the directives work is checked under a real user manager in
test_sandbox_systemd.py: only a unit that starts counts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.generate import build
from compiler.generate.render import Source, Tree, render
from compiler.language.loader import load_text
from compiler.language.validate import validate_document
from tests.conftest import EXAMPLE_BUILD_IDS, EXAMPLE_BUILDS
from tests.systemd_manager import skip_or_fail

JOB_LIMIT = 5.0  # the most exposure a standard or strict job unit may have
COORDINATOR_LIMIT = 3.0  # the coordinator, and the watch and failure units (vigil's own code)

LEVELS = """\
name: lv
jobs:
  standard: {schedule: "@daily", run: "true"}
  standard-offline: {schedule: "@daily", run: "true", sandbox: {network: false}}
  strict: {schedule: "@daily", run: "true", sandbox: {level: strict}}
  strict-offline:
    schedule: "@daily"
    run: "true"
    sandbox: {level: strict, network: false, writable: [~/out], readable: [~/in]}
  "off": {schedule: "@daily", run: "true", sandbox: {level: "off"}}
watches:
  done: {deadline: {job: standard, at: "03:00"}}
channels: {sink: {file: ~/alerts/out.jsonl}}
coordinator: {deliver_to: [sink]}
"""


def render_text(text: str, *, system: bool = False, runtime: tuple[str, ...] = ()) -> Tree:
    config = validate_document(load_text(text, "lv.yaml")).config
    source = Source("lv.yaml", text.encode())
    return render(config, source, python="/usr/bin/python3", system=system, runtime=runtime)


def service(tree: Tree, name: str) -> list[str]:
    return tree[f"units/{name}"].content.decode().splitlines()


def values(lines: list[str], key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in lines if line.startswith(f"{key}=")]


# --- what each level writes -----------------------------------------------------------------


def test_off_writes_only_the_umask() -> None:
    lines = service(render_text(LEVELS), "lv-off.service")
    start = lines.index("UMask=0077")
    assert lines[start:] == ["UMask=0077"]


def test_standard_reads_the_home_and_writes_only_state_tmp_and_writable() -> None:
    text = LEVELS.replace('run: "true"}\n', 'run: "true", sandbox: {writable: [/srv/b]}}\n', 1)
    lines = service(render_text(text), "lv-standard.service")
    assert values(lines, "ProtectSystem") == ["strict"]
    assert values(lines, "ProtectHome") == ["read-only"]
    assert values(lines, "ReadWritePaths") == [
        "-/tmp -/var/tmp",
        "-%h/.local/state/vigil/lv",
        "-/srv/b",
    ]
    assert values(lines, "PrivateUsers") == ["yes"]
    assert values(lines, "RestrictAddressFamilies") == ["AF_UNIX AF_INET AF_INET6"]
    assert "PrivateTmp=yes" not in lines and "MemoryDenyWriteExecute=yes" not in lines


def test_strict_binds_back_only_what_it_needs() -> None:
    tree = render_text(LEVELS, runtime=("/home/me/.venv",))
    lines = service(tree, "lv-strict-offline.service")
    assert values(lines, "ProtectHome") == ["tmpfs"]
    assert values(lines, "PrivateTmp") == ["yes"]
    assert values(lines, "BindReadOnlyPaths") == [
        "-%h/.local/share/vigil/lv",  # the installed tree the unit runs
        "-/home/me/.venv",  # the interpreter's environment
        "-%h/in",
    ]
    assert values(lines, "BindPaths") == ["-%h/.local/state/vigil/lv", "-%h/out"]
    assert "ReadWritePaths" not in "".join(lines)
    assert values(lines, "PrivateNetwork") == ["yes"]
    assert values(lines, "RestrictAddressFamilies") == ["AF_UNIX"]
    assert values(lines, "MemoryDenyWriteExecute") == ["yes"]


def test_coordinator_writes_the_directories_of_file_channels() -> None:
    lines = service(render_text(LEVELS), "lv-coordinator.service")
    assert values(lines, "ReadWritePaths")[1:] == ["-%h/.local/state/vigil/lv", "-%h/alerts"]
    text = LEVELS.replace(
        "coordinator: {deliver_to: [sink]}",
        "coordinator: {deliver_to: [sink], sandbox: {writable: [~/.agent], network: false}}",
    )
    lines = service(render_text(text), "lv-coordinator.service")
    assert values(lines, "ReadWritePaths")[-1] == "-%h/.agent"
    assert values(lines, "PrivateNetwork") == ["yes"]


def test_watch_and_failure_units_run_only_vigil_code() -> None:
    tree = render_text(LEVELS)
    for name in ("lv-watch-done.service", "lv-failure@.service"):
        lines = service(tree, name)
        assert values(lines, "ReadWritePaths") == ["-%h/.local/state/vigil/lv"], name
        assert values(lines, "PrivateNetwork") == ["yes"], name
        assert values(lines, "MemoryDenyWriteExecute") == ["yes"], name


def test_system_scope_adds_what_only_pid1_applies() -> None:
    user = service(render_text(LEVELS), "lv-strict-offline.service")
    system = service(render_text(LEVELS, system=True), "lv-strict-offline.service")
    added = {"ProtectProc=invisible", "ProcSubset=pid", "IPAddressDeny=any"}
    assert added <= set(system)
    assert not added & set(user)
    assert values(system, "BindPaths") == ["-/var/lib/vigil/lv/state", "-%h/out"]


def test_sandbox_paths_are_normalized_and_escaped() -> None:
    # Tested under a real manager too: quoted words with spaces, colons and quotes are the paths.
    paths = ["~/b/", "/srv/100%", "~/with space", "/a:b", '/say "hi"', "~/b"]
    text = LEVELS.replace("writable: [~/out]", f"writable: {json.dumps(paths)}")
    lines = service(render_text(text), "lv-strict-offline.service")
    assert values(lines, "BindPaths") == [
        "-%h/.local/state/vigil/lv",
        "-%h/b",  # once
        "-/srv/100%%",
        '"-%h/with space"',
        '"-/a:b"',
        '"-/say \\"hi\\""',
    ]


# --- systemd-analyze security ---------------------------------------------------------------


def require_offline_security() -> None:
    if not shutil.which("systemd-analyze"):
        skip_or_fail("systemd-analyze not available")
    usage = subprocess.run(
        ["systemd-analyze", "security", "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--offline" not in usage:
        skip_or_fail("this systemd-analyze cannot score unit files (no security --offline)")


def exposure(tree: Tree, scratch: Path, *, system: bool) -> dict[str, float]:
    """unit -> overall exposure, from `systemd-analyze security --offline=yes` on the files."""
    units = scratch / "units"
    units.mkdir(parents=True)
    paths = []
    for relative, generated in tree.items():
        if relative.startswith("units/") and relative.endswith(".service"):
            path = units / relative.removeprefix("units/")
            path.write_bytes(generated.content)
            paths.append(str(path))
    runtime = scratch / "run"  # a user-scope analysis needs a runtime directory
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), SYSTEMD_LOG_COLOR="0")
    scope = [] if system else ["--user"]
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", *scope, "--no-pager", *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.findall(r"Overall exposure level for (\S+): (\d+\.\d+)", result.stdout)
    scores = {unit: float(score) for unit, score in found}
    assert len(scores) == len(paths), result.stdout + result.stderr
    return scores


def kind(unit: str) -> str:
    """What the exposure limit of a unit depends on: coordinator, watch, failure, a fleet
    host's forwarder or job."""
    for word in ("coordinator", "watch", "failure", "forward"):
        if re.search(rf"-{word}[-@.]", unit):
            return word
    return "job"


def limit(unit: str) -> float:
    return JOB_LIMIT if kind(unit) == "job" else COORDINATOR_LIMIT


@pytest.mark.parametrize("system", [False, True], ids=["user", "system"])
def test_exposure_of_every_level(tmp_path: Path, system: bool) -> None:
    require_offline_security()
    scores = exposure(render_text(LEVELS, system=system), tmp_path, system=system)
    print(f"exposure ({'system' if system else 'user'} scope):", scores)
    for unit, score in scores.items():
        if unit != "lv-off.service":
            assert score <= limit(unit), (unit, score)
    # Each step down is measurable: no network, strict; and off is systemd's "UNSAFE".
    assert scores["lv-standard-offline.service"] < scores["lv-standard.service"]
    assert scores["lv-strict.service"] < scores["lv-standard.service"]
    assert scores["lv-strict-offline.service"] < scores["lv-strict.service"]
    assert scores["lv-off.service"] > 9.0


@pytest.mark.parametrize("system", [False, True], ids=["user", "system"])
@pytest.mark.parametrize(("example", "host"), EXAMPLE_BUILDS, ids=EXAMPLE_BUILD_IDS)
def test_exposure_of_the_examples(
    tmp_path: Path, example: Path, host: str | None, system: bool
) -> None:
    require_offline_security()
    config = validate_document(load_text(example.read_text(), str(example))).config
    source = Source(example.name, b"")
    tree = render(config, source, python="/usr/bin/python3", system=system, host=host)
    scores = exposure(tree, tmp_path, system=system)
    levels = {
        f"{config.name}-{job}.service": spec.sandbox.level for job, spec in config.jobs.items()
    }
    runs_coordinator = "specs/coordinator.json" in tree  # not every host of a fleet
    assert any(kind(unit) == "coordinator" for unit in scores) == runs_coordinator
    for unit, score in scores.items():
        if levels.get(unit) != "off":
            assert score <= limit(unit), (unit, score)


@pytest.mark.parametrize(
    ("python", "bound"),
    [
        ("/home/me/.venv/bin/python", ["/home/me/.venv"]),
        ("/root/env/bin/python3", ["/root/env"]),
        # a checkout in /tmp (CI clones there): hidden by PrivateTmp= at the strict level
        ("/tmp/clone/.venv/bin/python", ["/tmp/clone/.venv"]),
        ("/var/tmp/env/bin/python", ["/var/tmp/env"]),
        ("/usr/bin/python3", []),  # visible to every service already
        ("/opt/env/bin/python", []),
    ],
)
def test_strict_services_get_back_the_interpreter_they_run_on(
    python: str, bound: list[str]
) -> None:
    assert build.runtime_paths(python) == bound

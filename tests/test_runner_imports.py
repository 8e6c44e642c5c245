"""The runner's entry point: stdlib-only start-up, isolated mode, usage and spec errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.coordinator_support import bruba_spec, delivered, drop
from tests.runner_support import ROOT, llm_spec, run_runner, runner_env, shell_spec, write_spec

HEAVY = ("anthropic", "apprise", "pydantic", "jinja2", "jsonschema", "yaml", "compiler", "httpx")
SLOW_STDLIB = ("dataclasses", "typing", "subprocess", "zoneinfo", "hashlib", "pathlib", "glob")
"""Start-up costs of a few ms each; a coordinator run is mostly start-up, so the runner imports
them only where they are needed (the latency benchmark compares it with a bare python -I)."""
COORDINATOR_RUN = (
    "import sys; before = set(sys.modules); from runner.__main__ import main; "
    "code = main(['coordinator', sys.argv[1]]); "
    "print('\\n'.join(sorted(set(sys.modules) - before))); sys.exit(code)"
)
"""Runs the coordinator and prints the modules it imported (not those of interpreter start-up:
an editable install's import finder loads some of them before any runner code runs)."""


def imported_modules(
    *args: str | Path, module: str = "runner", env: dict[str, str] | None = None
) -> set[str]:
    """What `python -m MODULE ARGS` imports after interpreter start-up (`env`: more variables)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, *map(str, args)],
        cwd=ROOT,
        env=runner_env(**(env or {})),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, result.stderr
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith("httpx"))


def test_a_shell_job_imports_nothing_heavy(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, shell_spec(tmp_path, """echo '{"message": "hi"}'"""))
    modules = imported_modules("job", spec)
    assert "runner.job" in modules
    assert heavy(modules) == []


def test_a_detector_that_found_nothing_imports_no_sdk(tmp_path: Path) -> None:
    class NoServer:
        url = "http://127.0.0.1:9"

    spec = write_spec(tmp_path, llm_spec(tmp_path, NoServer(), "echo '[]'"))  # type: ignore[arg-type]
    assert heavy(imported_modules("job", spec)) == []


def test_only_a_fleet_hosts_prompt_job_imports_the_fleet_client(tmp_path: Path) -> None:
    """One machine's spend ledger is a file: runner.fleet stays unimported; a fleet host's
    prompt job books in NATS (here out of reach: no call either way)."""

    class NoServer:
        url = "http://127.0.0.1:9"

    spec = llm_spec(tmp_path, NoServer(), "echo 'r1 Pay rent'", max_retries=0, timeout=2)  # type: ignore[arg-type]
    alone = imported_modules("job", write_spec(tmp_path, spec))
    assert "runner.spend" in alone
    assert sorted(m for m in alone if m.startswith("runner.fleet")) == []
    fleet = {"servers": ["nats://127.0.0.1:9"], "credential": None, "host": "a", "hosts": ["a"],
             "coordinator_hosts": ["a"], "lease": 10, "config_hash": "0" * 64}  # fmt: skip
    on_fleet = imported_modules("job", write_spec(tmp_path, {**spec, "host": "a", "fleet": fleet}))
    assert {"runner.fleet.spendstore", "runner.fleet.client"} <= on_fleet
    assert heavy(on_fleet) == []  # no model call without the ledger


def test_the_failure_handler_imports_nothing_heavy(tmp_path: Path) -> None:
    spec = json.loads((ROOT / "units/bruba/specs/failure.json").read_text())
    spec["state_dir"] = str(tmp_path)
    path = write_spec(tmp_path, spec)
    assert heavy(imported_modules("failure", path, "bruba-x.service")) == []


def test_isolated_mode_works_when_installed(tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import runner"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("runner is not installed for this interpreter (python -I cannot import it)")
    spec = write_spec(tmp_path, shell_spec(tmp_path, """echo '{"message": "isolated"}'"""))
    result = subprocess.run(
        [sys.executable, "-I", "-m", "runner", "job", str(spec)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "state" / "inbox").iterdir())) == 1


@pytest.mark.parametrize(
    "args",
    [[], ["job"], ["explode", "x.json"], ["job", "a.json", "extra"], ["failure", "a", "b", "c"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_runner(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_watch_kind_refuses_another_kind_of_spec() -> None:
    result = run_runner("watch", ROOT / "units/bruba/specs/coordinator.json")
    assert result.returncode == 2
    assert "not a version 1 watch spec" in result.stderr


def test_idle_coordinator_reads_little_and_imports_nothing_heavy(tmp_path: Path) -> None:
    spec = json.loads((ROOT / "units/bruba/specs/coordinator.json").read_text())
    spec["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "coordinator.json"
    path.write_text(json.dumps(spec))
    result = run_runner("coordinator", path, env=runner_env(PYTHONPROFILEIMPORTTIME="1"))
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()}
    assert not imported & {"anthropic", "apprise", "httpx", "pydantic", "jinja2", "yaml"}
    assert "runner" in imported


def coordinator_imports(spec: dict[str, Any], tmp_path: Path) -> set[str]:
    path = write_spec(tmp_path, spec, "coordinator.json")
    result = subprocess.run(
        [sys.executable, "-c", COORDINATOR_RUN, str(path)],
        cwd=ROOT,
        env=runner_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_an_idle_coordinator_imports_only_what_it_reads_with(tmp_path: Path) -> None:
    spec = bruba_spec(tmp_path / "state")  # with nag rules, a file watch and quiet-hours zone
    spec["coordinator"]["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": None}
    imported = coordinator_imports(spec, tmp_path)
    assert "runner.coordinator" in imported
    assert sorted(imported & set(SLOW_STDLIB)) == []
    lazy = {"runner.rules.nag", "runner.rules.pending", "runner.compose", "runner.template"}
    lazy |= {"runner.rules.watches", "runner.rules.watchstate"}
    lazy |= {"runner.delivery", "runner.delivery.outbox", "runner.delivery.channels"}
    lazy |= {"runner.delivery.ledger", "runner.command"}
    assert sorted(imported & lazy) == []


def test_a_finding_for_a_file_channel_starts_no_subprocess_and_no_time_zone(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    drop(
        state, {"source": "research-dispatch", "timestamp": "2026-02-02T14:00:00Z", "message": "x"}
    )
    imported = coordinator_imports(bruba_spec(state), tmp_path)
    assert len(delivered(state)) == 1
    assert {"runner.delivery.outbox", "runner.delivery.channels", "runner.digest"} <= imported
    assert sorted(imported & set(SLOW_STDLIB)) == []  # hashlib too: ids hash without OpenSSL


def test_a_finding_with_no_watch_or_nag_rule_imports_no_rules(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = bruba_spec(state)
    spec["watches"], spec["nag"] = {}, {}
    drop(
        state, {"source": "research-dispatch", "timestamp": "2026-02-02T14:00:00Z", "message": "x"}
    )
    imported = coordinator_imports(spec, tmp_path)
    assert len(delivered(state)) == 1
    assert sorted(m for m in imported if m.startswith("runner.rules.")) == []
    assert "string" not in imported  # templates are parsed by string's own parser, not imported


def test_ids_hash_as_hashlib_does() -> None:
    """runner.digest spares the coordinator OpenSSL; message ids must not change with it."""
    from hashlib import sha256

    from runner.digest import hexdigest

    for text in ("", "occasion\0nag:rule:item:1", "\u00e9t\u00e9 \U0001f600"):
        assert hexdigest(text) == sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ('{"spec": 99}', "version 99 is not supported"),
        ("failure", "this is a 'failure' spec, not a 'job' spec"),
        ("no-timeout", "timeout: missing"),
        ("bad-command", "command: expected"),
        ("bad-output", "output: expected one of"),
    ],
)
def test_bad_specs_exit_2_and_record_nothing(tmp_path: Path, content: str | None, why: str) -> None:
    path = tmp_path / "spec.json"
    spec = shell_spec(tmp_path, "true")
    if content == "failure":
        path.write_text((ROOT / "units/bruba/specs/failure.json").read_text())
    elif content == "no-timeout":
        del spec["timeout"]
    elif content == "bad-command":
        spec["command"] = {"shell": "true", "argv": ["true"]}
    elif content == "bad-output":
        spec["output"] = "yaml"
    elif content is not None:
        path.write_text(content)
    if content in ("no-timeout", "bad-command", "bad-output"):
        write_spec(tmp_path, spec)
    result = run_runner("job", path)
    assert result.returncode == 2
    assert why in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()

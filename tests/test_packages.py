"""Packages the units import beyond the standard library (`anthropic` for prompt jobs, `apprise`
for apprise channels): validate, plan, apply and doctor name what the units' interpreter lacks
before anything runs; a run that still meets a missing or broken one records why and alerts,
never a traceback."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import pytest

from compiler.generate import packages
from compiler.generate.packages import missing, needs, requirement
from compiler.language.validate import load_config
from compiler.layout import Scope
from compiler.operate import doctor
from compiler.operate.doctor import CheckResult
from runner.exitcodes import MISSING_PACKAGE
from tests.runner_support import (
    ROOT,
    FakeMessagesAPI,
    credentials,
    fake_api,
    inbox,
    llm_spec,
    real_spec,
    runner_env,
    runs,
    shell_spec,
    write_spec,
)

__all__ = ["fake_api"]

BRUBA = ROOT / "examples" / "bruba.yaml"
MINIMAL = ROOT / "examples" / "minimal.yaml"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An interpreter with vigil's runner (the checkout, through a .pth file) and nothing
    else: no anthropic, no apprise."""
    home = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(home, with_pip=False, symlinks=True)
    purelib = sysconfig.get_path("purelib", vars={"base": str(home), "platbase": str(home)})
    Path(purelib, "vigil-checkout.pth").write_text(f"{ROOT}\n")
    return str(home / "bin" / "python")


@pytest.fixture(scope="module")
def empty_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An interpreter without even vigil's runner."""
    home = tmp_path_factory.mktemp("empty") / "venv"
    venv.create(home, with_pip=False, symlinks=True)
    return str(home / "bin" / "python")


def test_what_the_reference_workload_needs() -> None:
    found = {need.distribution: need for need in needs(load_config(BRUBA).config)}
    assert set(found) == {"vigil", "anthropic", "apprise"}
    assert found["anthropic"].users == (
        "prompt jobs reminder-check, staleness-check, calendar-prep and morning-briefing"
    )
    assert found["apprise"].users == "channel signal"
    assert {need.distribution for need in needs(load_config(MINIMAL).config)} == {"vigil"}


def test_vigils_own_interpreter_has_everything() -> None:
    assert missing(sys.executable, needs(load_config(BRUBA).config)) == []


def test_an_interpreter_without_the_packages(bare_python: str) -> None:
    problems = [str(p) for p in missing(bare_python, needs(load_config(BRUBA).config))]
    assert len(problems) == 2, problems
    anthropic, apprise = problems
    assert "lacks the anthropic package" in anthropic
    assert "prompt jobs reminder-check, staleness-check, calendar-prep and morning-briefing" in (
        anthropic
    )
    assert f"`{bare_python} -m pip install '{requirement('anthropic')}'`" in anthropic
    assert "lacks the apprise package, which the channel signal needs" in apprise


def test_an_interpreter_without_vigil(empty_python: str) -> None:
    [problem] = missing(empty_python, needs(load_config(BRUBA).config))
    assert problem.detail == f"the units' interpreter {empty_python} cannot import vigil's runner"
    assert "install vigil into that environment" in problem.fix


def test_an_interpreter_that_does_not_run(tmp_path: Path) -> None:
    [problem] = missing(str(tmp_path / "no-python"), needs(load_config(MINIMAL).config))
    assert "cannot be run" in problem.detail
    assert "--python" in problem.fix


def test_the_install_hint_uses_vigils_declared_range() -> None:
    assert requirement("anthropic").startswith("anthropic")
    assert any(op in requirement("anthropic") for op in (">=", "<"))
    assert requirement("no-such-dependency") == "no-such-dependency"


def test_validate_and_plan_warn(vigil, bare_python: str, tmp_path: Path) -> None:
    result = vigil("validate", BRUBA, "--python", bare_python)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning:") == 2
    assert "lacks the anthropic package" in result.stderr
    plan = vigil("plan", BRUBA, "--python", bare_python, "--root", tmp_path / "root")
    assert plan.exit_code == 0, plan.stderr
    assert "lacks the apprise package" in plan.stderr


def test_validate_is_quiet_when_everything_is_there(vigil) -> None:
    result = vigil("validate", BRUBA)
    assert result.exit_code == 0
    assert "warning" not in result.stderr


def test_apply_refuses_and_writes_nothing(vigil, bare_python: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = vigil("apply", BRUBA, "--yes", "--python", bare_python, "--root", root)
    assert result.exit_code == 1
    assert "lacks the anthropic package" in result.stderr
    assert result.stderr.rstrip().endswith("nothing applied")
    assert "Traceback" not in result.stderr
    assert not root.exists()


def test_doctor_names_the_missing_package(
    bare_python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "default_python", lambda: bare_python)
    setup = doctor.Setup(load_config(BRUBA).config, Scope(root=tmp_path), tmp_path)
    checks = [c for c in doctor._packages(setup) if c.name]
    assert [c.status for c in checks] == [CheckResult.FAIL, CheckResult.FAIL]
    assert "lacks the anthropic package" in checks[0].detail
    assert checks[0].fix.startswith(f"install it with `{bare_python} -m pip install")
    monkeypatch.setattr(doctor, "default_python", lambda: sys.executable)
    [ok] = doctor._packages(setup)
    assert ok.status == CheckResult.OK and "anthropic" in ok.detail


def fake_python(tmp_path: Path, answer: str, name: str = "python") -> str:
    """A stand-in interpreter that answers the probe with `answer` (shell code)."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{answer}\n")
    path.chmod(0o755)
    return str(path)


def test_a_leftover_directory_is_not_an_installed_package(tmp_path: Path) -> None:
    """An empty `anthropic/` (a failed uninstall leaves `__pycache__`) imports as a namespace
    package, but has nothing in it."""
    home = tmp_path / "venv"
    venv.create(home, with_pip=False, symlinks=True)
    purelib = sysconfig.get_path("purelib", vars={"base": str(home), "platbase": str(home)})
    Path(purelib, "vigil-checkout.pth").write_text(f"{ROOT}\n")
    Path(purelib, "anthropic", "__pycache__").mkdir(parents=True)
    problems = missing(str(home / "bin" / "python"), needs(load_config(BRUBA).config))
    assert [p.detail.split(" lacks the ")[1].split(" ")[0] for p in problems] == [
        "anthropic",
        "apprise",
    ]


@pytest.mark.parametrize(
    ("answer", "detail", "fix"),
    [
        ("echo 3.10", "is Python 3.10", "vigil needs Python 3.11 or newer"),
        ("echo 2.7", "is Python 2.7", "vigil needs Python 3.11 or newer"),
        ("echo 'Unknown option: -E' >&2; exit 2", "does not work: Unknown option: -E", "--python"),
        (
            "printf '3.12\\nown\\nrunner 7\\n'",
            "has a vigil runner for another spec version (7, not 1)",
            "install vigil into that environment",
        ),
        (
            "printf '3.12\\nmanaged\\nmissing runner\\nmissing anthropic\\n'",
            "cannot import vigil's runner",
            "managed by the system (PEP 668)",
        ),
    ],
)
def test_what_a_wrong_interpreter_is_told(
    tmp_path: Path, answer: str, detail: str, fix: str
) -> None:
    [problem] = missing(fake_python(tmp_path, answer), needs(load_config(BRUBA).config))
    assert problem.detail.endswith(detail)
    assert fix in problem.fix


def test_a_hanging_interpreter_is_given_up_with_all_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packages, "PROBE_TIMEOUT", 0.5)
    pid_file = tmp_path / "child.pid"
    python = fake_python(tmp_path, f"sleep 60 & echo $! > {pid_file}; wait")
    [problem] = missing(python, needs(load_config(MINIMAL).config))
    assert problem.detail.endswith("did not answer within 0.5s")
    child = int(pid_file.read_text())
    for _ in range(50):
        if not Path(f"/proc/{child}").exists() or "Z" in _proc_state(child):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the interpreter's child {child} outlived the probe")


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return "Z"


def test_a_disabled_prompt_job_needs_no_sdk(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\njobs:\n  ask:\n    schedule: '@daily'\n    run: 'true'\n"
        "    prompt: say\n    enabled: false\nllm: {model: claude-haiku-4-5, api_key: k}\n"
        "secrets: {k: /nonexistent}\nchannels: {f: {file: /tmp/x.jsonl}}\n"
        "coordinator: {deliver_to: [f]}\n"
    )
    assert {need.distribution for need in needs(load_config(config).config)} == {"vigil"}


def test_a_relative_python_is_made_absolute(vigil, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "env").symlink_to(Path(sys.executable).parent.parent)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "build"
    result = vigil("compile", MINIMAL, "--out", out, "--python", "env/bin/python")
    assert result.exit_code == 0, result.stderr
    script = next((out / "bin").iterdir()).read_text()
    assert f"exec {tmp_path}/env/bin/python -I -c " in script


def test_an_unknown_bare_python_is_a_usage_error(vigil) -> None:
    result = vigil("plan", MINIMAL, "--python", "no-such-python-3.99")
    assert result.exit_code == 2
    assert "--python no-such-python-3.99: no such interpreter on PATH" in result.stderr


def test_apply_can_skip_the_check_for_another_machine(
    vigil, bare_python: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    result = vigil(
        "apply", BRUBA, "--yes", "--python", bare_python, "--root", root, "--skip-package-check"
    )
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "lacks the anthropic package" in result.stderr
    assert list(root.rglob("bruba-reminder-check.service"))


# --- at run time ------------------------------------------------------------------------------

INVOCATION = "feedfacefeedfacefeedfacefeedface"


def run_job_with(
    python_flags: list[str], spec: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "runner", "job", str(spec)],
        cwd=ROOT,
        env=runner_env(INVOCATION_ID=INVOCATION, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_prompt_job_without_the_sdk_records_why_and_runs_nothing(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    marker = tmp_path / "command-ran"
    spec = write_spec(tmp_path, llm_spec(tmp_path, fake_api, f"touch {marker}; echo found"))
    # -S: no site-packages, so the runner (from the checkout) sees only the standard library.
    result = run_job_with(["-S"], spec, CREDENTIALS_DIRECTORY=str(credentials(tmp_path)))
    assert result.returncode == MISSING_PACKAGE == 9
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert fake_api.calls == 0
    [record] = runs(tmp_path / "state")
    assert record["result"] == "missing-package"
    assert record["exit_status"] == 9
    assert record["invocation_id"] == INVOCATION
    assert "needs the anthropic package" in record["reason"]
    assert f"`{sys.executable} -m pip install 'anthropic" in record["reason"]
    assert record["reason"] in result.stderr


@pytest.mark.parametrize(
    ("init", "says"),
    [
        (
            "raise ImportError('cannot import name Client')",
            "ImportError: cannot import name Client",
        ),
        ("raise RuntimeError('half-installed')", "RuntimeError: half-installed"),
        ("def (", "SyntaxError"),
        ("import no_such_dependency_of_the_sdk", "it needs no_such_dependency_of_the_sdk"),
    ],
)
def test_a_broken_sdk_is_a_missing_package_after_the_command(
    tmp_path: Path, fake_api: FakeMessagesAPI, init: str, says: str
) -> None:
    broken = tmp_path / "broken" / "anthropic"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(init + "\n")
    spec = write_spec(tmp_path, llm_spec(tmp_path, fake_api, "echo found"))
    result = run_job_with(
        [],
        spec,
        CREDENTIALS_DIRECTORY=str(credentials(tmp_path)),
        PYTHONPATH=f"{ROOT}:{broken.parent}",
    )
    assert result.returncode == 9, result.stderr
    assert "Traceback" not in result.stderr
    [record] = runs(tmp_path / "state")
    assert record["result"] == "missing-package"
    assert record["reason"].startswith("model not called: ")
    assert says in record["reason"]
    assert "--force-reinstall" in record["reason"]
    assert fake_api.calls == 0


def test_a_leftover_sdk_directory_is_not_installed(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    leftover = tmp_path / "site" / "anthropic" / "__pycache__"
    leftover.mkdir(parents=True)
    spec = write_spec(tmp_path, llm_spec(tmp_path, fake_api, "echo found"))
    result = run_job_with(["-S"], spec, PYTHONPATH=f"{ROOT}:{leftover.parent.parent}")
    assert result.returncode == 9, result.stderr
    [record] = runs(tmp_path / "state")
    assert record["reason"].startswith("not run: ") and "not installed" in record["reason"]


def test_an_unexpected_error_still_records_the_run(tmp_path: Path) -> None:
    """A bug in vigil ends the run with its runs.jsonl line (and the traceback in the journal
    for the bug report), so the failure alert and `vigil status` still know."""
    spec = shell_spec(tmp_path, "echo hi")
    spec["environment"] = {"A": "B"}
    path = write_spec(tmp_path, spec)
    sabotage = tmp_path / "sabotage"
    sabotage.mkdir()
    (sabotage / "sitecustomize.py").write_text(
        "import runner.output\n"
        "def broken(*args, **kwargs):\n    raise KeyError('boom')\n"
        "runner.output.read_output = broken\n"
    )
    result = run_job_with([], path, PYTHONPATH=f"{ROOT}:{sabotage}")
    assert result.returncode == 1, result.stderr
    [record] = runs(tmp_path / "state")
    assert record["result"] == "failed"
    assert record["reason"] == "internal error: KeyError: 'boom'"


def test_the_failure_alert_carries_the_reason(tmp_path: Path, fake_api: FakeMessagesAPI) -> None:
    spec = write_spec(tmp_path, llm_spec(tmp_path, fake_api, "echo found"))
    assert run_job_with(["-S"], spec).returncode == 9
    failure = real_spec("bruba/specs/failure.json")
    failure.update(state_dir=str(tmp_path / "state"), journal_lines=0)
    monitor = {
        "MONITOR_SERVICE_RESULT": "exit-code",
        "MONITOR_EXIT_CODE": "exited",
        "MONITOR_EXIT_STATUS": "9",
        "MONITOR_INVOCATION_ID": INVOCATION,
        "MONITOR_UNIT": "bruba-reminder-check.service",
    }
    alert_run = subprocess.run(
        [sys.executable, "-m", "runner", "failure", str(write_spec(tmp_path, failure, "f.json"))],
        cwd=ROOT,
        env=runner_env(PATH="/nonexistent", **monitor),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert alert_run.returncode == 0, alert_run.stderr
    [alert] = inbox(tmp_path / "state")
    assert alert["message"].startswith("bruba-reminder-check failed (exit-code, status 9): not run")
    assert "needs the anthropic package" in alert["message"]

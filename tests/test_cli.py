"""The command line: exit codes, explain, schema, and the installed `vigil` script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, fleet_hosts, require_systemd_analyze


def installed_vigil() -> Path:
    script = Path(sys.executable).parent / "vigil"
    if not script.exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs vigil, but the console script is missing")
        pytest.skip("the vigil console script is not installed in this environment")
    return script


def test_installed_script_validates_every_example(tmp_path) -> None:
    require_systemd_analyze()
    # Run from elsewhere so the installed packages are used, not the checkout.
    result = subprocess.run(
        [installed_vigil(), "validate", *EXAMPLES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for example in EXAMPLES:
        assert f"{example}: valid: " in result.stdout


def test_installed_script_reports_bad_input_with_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: demo\njobs: {x: {schedule: '61 * * * *', run: 'true'}}\n")
    result = subprocess.run(
        [installed_vigil(), "validate", bad], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:2:" in result.stderr


def test_missing_file_is_exit_1_without_traceback(vigil, tmp_path) -> None:
    result = vigil("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 1
    assert "cannot read" in result.stderr


def test_all_errors_of_all_files_are_reported(vigil) -> None:
    bad = sorted((ROOT / "tests" / "cases" / "bad").glob("unknown-*.yaml"))
    result = vigil("validate", *bad)
    assert result.exit_code == 2
    for path in bad:
        assert f"{path}:" in result.stderr


def test_valid_and_invalid_together_exit_2_but_print_the_valid_summary(vigil) -> None:
    require_systemd_analyze()
    bad = ROOT / "tests" / "cases" / "bad" / "missing-name.yaml"
    result = vigil("validate", EXAMPLES[0], bad)
    assert result.exit_code == 2
    assert f"{EXAMPLES[0]}: valid" in result.stdout


def test_explain_cron(vigil) -> None:
    require_systemd_analyze()
    result = vigil("explain", "0 9 1 * mon", "--tz", "Europe/Berlin", "-n", "3")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("0 9 1 * mon: ")
    # cron ORs day-of-month and day-of-week: two OnCalendar lines
    assert sum(line.strip().startswith("OnCalendar=") for line in lines) == 2
    assert sum(line.strip().startswith("next: ") for line in lines) == 3
    assert all("CET" in line or "CEST" in line for line in lines if "next:" in line)


def test_explain_rejects_bad_input_with_exit_2(vigil) -> None:
    assert vigil("explain", "61 * * * *").exit_code == 2
    assert vigil("explain", "@daily", "--tz", "Mars/Olympus").exit_code == 2


def test_schema_prints_json(vigil) -> None:
    result = vigil("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "vigil config"
    finding = json.loads(vigil("schema", "--finding").stdout)
    assert finding["required"] == ["source", "timestamp"]


def test_version(vigil) -> None:
    from compiler import __version__

    assert vigil("--version").stdout.strip() == f"vigil {__version__}"


def test_the_version_is_the_one_pyproject_toml_gives() -> None:
    from compiler import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert __version__ == project["version"]


@pytest.mark.parametrize(
    ("version", "flags", "shown"),
    [
        ("9.8.7", ["-S"], "9.8.7"),
        (None, ["-S"], "unknown"),
        ("9.8.7", [], "9.8.7"),  # this environment has another vigil installed: not its version
    ],
)
def test_a_checkout_run_without_installing_shows_its_pyproject_version(
    tmp_path: Path, version: str | None, flags: list[str], shown: str
) -> None:
    """A checkout's pyproject.toml says, whatever is installed (`-S`: nothing); without one
    and with nothing installed the version is unknown."""
    shutil.copytree(ROOT / "compiler", tmp_path / "compiler")
    if version is not None:
        text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1)
        (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, *flags, "-c", "import compiler; print(compiler.__version__)"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == shown


def test_logs_match_units_the_manager_and_syslog_identifiers() -> None:
    from compiler.operate.control import journal_matches

    units = ["d-job.service", "d-job.timer", "d-failure@d-job.service.service"]
    assert journal_matches(units, False, 1000) == [
        *("_SYSTEMD_USER_UNIT=d-job.service", "_SYSTEMD_USER_UNIT=d-job.timer"),
        "_SYSTEMD_USER_UNIT=d-failure@d-job.service.service",
        "_UID=1000",
        "+",
        *("USER_UNIT=d-job.service", "USER_UNIT=d-job.timer"),
        "USER_UNIT=d-failure@d-job.service.service",
        "_UID=1000",
        "+",
        "SYSLOG_IDENTIFIER=d-job",  # not the failure template's, which every instance shares
        "_UID=1000",
    ]
    system = journal_matches(units, True, 1000)
    assert system[:4] == [
        "_SYSTEMD_UNIT=d-job.service",
        "_SYSTEMD_UNIT=d-job.timer",
        "_SYSTEMD_UNIT=d-failure@d-job.service.service",
        "_UID=0",
    ]
    assert "_PID=1" in system and "SYSLOG_IDENTIFIER=d-job" in system


@pytest.mark.parametrize("example", [path.stem for path in EXAMPLES])
def test_run_logs_and_enable_name_only_units_the_compiler_generates(example: str) -> None:
    """Every job and watch `vigil run/logs/enable` accepts names units of the compiled example;
    a watch without units of its own (the coordinator evaluates it) is refused, naming why."""
    from compiler.errors import UsageError
    from compiler.language.validate import load_config
    from compiler.operate.control import units_of
    from compiler.operate.setup import ConfigView

    config = load_config(ROOT / "examples" / f"{example}.yaml").config
    setup = ConfigView.of_config(config)
    trees = [
        ROOT / "units" / example / host
        for host in fleet_hosts(ROOT / "examples" / f"{example}.yaml")
        if host
    ]
    generated = {
        p.name for tree in trees or [ROOT / "units" / example] for p in (tree / "units").iterdir()
    }
    for target in ["coordinator", *config.jobs, *config.watches]:
        watch = config.watches.get(target)
        if watch is not None and watch.timer is None:
            with pytest.raises(UsageError, match=f"a {watch.kind} watch: the coordinator"):
                units_of(setup, target)
            assert not [name for name in generated if f"-watch-{target}." in name]
            continue
        units = units_of(setup, target)
        assert units and set(units) <= generated, (target, units)

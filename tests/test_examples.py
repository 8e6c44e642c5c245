"""Every bundled example validates and its summary says what it will do."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES, require_systemd_analyze


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"bruba.yaml", "backup.yaml", "minimal.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_validates(vigil, path) -> None:
    require_systemd_analyze()
    result = vigil("validate", path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{path}: valid: ")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_schema_line(path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/vigil.schema.json"


def test_bruba_reproduces_the_reference_workload() -> None:
    from compiler.language.validate import load_config
    from tests.conftest import ROOT

    config = load_config(ROOT / "examples" / "bruba.yaml").config
    assert config.timezone == "America/New_York"
    schedules = {name: job.schedule for name, job in config.jobs.items()}
    assert schedules == {
        "nightly-reset-prep": ["55 3 * * *"],
        "nightly-reset-execute": ["2 4 * * *"],
        "nightly-reset-wake": ["7 4 * * *"],
        "reminder-check": ["0 9,14,18 * * *"],
        "staleness-check": ["0 10 * * 1"],
        "calendar-prep": ["0 7 * * 1-5"],
        "morning-briefing": ["15 7 * * 1-5"],
    }
    assert config.jobs["nightly-reset-execute"].after == "nightly-reset-prep"
    assert config.jobs["nightly-reset-wake"].after == "nightly-reset-execute"
    ladder = config.nag["reminders"].ladder
    assert ladder is not None
    assert [(s.min_count, s.min_days) for s in ladder] == [(1, 0), (2, 3), (3, 7)]
    assert config.nag["reminders"].stop_after == 3
    assert config.nag["stale-projects"].once_per == 7 * 86400
    assert config.watches["research-result"].file is not None
    assert config.watches["research-result"].file.within == 15 * 60
    coordinator = config.coordinator
    assert coordinator.heartbeat == 15 * 60
    assert coordinator.total_cap == 5
    caps = {name: policy.cap for name, policy in coordinator.sources.items() if policy.cap}
    assert caps == {"reminder-check": 3, "staleness-check": 1, "calendar-prep": 2}
    assert coordinator.deliver_to == ["signal"]
    assert config.channels["signal"].kind == "apprise"


def test_bruba_summary_names_next_runs_in_new_york(vigil) -> None:
    require_systemd_analyze()
    from tests.conftest import ROOT

    result = vigil("validate", ROOT / "examples" / "bruba.yaml")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "at 09:00, 14:00 and 18:00 every day" in out
    assert "reminder-check" in out and "next: " in out
    assert " EST" in out or " EDT" in out
    assert "3-step ladder, stop after 3" in out
    assert "5 in total, reminder-check 3, staleness-check 1, calendar-prep 2" in out

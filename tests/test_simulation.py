"""The long-horizon simulation (tests/simulation/): generated configs compiled by the real
compiler, the real coordinator, job and watch runners driven on simulated time across DST
changes and month ends in three zones, checked against a reference model of what the person
should have been told. One test per invariant family, so each family shows green or red on its
own. Quick: 93 days in New York and Berlin, 47 in Lord Howe; VIGIL_LONG=1: 1,200 days a zone.
VIGIL_SIM_SEED=N reruns one seed (the failure message prints the command)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import LONG, sized
from tests.simulation.model import FAMILIES
from tests.simulation.run import DEFAULT_SEED, Summary, simulate

SEED = int(os.environ.get("VIGIL_SIM_SEED") or DEFAULT_SEED)
LONG_DAYS = sized(0, 1200)


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    pytest.importorskip("anthropic")
    root: Path = tmp_path_factory.mktemp("simulation")
    found = simulate(SEED, LONG, LONG_DAYS, root if not Path("/dev/shm").is_dir() else None)
    print(f"\n{found.line()}")
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_invariant_family_holds(summary: Summary, family: str) -> None:
    violations = summary.violations[family]
    shown = "\n".join(violations[:15]) + (
        f"\n... {len(violations) - 15} more" if len(violations) > 15 else ""
    )
    assert not violations, (
        f"{len(violations)} {family} violation(s):\n{shown}\n{summary.line()}\n"
        f"reproduce: {summary.reproduce(LONG)}"
    )


def test_the_simulation_covers_what_it_claims(summary: Summary) -> None:
    """Enough happened for the checks to mean something."""
    assert summary.days >= sized(233, 3600)
    assert summary.crashes > 0 and summary.calls > 0 and summary.messages > 0
    assert all(summary.checks[family] > 0 for family in FAMILIES), summary.checks

"""Run the worlds of one seed and check them: `python -m tests.simulation.run [--seed N] [--long]`
prints the summary and every violation (exit 1 when there is one)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.simulation.api import SimAPI
from tests.simulation.driver import Driver
from tests.simulation.model import FAMILIES, Report, check
from tests.simulation.scenario import worlds

DEFAULT_SEED = 20270214
QUICK_LONG_DAYS = (0, 1200)


@dataclass
class Summary:
    seed: int
    days: int = 0
    findings: int = 0
    messages: int = 0
    runs: int = 0
    crashes: int = 0
    calls: int = 0
    seconds: float = 0.0
    checks: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=dict)
    kept: Path | None = None

    def line(self) -> str:
        failed = {f: len(self.violations.get(f, [])) for f in FAMILIES}
        per_family = ", ".join(f"{f} {self.checks[f]}/{failed[f]}" for f in FAMILIES)
        return (
            f"simulation seed {self.seed}: {self.days} simulated days, {self.findings} findings, "
            f"{self.messages} messages, {self.runs} coordinator runs ({self.crashes} crashed), "
            f"{self.calls} model calls, {sum(self.checks.values())} invariant checks, "
            f"{sum(failed.values())} violations (checks/violations: {per_family}); "
            f"{self.seconds:.0f}s" + (f"; state kept in {self.kept}" if self.kept else "")
        )

    def reproduce(self, long: bool) -> str:
        prefix = "VIGIL_LONG=1 " if long else ""
        return (
            f"{prefix}VIGIL_SIM_SEED={self.seed} .venv/bin/python -m pytest -q "
            f"tests/test_simulation.py (or: python -m tests.simulation.run --seed {self.seed}"
            + (" --long)" if long else ")")
        )


def simulate(seed: int, long: bool, long_days: int, root: Path | None = None) -> Summary:
    summary = Summary(seed)
    started = time.monotonic()
    violations: dict[str, list[str]] = {f: [] for f in FAMILIES}
    base = Path(tempfile.mkdtemp(prefix="vigil-sim-", dir=root or _scratch()))
    for n, world in enumerate(worlds(seed, long, long_days)):
        api = SimAPI(f"w{n}")
        api.thread.start()
        try:
            seen = Driver(world, base / f"world-{n}", api).run()
        finally:
            api.server.shutdown()
            api.server.server_close()
        report: Report = check(world, seen)
        summary.days += world.days
        summary.findings += len(world.findings())
        summary.messages += len(seen.lines)
        summary.runs += len(seen.runs)
        summary.crashes += seen.crashes
        summary.calls += len(seen.calls)
        summary.checks.update(report.checks)
        for family, found in report.violations.items():
            violations[family] += found
    summary.violations = violations
    summary.seconds = time.monotonic() - started
    if any(violations.values()):
        summary.kept = base  # the worlds' state directories, to look into
    else:
        shutil.rmtree(base, ignore_errors=True)
    return summary


def _scratch() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--long", action="store_true")
    parser.add_argument(
        "--days", type=int, default=QUICK_LONG_DAYS[1], help="days per zone (--long)"
    )
    args = parser.parse_args(argv)
    summary = simulate(args.seed, args.long, args.days)
    print(summary.line())
    for family, found in summary.violations.items():
        for detail in found[:20]:
            print(f"  {family}: {detail}")
        if len(found) > 20:
            print(f"  {family}: ... {len(found) - 20} more")
    print(f"reproduce: {summary.reproduce(args.long)}")
    return 1 if any(summary.violations.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

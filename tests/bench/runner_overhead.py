"""How much a runner start costs compared with the cheapest Python that runs a command.

Runs a shell job whose command is `true` N times as its generated script starts it (`python -I
-c RUNNER_ENTRY job SPEC`: runner.contract) and N
times `python -c "import subprocess; subprocess.run(['true'])"`, interleaved, with the same
interpreter, and prints both medians and their ratio (target: at most 1.5x).

When `runner` is not importable in isolated mode (not installed), the runner is started without
-I, with PYTHONPATH set to the repository instead, and the output says so.

    python tests/bench/runner_overhead.py [-n 30] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.contract import RUNNER_ENTRY

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "units" / "backup" / "specs" / "backup.json"
TARGET = 1.5
BASELINE = [sys.executable, "-c", "import subprocess; subprocess.run(['true'])"]


def runner_command(spec: Path) -> tuple[list[str], dict[str, str], str]:
    """The runner's command line, environment and how it was started."""
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import runner"], cwd="/", capture_output=True, check=False
    )
    if probe.returncode == 0:
        command = [sys.executable, "-I", "-c", RUNNER_ENTRY, "job", str(spec)]
        return command, dict(os.environ), "-I"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", RUNNER_ENTRY, "job", str(spec)]
    return command, env, "PYTHONPATH (not installed)"


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd="/", stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def measure(n: int) -> dict[str, object]:
    """Medians of N interleaved runs of each, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = json.loads(TEMPLATE.read_text())
        spec.update(state_dir=tmp, command={"argv": ["true"]}, output="log")
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        command, env, mode = runner_command(path)
        timed(command, env), timed(BASELINE, dict(os.environ))  # warm the caches
        runner_times, baseline_times = [], []
        for _ in range(n):
            runner_times.append(timed(command, env))
            baseline_times.append(timed(BASELINE, dict(os.environ)))
    runner_ms = statistics.median(runner_times) * 1000
    baseline_ms = statistics.median(baseline_times) * 1000
    ratio = runner_ms / baseline_ms
    return {
        "runs": n,
        "runner_started_with": mode,
        "python": sys.executable,
        "runner_median_ms": round(runner_ms, 2),
        "baseline_median_ms": round(baseline_ms, 2),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "within_target": ratio <= TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="runs of each (default 30)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    figures = measure(args.n)
    runner_ms, baseline_ms = figures["runner_median_ms"], figures["baseline_median_ms"]
    mode = figures["runner_started_with"]
    print(f"runner ({mode}):   median {runner_ms:7.2f} ms over {args.n} runs")
    print(f"baseline python -c: median {baseline_ms:7.2f} ms over {args.n} runs")
    print(f"ratio: {figures['ratio']:.2f}x (target <= {TARGET}x)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""How fast `vigil` answers the commands a person types many times a day: each inspecting
command, `--help` and `--version`, run as a user runs them (the environment's `bin/vigil`
console script) against a config really installed under a private systemd user manager (so
`status` asks systemd for real), beside `python -I -c "import typer"` with the same interpreter:
the CLI framework's own import cost. Interleaved pairs, wall time, medians.

    python -m tests.bench.cli [--rounds N]      (as root: it starts a private user manager)
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGET = 1.5
"""Each command at most this many times `python -I -c "import typer"` (wall, medians)."""
JOB = "reminder-check"


def commands(config: Path) -> dict[str, list[str]]:
    """What is measured: the arguments of each command, against the installed `config`."""
    with_config = ["--config", str(config)]
    return {
        "status": ["status", *with_config],
        "logs": ["logs", JOB, "-n", "20", *with_config],
        "history": ["history", JOB, *with_config],
        "watches": ["watches", *with_config],
        "inbox": ["inbox", *with_config],
        "outbox": ["outbox", *with_config],
        "state": ["state", *with_config],
        "cost": ["cost", str(config)],
        "--help": ["--help"],
        "--version": ["--version"],
    }


def console_script(python: str) -> Path:
    """The `vigil` script installed beside `python` (a venv's bin/)."""
    script = Path(python).parent / "vigil"
    if not script.exists():
        raise FileNotFoundError(f"{script}: vigil is not installed for {python}")
    return script


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - began, done.returncode


def measure(python: str, config: Path, rounds: int, env: dict[str, str]) -> dict[str, Any]:
    """Per command: medians of `rounds` interleaved (command, import typer) pairs."""
    vigil = str(console_script(python))
    typer = [python, "-I", "-c", "import typer"]
    bare = [python, "-I", "-c", "pass"]
    cwd = config.parent
    figures: dict[str, Any] = {"commands": {}, "rounds": rounds}
    references: list[float] = []
    for name, args in commands(config).items():
        ours, framework, codes = [], [], set()
        _wall([vigil, *args], env, cwd)  # warm the page cache and the bytecode
        for _ in range(rounds):
            seconds, code = _wall([vigil, *args], env, cwd)
            ours.append(seconds)
            codes.add(code)
            framework.append(_wall(typer, env, cwd)[0])
            references.append(_wall(bare, env, cwd)[0])
        if codes != {0}:
            failed = subprocess.run(
                [vigil, *args], env=env, cwd=cwd, capture_output=True, text=True
            )
            raise RuntimeError(f"vigil {' '.join(args)} exited {codes}: {failed.stderr[-500:]}")
        median, baseline = statistics.median(ours), statistics.median(framework)
        figures["commands"][name] = {
            "median_s": median,
            "typer_median_s": baseline,
            "ratio": median / baseline,
            "pair_ratio_median": statistics.median(
                a / b for a, b in zip(ours, framework, strict=True)
            ),
            "pass": median / baseline <= TARGET,
        }
    figures["bare_python_median_s"] = statistics.median(references)
    return figures


def install(python: str, home: Path) -> Path:
    """The reference workload applied (for real: the manager's units) from home/vigil.yaml."""
    config = home / "vigil.yaml"
    config.write_text((ROOT / "examples/bruba.yaml").read_text())
    applied = subprocess.run(
        [str(console_script(python)), "apply", str(config), "--yes", "--no-canary"],
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    if applied.returncode != 0:
        raise RuntimeError(f"vigil apply failed: {applied.stderr[-2000:]}")
    return config


def run_bench(python: str, rounds: int) -> dict[str, Any]:
    """Under a private user manager (needs root), its environment in os.environ meanwhile."""
    from tests.bench.latency import manager_environment
    from tests.systemd_manager import private_user_manager

    with (
        private_user_manager() as manager,
        manager_environment(manager),
        tempfile.TemporaryDirectory(prefix="vigil-cli-") as tmp,
    ):
        config = install(python, Path(tmp))
        return measure(python, config, rounds, dict(os.environ))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="pairs per command")
    parser.add_argument("--python", default=sys.executable, help="the vigil environment")
    args = parser.parse_args()
    print(json.dumps(run_bench(args.python, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

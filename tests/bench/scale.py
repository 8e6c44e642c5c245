"""How compile, plan and the coordinator scale with the size of a config and of a finding.

1. Compile and plan: configs of 10, 100, 1,000 and 10,000 cron jobs (varied minutes, hours and
   days, `run: "echo N"`, a file channel, the coordinator delivering to it), generated in a
   temporary directory. For each size: wall time (median of a few repetitions; one for 10,000)
   and tracemalloc peak of (a) `compiler.generate.build.build` (load, validate, render) and
   (b) `compiler.install.workflows.prepare` (build plus a plan against an empty install under a
   temporary `--root`), the time per job, and the growth factor from the size before (linear is
   ~10x per 10x; the target is at most 15x).
2. Baseline: Debian's systemd-cron generator translating the same 1,000 crontab lines. The
   package is fetched with `apt-get download` into a temporary directory at benchmark time and
   unpacked with `dpkg-deb -x`. Its generator reads only fixed paths (/etc/crontab, /etc/cron.d,
   /var/spool/cron/crontabs, ...), so it runs inside `unshare --mount` (root only) with empty
   tmpfs mounts over those directories and the 1,000 lines as one /etc/cron.d file. It is timed
   as the process it is (interpreter start included), next to vigil's in-process compile of
   1,000 jobs and `vigil compile` as a process; the same for 10 lines and 10 jobs, where each
   tool's start-up is most of its time. Targets: `vigil compile` of 1,000 jobs at most the
   generator's time on 1,000 lines, of 10 jobs at most 3x its time on 10 lines. Skipped, with
   the reason, when any step fails.
3. Coordinator throughput: one reminder-check finding whose `overdue` list has 1,000 (and
   10,000) unique items, through `runner.coordinator.run` in-process with the bruba coordinator
   spec (tests/coordinator_support.py) delivering to a file channel, its caps removed so every
   item is in the message; then the same finding the next day, with the nag state holding every
   item. Wall time and tracemalloc peak (measured in a separate identical pass, since tracing
   slows Python down). Targets: under 1 s for 1,000, under 10 s for 10,000, growth at most 15x.

Exits 0 even when a figure misses its target (the figures are the point), unless `--strict`.

    python -m tests.bench.scale [--quick] [--strict] [--json PATH]
(from the repository root; --quick: compile 10/100/1,000, coordinator 1,000, no systemd-cron)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from compiler.generate.build import build
from compiler.install.workflows import prepare
from compiler.layout import Scope
from runner.coordinator import run as coordinator_run
from tests.coordinator_support import bruba_spec, delivered, drop

ROOT = Path(__file__).resolve().parents[2]
SIZES = [10, 100, 1_000, 10_000]
QUICK_SIZES = [10, 100, 1_000]
COORDINATOR_SIZES = [1_000, 10_000]
QUICK_COORDINATOR_SIZES = [1_000]
COORDINATOR_TARGET_S = {1_000: 1.0, 10_000: 10.0}
GROWTH_TARGET = 15.0  # per 10x more jobs or items; linear is 10x
BASELINE_SIZE = 1_000
NAME = "scale"
MONDAY_9AM = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York

Row = dict[str, Any]


def repetitions(size: int, quick: bool) -> int:
    if size >= 10_000:
        return 1
    if size >= 1_000:
        return 3
    return 5 if quick else 7


# --- the workload --------------------------------------------------------------------------


def cron_expression(i: int) -> str:
    """Varied cron schedules: every n minutes, daily at a time, weekdays, twice a day, monthly."""
    minute, hour = (i * 7) % 60, (i // 3) % 24
    forms = [
        f"*/{[5, 10, 15, 20, 30][i % 5]} * * * *",
        f"{minute} {hour} * * *",
        f"{minute} {hour} * * 1-5",
        f"{minute} {hour},{(hour + 12) % 24} * * *",
        f"{minute} */{[2, 3, 4, 6][i % 4]} * * *",
        f"{minute} {hour} {1 + i % 28} * *",
    ]
    return forms[i % len(forms)]


def config_text(n: int, state: Path, sink: Path) -> str:
    lines = [
        f"name: {NAME}",
        f"state_dir: {state}",
        "timezone: America/New_York",
        "channels:",
        f"  sink: {{file: {sink}}}",
        "coordinator:",
        "  deliver_to: [sink]",
        "jobs:",
    ]
    for i in range(n):
        lines += [f"  job{i:05d}:", f'    schedule: "{cron_expression(i)}"', f'    run: "echo {i}"']
    return "\n".join(lines) + "\n"


def crontab_text(n: int) -> str:
    """The same schedules and commands as /etc/cron.d lines (with the user field)."""
    return "".join(f"{cron_expression(i)} root echo {i}\n" for i in range(n))


# --- measuring -----------------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def traced_peak(action: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def growth(values: dict[int, float], size: int) -> float | None:
    smaller = [s for s in values if s < size]
    if not smaller:
        return None
    before = max(smaller)
    if values[before] <= 0:
        return None
    # normalised to a 10x step, so a missing size in between still reads as "per 10x"
    steps = size / before / 10
    return values[size] / values[before] / steps


# --- 1. compile and plan -------------------------------------------------------------------


def bench_compile(sizes: list[int], quick: bool, tmp: Path) -> list[Row]:
    results: dict[str, dict[int, dict[str, float]]] = {"build": {}, "plan": {}}
    for n in sizes:
        work = tmp / f"compile-{n}"
        work.mkdir()
        config = work / "vigil.yaml"
        config.write_text(config_text(n, work / "state", work / "sink.jsonl"))
        root = work / "root"
        root.mkdir()
        actions: dict[str, Callable[[], Any]] = {
            "build": functools.partial(build, config),
            "plan": functools.partial(prepare, config, Scope(root=root)),
        }
        for what, action in actions.items():
            action()  # warm: imports, schema, regex caches
            times = [timed(action) for _ in range(repetitions(n, quick))]
            results[what][n] = {
                "seconds": statistics.median(times),
                "peak_bytes": traced_peak(action),
                "runs": len(times),
            }
    rows: list[Row] = []
    labels = {"build": "compile (build)", "plan": "plan (prepare)"}
    for what, by_size in results.items():
        seconds = {n: r["seconds"] for n, r in by_size.items()}
        peaks = {n: r["peak_bytes"] for n, r in by_size.items()}
        for n, r in by_size.items():
            time_growth, mem_growth = growth(seconds, n), growth(peaks, n)
            rows.append(
                {
                    "section": "compile",
                    "what": f"{labels[what]} {n:,} jobs",
                    "size": n,
                    "stage": what,
                    "seconds": r["seconds"],
                    "runs": r["runs"],
                    "per_item_ms": r["seconds"] / n * 1000,
                    "peak_bytes": r["peak_bytes"],
                    "time_growth": time_growth,
                    "memory_growth": mem_growth,
                    "target": f"growth <= {GROWTH_TARGET:g}x/10x" if time_growth else "-",
                    "pass": None
                    if time_growth is None
                    else time_growth <= GROWTH_TARGET
                    and (mem_growth is None or mem_growth <= GROWTH_TARGET),
                }
            )
    return rows


# --- 2. systemd-cron baseline --------------------------------------------------------------

# The generator reads only fixed paths (/etc/crontab, /etc/cron.d, ...): inside a private mount
# namespace those are emptied with tmpfs mounts, then BENCH_INNER (Python) times both tools.
GENERATOR_SCRIPT = """\
set -e
for d in /etc/cron.d /etc/cron.hourly /etc/cron.daily /etc/cron.weekly /etc/cron.monthly \\
         /etc/cron.yearly /var/spool/cron /run/systemd/system; do
  if [ -d "$d" ]; then mount -t tmpfs tmpfs "$d"; fi
done
for f in /etc/crontab /etc/anacrontab; do
  if [ -e "$f" ]; then mount --bind /dev/null "$f"; fi
done
exec "$BENCH_PYTHON" -c "$BENCH_INNER"
"""

# Both tools as the processes users run, interleaved round by round so both see the same noise,
# each run into a fresh output directory. The first round only warms caches.
BENCH_INNER = """\
import json, os, shutil, subprocess, sys, time
plan = json.loads(os.environ["BENCH_PLAN"])
times = {label: [] for label in plan["commands"]}
for round in range(plan["rounds"] + 1):
    for label, step in plan["commands"].items():
        if step.get("crontab"):
            shutil.copyfile(step["crontab"], "/etc/cron.d/vigil-scale")
        out = os.path.join(plan["out"], f"{label}-{round}")
        os.makedirs(out)
        argv = [arg.replace("{out}", out) for arg in step["argv"]]
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=step.get("env"))
        if round:
            times[label].append(time.perf_counter() - start)
        written = sum(len(files) for _, _, files in os.walk(out))
        times.setdefault(label + ":files", [written])
        if step.get("crontab"):
            os.unlink("/etc/cron.d/vigil-scale")
print(json.dumps(times))
"""

SMALL = 10  # the fixed start-up cost of each tool is its time for a tiny input
SMALL_TARGET = 3.0  # vigil compile of SMALL jobs: at most this many times the generator's time


class Skip(Exception):
    pass


def fetch_generator(tmp: Path) -> tuple[Path, str]:
    """Debian's systemd-cron generator, downloaded and unpacked into `tmp`; and its version."""
    if os.geteuid() != 0:
        raise Skip("needs root (unshare --mount to point the generator at the crontab)")
    for tool in ("apt-get", "dpkg-deb", "unshare", "mount"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} not found")
    download = tmp / "systemd-cron"
    download.mkdir()
    fetched = subprocess.run(
        ["apt-get", "download", "systemd-cron"],
        cwd=download,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    debs = sorted(download.glob("systemd-cron_*.deb"))
    if fetched.returncode != 0 or not debs:
        raise Skip(f"apt-get download systemd-cron failed: {fetched.stderr.strip()[-200:]}")
    version = debs[0].name.split("_")[1]
    tree = download / "tree"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True, capture_output=True)
    found = sorted(tree.rglob("systemd-crontab-generator"))
    generators = [p for p in found if p.is_file() and os.access(p, os.X_OK)]
    if not generators:
        raise Skip("no executable systemd-crontab-generator in the package")
    return generators[0], version


def processes_side_by_side(tmp: Path, rounds: int) -> tuple[dict[str, list[float]], str]:
    """Wall times of the generator on SMALL and BASELINE_SIZE crontab lines and of
    `vigil compile` on the same schedules as jobs, as processes; and the generator's version."""
    generator, version = fetch_generator(tmp)
    work = tmp / "side-by-side"
    work.mkdir()
    # vigil runs from this checkout, compiled to bytecode once (in the warm-up round) as an
    # installed vigil is: PYTHONDONTWRITEBYTECODE in the caller's environment would otherwise
    # have every run compile vigil's source again. The bytecode goes to a temporary tree.
    vigil_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(work / "pyc")}
    vigil_env.pop("PYTHONDONTWRITEBYTECODE", None)
    vigil = [sys.executable, "-c", "from compiler.cli.main import main; main()", "compile"]
    commands: dict[str, dict[str, Any]] = {}
    for n in (SMALL, BASELINE_SIZE):
        crontab = work / f"crontab-{n}"
        crontab.write_text(crontab_text(n))
        config = work / f"vigil-{n}.yaml"
        config.write_text(config_text(n, work / "state", work / "sink.jsonl"))
        commands[f"generator-{n}"] = {
            "argv": [str(generator), "{out}", "{out}", "{out}"],
            "crontab": str(crontab),
        }
        commands[f"vigil-{n}"] = {"argv": [*vigil, str(config), "--out", "{out}"], "env": vigil_env}
    out = work / "out"
    out.mkdir()
    plan = {"rounds": rounds, "out": str(out), "commands": commands}
    env = {**os.environ, "BENCH_PYTHON": sys.executable, "BENCH_INNER": BENCH_INNER}
    env["BENCH_PLAN"] = json.dumps(plan)
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", GENERATOR_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise Skip(f"side-by-side run failed: {(result.stderr or result.stdout).strip()[-300:]}")
    times: dict[str, list[float]] = json.loads(result.stdout)
    timers = len(list(out.glob(f"generator-{BASELINE_SIZE}-1/*.timer")))
    if timers < BASELINE_SIZE:
        raise Skip(f"the generator wrote {timers} timers for {BASELINE_SIZE} lines")
    return times, version


def bench_baseline(tmp: Path, compile_rows: list[Row], rounds: int = 5) -> list[Row]:
    try:
        times, version = processes_side_by_side(tmp, rounds)
    except (Skip, subprocess.SubprocessError, OSError) as why:
        return [{"section": "baseline", "what": "systemd-cron generator", "skipped": str(why)}]
    median = {label: statistics.median(values) for label, values in times.items()}
    files = {label: int(median[f"{label}:files"]) for label in times if ":" not in label}
    theirs, ours = median[f"generator-{BASELINE_SIZE}"], median[f"vigil-{BASELINE_SIZE}"]

    def row(label: str, what: str, **extra: Any) -> Row:
        n = BASELINE_SIZE if label.endswith(f"-{BASELINE_SIZE}") else SMALL
        return {
            "section": "baseline",
            "what": f"{what} ({files[label]:,} files)",
            "size": n,
            "seconds": median[label],
            "runs": len(times[label]),
            "per_item_ms": median[label] / n * 1000,
            "files": files[label],
            "target": "-",
            "pass": None,
            **extra,
        }

    rows = [
        row(f"generator-{SMALL}", f"systemd-cron {version} generator, {SMALL} lines"),
        row(f"generator-{BASELINE_SIZE}", f"systemd-cron generator, {BASELINE_SIZE:,} lines"),
        row(
            f"vigil-{SMALL}",
            f"vigil compile, {SMALL} jobs",
            ratio=median[f"vigil-{SMALL}"] / median[f"generator-{SMALL}"],
            baseline_seconds=median[f"generator-{SMALL}"],
            baseline_size=SMALL,
            target=f"<= {SMALL_TARGET:g}x systemd-cron",
            **{"pass": median[f"vigil-{SMALL}"] <= SMALL_TARGET * median[f"generator-{SMALL}"]},
        ),
        row(
            f"vigil-{BASELINE_SIZE}",
            f"vigil compile, {BASELINE_SIZE:,} jobs",
            ratio=ours / theirs,
            baseline_seconds=theirs,
            baseline_size=BASELINE_SIZE,
            target="<= systemd-cron",
            **{"pass": ours <= theirs},
        ),
    ]
    # Start-up (the time for SMALL) apart, what each further job or line costs.
    per_job = {
        tool: (median[f"{tool}-{BASELINE_SIZE}"] - median[f"{tool}-{SMALL}"])
        / (BASELINE_SIZE - SMALL)
        for tool in ("generator", "vigil")
    }
    rows.append(
        {
            "section": "baseline",
            "what": "  each further job (vigil) vs line (systemd-cron)",
            "size": BASELINE_SIZE,
            "seconds": per_job["vigil"] * BASELINE_SIZE,
            "runs": rounds,
            "per_item_ms": per_job["vigil"] * 1000,
            "ratio": per_job["vigil"] / per_job["generator"],
            "baseline_per_item_ms": per_job["generator"] * 1000,
            "target": "-",
            "pass": None,
        }
    )
    build_row = next(
        (r for r in compile_rows if r["stage"] == "build" and r["size"] == BASELINE_SIZE), None
    )
    if build_row:
        rows.append(
            {
                "section": "baseline",
                "what": f"vigil build {BASELINE_SIZE:,} jobs (in-process, no writes)",
                "size": BASELINE_SIZE,
                "seconds": build_row["seconds"],
                "runs": build_row["runs"],
                "per_item_ms": build_row["per_item_ms"],
                "ratio": build_row["seconds"] / theirs,
                "target": "-",
                "pass": None,
            }
        )
    return rows


# --- 3. coordinator throughput -------------------------------------------------------------


def uncapped_spec(state: Path) -> dict[str, Any]:
    spec = bruba_spec(state)
    for source in spec["coordinator"]["sources"].values():
        source["cap"] = None
    spec["coordinator"]["total_cap"] = None
    return spec


def finding(n: int, when: datetime, days: int) -> dict[str, Any]:
    return {
        "source": "reminder-check",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "overdue": [
            {"id": f"R{i:06d}", "title": f"Task {i}", "list": "Immediate", "days_overdue": days}
            for i in range(n)
        ],
    }


def coordinator_day(state: Path, n: int, day: int) -> tuple[dict[str, Any], datetime]:
    """Drop the day's finding; return the spec and the run's time (the run is the caller's)."""
    now = MONDAY_9AM + timedelta(days=day)
    drop(state, finding(n, now, 1 + 3 * day))  # 1, then 4 days overdue: the ladder's 2nd step
    return uncapped_spec(state), now


def bench_coordinator(sizes: list[int], tmp: Path) -> list[Row]:
    figures: dict[str, dict[int, dict[str, Any]]] = {"first": {}, "next day": {}}
    for n in sizes:
        for mode in ("time", "memory"):
            state = tmp / f"coordinator-{n}-{mode}"
            for day, label in enumerate(figures):
                spec, now = coordinator_day(state, n, day)
                counts: dict[str, int] = {}

                def once(
                    spec: dict[str, Any] = spec, now: datetime = now, counts: Row = counts
                ) -> None:
                    with contextlib.redirect_stderr(io.StringIO()):  # its journal lines
                        counts.update(coordinator_run(spec, now))

                entry = figures[label].setdefault(n, {})
                if mode == "time":
                    entry["seconds"] = timed(once)
                    entry["counts"] = dict(counts)
                    messages = delivered(state)
                    lines = messages[-1]["body"].count("\n") + 1 if messages else 0
                    entry["lines"] = lines
                else:
                    entry["peak_bytes"] = traced_peak(once)
    rows: list[Row] = []
    for label, by_size in figures.items():
        seconds = {n: e["seconds"] for n, e in by_size.items()}
        peaks = {n: e["peak_bytes"] for n, e in by_size.items()}
        for n, e in by_size.items():
            target = COORDINATOR_TARGET_S.get(n)
            time_growth, mem_growth = growth(seconds, n), growth(peaks, n)
            ok = target is None or e["seconds"] < target
            if time_growth is not None:
                ok = ok and time_growth <= GROWTH_TARGET
            rows.append(
                {
                    "section": "coordinator",
                    "what": f"coordinator {label}, {n:,} items",
                    "size": n,
                    "seconds": e["seconds"],
                    "runs": 1,
                    "per_item_ms": e["seconds"] / n * 1000,
                    "peak_bytes": e["peak_bytes"],
                    "time_growth": time_growth,
                    "memory_growth": mem_growth,
                    "delivered_lines": e["lines"],
                    "counts": e["counts"],
                    "target": (f"< {target:g} s" if target else "")
                    + (f", growth <= {GROWTH_TARGET:g}x" if time_growth is not None else ""),
                    "pass": ok,
                }
            )
    return rows


# --- the report ----------------------------------------------------------------------------


def report(rows: list[Row]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    header = (
        f"{'measurement':<56} {'runs':>4} {'time':>10} {'per item':>10} {'peak mem':>10} "
        f"{'t growth':>8} {'m growth':>8}  {'target':<28} result"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['what']:<56} skipped: {r['skipped']}")
            continue
        seconds = r["seconds"]
        shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
        per = f"{r['per_item_ms'] * 1000:.1f} us"
        peak = r.get("peak_bytes")
        result = "-" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
        target = r["target"]
        if "ratio" in r:
            target = f"{target} ({r['ratio']:.2f}x)"
        lines.append(
            f"{r['what']:<56} {r['runs']:>4} {shown:>10} {per:>10} "
            f"{num(peak / 2**20 if peak else None, '.1f') + ' MiB' if peak else '-':>10} "
            f"{num(r.get('time_growth'), '.1f') + ('x' if r.get('time_growth') else ''):>8} "
            f"{num(r.get('memory_growth'), '.1f') + ('x' if r.get('memory_growth') else ''):>8}  "
            f"{target:<28} {result}"
        )
    lines.append("")
    lines.append(
        "growth: the figure divided by the one for the size before, per 10x more jobs or items "
        "(linear = 10x);"
    )
    lines.append("peak mem: tracemalloc peak of a separate, identical pass.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="compile 10/100/1,000 jobs, coordinator 1,000 items, no systemd-cron baseline",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a figure misses")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vigil-scale-") as name:
        tmp = Path(name)
        rows = bench_compile(QUICK_SIZES if args.quick else SIZES, args.quick, tmp)
        if args.quick:
            rows.append(
                {"section": "baseline", "what": "systemd-cron generator", "skipped": "--quick"}
            )
        else:
            rows += bench_baseline(tmp, rows)
        coordinator_sizes = QUICK_COORDINATOR_SIZES if args.quick else COORDINATOR_SIZES
        rows += bench_coordinator(coordinator_sizes, tmp)
    print(report(rows))
    elapsed = time.perf_counter() - started
    missed = [r["what"] for r in rows if r.get("pass") is False]
    print(f"\n{len(missed)} missed; bench took {elapsed:.1f} s")
    if args.json:
        figures = {"quick": args.quick, "python": sys.executable, "rows": rows, "missed": missed}
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every benchmark in one run: one table of figures, each beside its baseline, and a JSON file.

    python -m tests.bench [--quick] [--only SECTION ...] [--json PATH] [--python PATH]

(from the repository root; as root, for the sections that need a private systemd user manager
and the systemd-cron baseline). Sections, in order:

- latency: finding -> delivered under a real user manager (file channel), warm (the coordinator
  lingers after a finding) and cold (the first finding after an idle period), beside a bare
  `python -I -c` service behind the same kind of path unit, bare and with vigil's sandbox; the
  idle heartbeat
  (tests/bench/latency.py)
- runner: runner start-up against `python -c "import subprocess; subprocess.run(['true'])"`
  (tests/bench/runner_overhead.py)
- coordinator: 1,000 and 10,000 nag items processed and delivered (tests/bench/scale.py)
- compile: compile and plan for 10 ... 10,000 jobs; `vigil compile` beside Debian's systemd-cron
  generator on the same 1,000 crontab lines, both as processes (tests/bench/scale.py)
- cost: one simulated day of the reference workload against a loopback Messages API, and the
  cost model's monthly estimate, beside the reference design's ~$4/month
  (tests/bench/reference_day.py, compiler/operate/cost.py)
- fleet: a finding on one machine delivered by the coordinator on another through a real
  three-node NATS JetStream cluster (three private user managers), warm and cold, beside the
  local path on the same machine; failover after the active coordinator is killed; a burst's
  findings per second (tests/bench/fleet.py)
- cli: each inspecting command (status, logs, history, watches, inbox, outbox, state, cost),
  `--help` and `--version` through the installed `vigil` script, against a config installed
  under a private user manager, beside `python -I -c "import typer"` (tests/bench/cli.py)

--quick (CI; under a minute): 20 findings, 10 runner runs, compile up to 1,000 jobs, 1,000
coordinator items, two rounds of the systemd-cron comparison, two hours of the reference day.
Every ratio is measured within this run, so the machine's speed cancels out; times are medians.
Exits 0 when every section ran, whether or not each target held (the table says); 1 when a
section failed; `--strict` also exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("latency", "runner", "coordinator", "compile", "cost", "cli", "fleet")
REFERENCE_HEARTBEAT_WAIT_S = 15 * 60 / 2  # the reference design's 15-minute heartbeat, on average

Row = dict[str, Any]


def row(
    section: str,
    measurement: str,
    value: str,
    *,
    baseline: str = "",
    ratio: float | None = None,
    target: str = "",
    ok: bool | None = None,
    **figures: Any,
) -> Row:
    return {
        "section": section,
        "measurement": measurement,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "pass": ok,
        "figures": figures,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def cpu(seconds: float | None) -> str:
    return "n/a" if seconds is None else ms(seconds)


def mib(size: float | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


# --- sections ------------------------------------------------------------------------------


def latency_rows(quick: bool, python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import latency
    from tests.systemd_manager import private_user_manager

    count, idle_runs = (20, 5) if quick else (100, 10)
    with private_user_manager() as manager, latency.manager_environment(manager):
        figures = latency.run_bench(manager, count, 0.2, idle_runs, python)
    warm, cold, idle = figures["warm"], figures["cold"], figures["idle_heartbeat"]
    floor, sandboxed = figures["floor"], figures["sandboxed_floor"]
    bare = f"{ms(floor['median_s'])} bare python -c path unit"
    rows = [
        row(
            "latency",
            f"finding -> delivered, warm, median of {count}",
            ms(warm["median_s"]),
            baseline=bare,
            ratio=figures["warm_ratio"],
            target=f"<= {latency.WARM_TARGET:g}x",
            ok=figures["warm_ratio"] <= latency.WARM_TARGET,
        ),
        row(
            "latency",
            f"finding -> delivered, cold (first after idle), median of {count}",
            ms(cold["median_s"]),
            baseline=f"{ms(sandboxed['median_s'])} the same python -c, vigil's sandbox",
            ratio=figures["cold_ratio"],
            target=f"<= {latency.COLD_TARGET:g}x",
            ok=figures["cold_ratio"] <= latency.COLD_TARGET,
        ),
        row(
            "latency",
            f"finding -> delivered, warm, p99 of {count}",
            ms(warm["p99_s"]),
            baseline=f"{ms(floor['p99_s'])} bare python -c path unit",
            ratio=warm["p99_s"] / floor["p99_s"],
            target=f"< {latency.P99_TARGET_S * 1000:g} ms",
            ok=warm["p99_s"] < latency.P99_TARGET_S,
        ),
        row(
            "latency",
            f"finding -> delivered, cold, p99 of {count}",
            ms(cold["p99_s"]),
            baseline=f"{ms(sandboxed['p99_s'])} the same python -c, vigil's sandbox",
            ratio=cold["p99_s"] / sandboxed["p99_s"],
        ),
        row(
            "latency",
            "median wait vs the reference 15-min heartbeat",
            ms(warm["median_s"]),
            baseline=f"{REFERENCE_HEARTBEAT_WAIT_S:.0f} s average wait",
            ratio=warm["median_s"] / REFERENCE_HEARTBEAT_WAIT_S,
        ),
        row(
            "latency",
            f"idle heartbeat (empty inbox), CPU, median of {idle['runs']}",
            f"{cpu(idle['cpu_s'])} CPU, {ms(idle['exec_wall_s'])} wall",
            baseline=f"{cpu(idle['floor_cpu_s'])} CPU bare python -c service "
            f"({cpu(idle['sandboxed_cpu_s'])} sandboxed as vigil)",
            ratio=idle["cpu_ratio"],
            target=f"<= {latency.IDLE_CPU_TARGET:g}x",
            ok=idle["cpu_ratio"] is not None and idle["cpu_ratio"] <= latency.IDLE_CPU_TARGET,
        ),
        row(
            "latency",
            "idle heartbeat: model tokens spent",
            str(idle["tokens"]),
            target="0, no anthropic/apprise import",
            ok=idle["tokens"] == 0 and not idle["imports_anthropic_or_apprise"],
        ),
    ]
    return rows, figures


def runner_rows(quick: bool, _python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import runner_overhead

    figures = runner_overhead.measure(10 if quick else 30)
    ratio = float(figures["ratio"])
    return [
        row(
            "runner",
            f"shell job `true`, median of {figures['runs']}",
            f"{figures['runner_median_ms']:.1f} ms",
            baseline=f"{figures['baseline_median_ms']:.1f} ms python -c subprocess.run",
            ratio=ratio,
            target=f"<= {runner_overhead.TARGET:g}x",
            ok=ratio <= runner_overhead.TARGET,
        )
    ], figures


def coordinator_rows(quick: bool, _python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import scale

    sizes = scale.QUICK_COORDINATOR_SIZES if quick else scale.COORDINATOR_SIZES
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        found = scale.bench_coordinator(sizes, Path(tmp))
    rows = []
    for r in found:
        growth = r.get("time_growth")
        rows.append(
            row(
                "coordinator",
                f"{r['what']} ({r['delivered_lines']:,} lines delivered)",
                f"{ms(r['seconds'])}, {mib(r['peak_bytes'])}",
                baseline="",
                ratio=None,
                target=r["target"],
                ok=r["pass"],
                time_growth=growth,
                memory_growth=r.get("memory_growth"),
            )
        )
    return rows, {"rows": found}


def compile_rows(quick: bool, _python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import scale

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        found = scale.bench_compile(scale.QUICK_SIZES if quick else scale.SIZES, quick, Path(tmp))
        baseline = scale.bench_baseline(Path(tmp), found, rounds=2 if quick else 7)
    rows = []
    for r in found:
        growth = r.get("time_growth")
        extra = f", growth {growth:.1f}x/10x" if growth else ""
        rows.append(
            row(
                "compile",
                r["what"],
                f"{ms(r['seconds'])}, {mib(r['peak_bytes'])}{extra}",
                target=r["target"] if growth else "",
                ok=r["pass"],
                time_growth=growth,
                memory_growth=r.get("memory_growth"),
            )
        )
    generator = next((r for r in baseline if r["what"].startswith("systemd-cron generator,")), None)
    for r in baseline:
        if "skipped" in r:
            rows.append(row("compile", r["what"], "skipped", target=r["skipped"], ok=None))
            continue
        compared = r.get("ratio")
        against = ""
        if compared is not None and generator is not None and r is not generator:
            seconds, size = r.get("baseline_seconds"), r.get("baseline_size")
            if seconds is None:
                seconds, size = generator["seconds"], generator["size"]
            against = f"{ms(seconds)} systemd-cron, {size:,} lines"
            if "baseline_per_item_ms" in r:
                against = f"{r['baseline_per_item_ms'] * 1000:.0f} us per crontab line"
        value = ms(r["seconds"])
        if "baseline_per_item_ms" in r:
            value = f"{r['per_item_ms'] * 1000:.0f} us per job"
        rows.append(
            row(
                "compile",
                r["what"],
                value,
                baseline=against,
                ratio=compared,
                target=r["target"] if r["target"] != "-" else "",
                ok=r["pass"],
            )
        )
    return rows, {"rows": found, "baseline": baseline}


def cost_rows(quick: bool, _python: str) -> tuple[list[Row], dict[str, Any]]:
    from compiler.language.loader import load_file
    from compiler.language.validate import validate_document
    from compiler.operate.cost import estimate
    from compiler.operate.setup import ConfigView
    from tests.bench import reference_day

    with contextlib.redirect_stdout(io.StringIO()):
        day = reference_day.simulate(quick=quick)
    figures = reference_day.figures(day)
    problems = figures["invariant_problems"]
    jobs = {r["job"]: r for r in figures["jobs"]}
    total = figures["total"]
    hours = "09:00-11:00" if quick else "a whole day"
    reference = reference_day.REFERENCE_TOTAL
    heartbeat = reference_day.REFERENCE_MONTHLY[reference_day.COORDINATOR]
    config = validate_document(load_file(ROOT / "examples" / "bruba.yaml")).config
    said = functools.partial(print, "vigil:", file=sys.stderr)  # a spend ledger's problem
    modelled = sum(r.estimate_usd or 0.0 for r in estimate(ConfigView.of_config(config), warn=said))
    rows = [
        row(
            "cost",
            f"reference workload, {hours}: model calls",
            str(total["calls"]),
            target="no call without news; invariants hold",
            ok=not problems,
            problems=problems,
        ),
        row(
            "cost",
            f"reference workload, {hours}: cost per month (measured tokens x schedule)",
            f"${total['month_schedule']:.3f}",
            baseline=f"${reference:.2f}/month reference design",
            ratio=total["month_schedule"] / reference,
        ),
        row(
            "cost",
            "heartbeat (coordinator) per month",
            f"${jobs[reference_day.COORDINATOR]['month_schedule']:.2f}",
            baseline=f"${heartbeat:.2f}/month LLM heartbeat",
            ratio=jobs[reference_day.COORDINATOR]["month_schedule"] / heartbeat,
            target="$0",
            ok=jobs[reference_day.COORDINATOR]["month_schedule"] == 0,
        ),
        row(
            "cost",
            "`vigil cost` upper bound per month (every firing calls the model)",
            f"${modelled:.2f}",
            baseline=f"${reference:.2f}/month reference design",
            ratio=modelled / reference,
            target="below the reference",
            ok=modelled < reference,
        ),
    ]
    return rows, {"reference_day": figures, "cost_model_monthly_usd": modelled}


def cli_rows(quick: bool, python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import cli

    figures = cli.run_bench(python, 5 if quick else 21)
    bare = figures["bare_python_median_s"]
    rows = [
        row(
            "cli",
            f"vigil {name}, median of {figures['rounds']}",
            ms(found["median_s"]),
            baseline=f"{ms(found['typer_median_s'])} python -I -c 'import typer'",
            ratio=found["ratio"],
            target=f"<= {cli.TARGET:g}x",
            ok=found["pass"],
        )
        for name, found in figures["commands"].items()
    ]
    rows.append(row("cli", "python -I -c pass (reference)", ms(bare)))
    return rows, figures


def fleet_rows(quick: bool, python: str) -> tuple[list[Row], dict[str, Any]]:
    from tests.bench import fleet

    count, trials, burst = (10, 2, 300) if quick else (100, 10, 2000)
    figures = fleet.run_bench(count, 0.2, trials, burst, python)
    warm, cold = figures["fleet_warm"], figures["fleet_cold"]
    local_warm, local_cold = figures["local_warm"], figures["local_cold"]
    moved, flow = figures["failover"], figures["throughput"]
    rows = [
        row(
            "fleet",
            f"finding on one host -> delivered by another, warm, median of {count}",
            ms(warm["median_s"]),
            baseline=f"{ms(local_warm['median_s'])} local file inbox, warm",
            ratio=figures["warm_ratio"],
            target=f"<= {fleet.TARGET:g}x",
            ok=figures["warm_ratio"] <= fleet.TARGET,
        ),
        row(
            "fleet",
            f"finding on one host -> delivered by another, cold, median of {count}",
            ms(cold["median_s"]),
            baseline=f"{ms(local_cold['median_s'])} local file inbox, cold",
            ratio=figures["cold_ratio"],
            target=f"<= {fleet.TARGET:g}x",
            ok=figures["cold_ratio"] <= fleet.TARGET,
        ),
        row(
            "fleet",
            f"finding on one host -> delivered by another, warm, p99 of {count}",
            ms(warm["p99_s"]),
            baseline=f"{ms(local_warm['p99_s'])} local file inbox, warm",
            ratio=warm["p99_s"] / local_warm["p99_s"],
        ),
        row(
            "fleet",
            f"failover: standby active after SIGKILL, median of {moved['trials']}",
            ms(moved["takeover"]["median_s"]),
            baseline=f"lease {moved['lease_s']} s",
            ratio=moved["takeover"]["median_s"] / moved["lease_s"],
            target="<= the lease",
            ok=moved["takeover"]["max_s"] <= moved["lease_s"],
        ),
        row(
            "fleet",
            "failover: a finding sent after the kill delivered, median",
            ms(moved["delivered_after_kill"]["median_s"]),
            baseline=f"lease {moved['lease_s']} s",
        ),
        row(
            "fleet",
            f"throughput: {flow['findings']} findings at once through one coordinator",
            f"{flow['per_second']:.0f} findings/s",
            baseline=f"{flow['seconds']:.1f} s until the last was delivered",
        ),
    ]
    return rows, figures


RUNNERS: dict[str, Callable[[bool, str], tuple[list[Row], dict[str, Any]]]] = {
    "latency": latency_rows,
    "runner": runner_rows,
    "coordinator": coordinator_rows,
    "compile": compile_rows,
    "cost": cost_rows,
    "cli": cli_rows,
    "fleet": fleet_rows,
}


# --- the report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    systemd = subprocess.run(
        ["systemctl", "--version"], capture_output=True, text=True, check=False
    ).stdout.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": f"{memory / 2**30:.1f} GiB RAM" if memory else "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "systemd": systemd,
    }


def table(rows: list[Row]) -> str:
    widths = {"measurement": 62, "value": 26, "baseline": 44, "ratio": 9, "target": 30}
    header = (
        f"{'measurement':<{widths['measurement']}} {'value':>{widths['value']}}  "
        f"{'baseline (same run)':<{widths['baseline']}} {'ratio':>{widths['ratio']}}  "
        f"{'target':<{widths['target']}} result"
    )
    lines = [header, "-" * len(header)]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            lines.append(f"[{section}]")
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        if r["ratio"] is not None and r["ratio"] < 0.01:
            ratio = f"1/{1 / r['ratio']:,.0f}" if r["ratio"] else "0"
        result = {None: "", True: "PASS", False: "MISS"}[r["pass"]]
        if r["pass"] is None and r["value"] == "skipped":
            result = "SKIP"
        lines.append(
            f"{r['measurement'][: widths['measurement']]:<{widths['measurement']}} "
            f"{r['value']:>{widths['value']}}  {r['baseline']:<{widths['baseline']}} "
            f"{ratio:>{widths['ratio']}}  {r['target']:<{widths['target']}} {result}"
        )
    return "\n".join(lines)


def markdown(rows: list[Row], about: dict[str, Any]) -> str:
    """The table as README wants it."""
    box = about["machine"]
    lines = [
        f"Measured {about['date']} on {box['cpu']}, {box['cores']} cores, "
        f"{box['memory']}, Linux {box['kernel']}, Python {box['python']}, {box['systemd']}"
        f"{' (quick mode)' if about['quick'] else ''}.",
        "",
        "| measurement | vigil | baseline (same run) | ratio | target | |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        if r["ratio"] is not None and r["ratio"] < 0.01:
            ratio = f"1/{1 / r['ratio']:,.0f}" if r["ratio"] else "0"
        result = {None: "", True: "met", False: "**missed**"}[r["pass"]]
        cells = [r["measurement"].strip(), r["value"], r["baseline"], ratio, r["target"], result]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI variant, under a minute")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), help="default: %(default)s"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter of the latency section's services (default: this one)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    about = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "quick": args.quick,
        "machine": machine(),
        "command": "python -m tests.bench" + (" --quick" if args.quick else ""),
    }
    rows: list[Row] = []
    details: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for section in args.only or SECTIONS:
        began = time.perf_counter()
        print(f"running {section} ...", file=sys.stderr, flush=True)
        try:
            found, details[section] = RUNNERS[section](args.quick, args.python)
        except Exception as error:  # one broken section still leaves the others' figures
            failed[section] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
            found = [row(section, f"{section} section", "failed", target=failed[section][:200])]
        rows += found
        print(f"  {section}: {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    about["seconds"] = round(time.perf_counter() - started, 1)
    print(table(rows))
    missed = [r["measurement"] for r in rows if r["pass"] is False]
    print(
        f"\n{len(missed)} target(s) missed, {len(failed)} section(s) failed; "
        f"took {about['seconds']} s; figures in {args.json}"
    )
    args.json.write_text(
        json.dumps(
            {**about, "rows": rows, "failed": failed, "details": details}, indent=2, default=str
        )
        + "\n"
    )
    if args.markdown:
        args.markdown.write_text(markdown(rows, about) + "\n")
    if failed:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Finding-to-delivered latency of the coordinator under a real systemd user manager.

Starts a private user manager (tests/systemd_manager.py; root only), installs a small config with
a `file` channel through `vigil apply` (in-process, with the manager's environment, as the tests
do) and measures, one finding at a time, the time from just before the finding is renamed into
the inbox to the moment its delivered line is in the channel's file, on two paths:

- warm: the coordinator a finding started is still there (it lingers, `coordinator.linger`, and
  handles the next finding in-process): the normal case within a burst;
- cold: the first finding after an idle period: the path unit starts the coordinator service
  (sandbox, interpreter, imports, the pass). Each cold sample stops the service first.

Beside them, interleaved in the same run so all share the machine's noise, the floor: a bare
`python -I -c` service behind a path unit of the same kind that moves the file out and appends one
line; and the same floor with the coordinator's sandbox directives, which separates what the
hardening costs at every start (mount and user namespaces, seccomp) from what vigil's own code
costs.

The end of each measurement is taken when the line is there: an inotify watch on the channel's
directory wakes the bench at the write (the file is then read to check the line), with 1 ms
polling where inotify is unavailable. The `delivered` field of the line is not used: it has
whole-second precision and is the coordinator run's start time, not the moment of the write.

Also measured: an idle heartbeat (the coordinator service started with an empty inbox, as its
timer starts it: one pass, no lingering): wall time and CPU time (systemd's CPUUsageNSec, or the
kernel's cgroup v2 cpu.stat where systemd's accounting is off) beside the floor's service, bare
and sandboxed, and that it spent no tokens.

Targets: warm median at most the bare floor's (1.0x), cold median at most 1.3x the sandboxed
floor's, warm p99 under 100 ms, idle heartbeat CPU at most 2x the bare service's. All paths use
the same interpreter (`--python`, default: the one running the bench). An interpreter whose
site-packages hold an editable install (`pip install -e`) runs that install's import finder at
every start, which makes the floor slower and the ratio smaller than with a regular install; the
report says so.

    python -m tests.bench.latency [-n 100 | --quick] [--python PATH] [--json PATH]
    (from the repository root, as root)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner.dirwatch import IN_CREATE, IN_MODIFY, inotify
from tests.systemd_manager import ManagerUnavailable, UserManager, private_user_manager

NAME = "lat"
WARM_TARGET = 1.0
"""Warm median / bare floor median."""
COLD_TARGET = 1.3
"""Cold median / sandboxed floor median."""
P99_TARGET_S = 0.1
"""Warm p99."""
IDLE_CPU_TARGET = 2.0
"""Idle heartbeat CPU / the bare service's."""
REFERENCE_HEARTBEAT_S = 15 * 60
"""The reference setup polls on a 15-minute heartbeat: a finding waits 7.5 minutes on average."""
TIMEOUT_S = 30.0
WARM_UP_TIMEOUT_S = 120.0
"""A route's first finding, not counted, pays what happens once: a fleet coordinator creating
its JetStream consumer, whose API calls it retries every 5 s on a busy machine."""
CONFIG = """\
name: {name}
state_dir: {state}
channels:
  sink: {{file: {sink}}}
coordinator:
  deliver_to: [sink]
  sources:
    bench: {{external: true}}
"""
# The floor: move every inbox file out, append one line naming them. argv: inbox, out, file.
# One line without `"`, `\\`, `$` or `%`, so it goes into ExecStart= as it is.
FLOOR_CODE = (
    "import os,sys;i,o,s=sys.argv[1:4];n=os.listdir(i);"
    "[os.rename(os.path.join(i,x),os.path.join(o,x)) for x in n];"
    "f=os.open(s,os.O_WRONLY|os.O_APPEND|os.O_CREAT,0o600);"
    "os.write(f,(' '.join(n)+chr(10)).encode());os.close(f)"
)
FLOOR_PATH = """\
[Unit]
Description=latency floor: start a bare python when a file lands

[Path]
DirectoryNotEmpty={inbox}
MakeDirectory=yes
Unit={name}-floor.service
"""
FLOOR_SERVICE = """\
[Unit]
Description=latency floor: bare python -I -c
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart={argv}
"""


# -- waiting for a line -------------------------------------------------------------------------


class LineWatch:
    """Wakes when a file in `directory` is written (inotify), or polls every millisecond."""

    def __init__(self, directory: Path) -> None:
        self.fd = inotify(str(directory), IN_MODIFY | IN_CREATE)
        self.method = "inotify" if self.fd >= 0 else "polling every 1 ms"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)

    def wait(self, done: Callable[[], bool], timeout: float = TIMEOUT_S) -> float:
        """perf_counter() at the first wake-up at which done() is true."""
        deadline = time.perf_counter() + timeout
        while True:
            now = time.perf_counter()
            if done():
                return now
            if now >= deadline:
                raise TimeoutError(f"no delivered line after {timeout:g} s")
            if self.fd >= 0:
                ready, _, _ = select.select([self.fd], [], [], deadline - now)
                if ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.fd, 65536)
            else:
                time.sleep(0.001)


class Sink:
    """An append-only file of lines, read from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[str] = []

    def has(self, needle: str) -> bool:
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self.offset += len(complete)
            self.lines += complete.decode("utf-8").splitlines()
        return any(needle in line for line in self.lines)


# -- the two paths ------------------------------------------------------------------------------


class Route:
    """One way from a renamed file to a delivered line: the floor's bare service (and, by
    default, any route whose service exits after each file)."""

    def __init__(
        self, label: str, unit: str, inbox: Path, sink: Path, watch: LineWatch, scratch: Path
    ) -> None:
        self.label = label
        self.unit = unit
        self.inbox = inbox
        self.sink = Sink(sink)
        self.watch = watch
        self.scratch = scratch
        self.samples: list[float] = []

    def prepare(self, manager: UserManager) -> None:
        """Before each sample (and before the idle gap that precedes it)."""

    def settle(self, manager: UserManager) -> None:
        """After each sample: the service has exited and its path unit watches again."""
        wait_idle(manager, self.unit)

    def deliver(self, marker: str, timeout: float = TIMEOUT_S) -> float:
        """Rename a finding carrying `marker` into the inbox; seconds until its line is there."""
        temp = self.scratch / f"{marker}.json"
        finding = {"source": "bench", "timestamp": "2026-01-01T00:00:00Z", "message": marker}
        temp.write_text(json.dumps(finding))
        start = time.perf_counter()
        os.rename(temp, self.inbox / temp.name)
        return self.watch.wait(lambda: self.sink.has(marker), timeout) - start

    def measure(self, manager: UserManager, number: int, timeout: float = TIMEOUT_S) -> None:
        marker = f"{self.label}-{number:05d}-{os.urandom(4).hex()}"
        self.samples.append(self.deliver(marker, timeout))
        self.settle(manager)


class WarmRoute(Route):
    """vigil's coordinator while it lingers after a finding: the next one is handled in-process."""

    def prepare(self, manager: UserManager) -> None:
        if not lingering(manager, self.unit):  # start it with a finding that is not counted
            self.deliver(f"{self.label}-start-{os.urandom(4).hex()}")
        if not lingering(manager, self.unit):
            raise RuntimeError(f"{self.unit} did not stay after its pass (coordinator.linger)")

    def settle(self, manager: UserManager) -> None:
        if not lingering(manager, self.unit):
            raise RuntimeError(f"{self.unit} exited while it should linger")


class ColdRoute(Route):
    """vigil's coordinator for the first finding after an idle period: a start by the path unit."""

    def prepare(self, manager: UserManager) -> None:
        manager.systemctl("stop", self.unit)  # a lingering run exits at once (SIGTERM)
        wait_idle(manager, self.unit)

    def settle(self, manager: UserManager) -> None:
        """It lingers now; the next prepare() stops it."""


def interleave(manager: UserManager, order: list[Route], count: int, gap: float) -> None:
    """A warm-up sample of each route (page cache, bytecode caches; not counted), then
    `count` of each, interleaved so all share the machine's noise."""
    for route in order:
        route.prepare(manager)
        route.measure(manager, -1, WARM_UP_TIMEOUT_S)
        route.samples.clear()
    for number in range(count):
        shift = number % len(order)  # each route goes first, second... in turn
        for route in order[shift:] + order[:shift]:
            route.prepare(manager)
            time.sleep(gap)
            route.measure(manager, number)


def lingering(manager: UserManager, unit: str) -> bool:
    """Whether the coordinator's run is still going (a oneshot is `activating` until it exits)."""
    return manager.show(unit, "ActiveState")["ActiveState"] in ("activating", "active")


def wait_idle(manager: UserManager, unit: str) -> None:
    """Until the service has exited and its path unit watches again."""
    manager.wait_for(
        lambda: manager.show(unit, "ActiveState")["ActiveState"] in ("inactive", "failed"),
        timeout=TIMEOUT_S,
        interval=0.01,
        what=f"{unit} to finish",
    )
    result = manager.show(unit, "Result")["Result"]
    if result != "success":
        raise RuntimeError(f"{unit} ended with Result={result}")


def install_vigil(manager: UserManager, work: Path, python: str) -> dict[str, Path]:
    state, sink = work / "state", work / "deliveries" / "vigil.jsonl"
    sink.parent.mkdir(parents=True)
    config = work / f"{NAME}.yaml"
    config.write_text(CONFIG.format(name=NAME, state=state, sink=sink))
    from typer.testing import CliRunner

    from compiler.cli.commands import app

    argv = ["apply", str(config), "--yes", "--python", python]
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"vigil apply failed:\n{result.stdout}{result.stderr}")
    manager.wait_for(lambda: (state / "inbox").is_dir(), what="the inbox")
    return {"state": state, "inbox": state / "inbox", "sink": sink}


def install_floor(
    manager: UserManager, work: Path, python: str, label: str = "floor", hardening: str = ""
) -> dict[str, Path]:
    inbox, out, sink = work / label / "inbox", work / label / "out", work / f"{label}.jsonl"
    out.mkdir(parents=True)
    argv = f'{python} -I -c "{FLOOR_CODE}" {inbox} {out} {sink}'
    unit = f"{NAME}-{label}"
    service = FLOOR_SERVICE.format(argv=argv)
    if hardening:
        service += f"{hardening}ReadWritePaths=-{work}\n"
    manager.write_unit(f"{unit}.service", service)
    path_unit = FLOOR_PATH.format(inbox=inbox, name=NAME).replace(f"{NAME}-floor", unit)
    manager.write_unit(f"{unit}.path", path_unit)
    manager.systemctl("daemon-reload")
    manager.systemctl("start", f"{unit}.path")
    manager.wait_for(lambda: inbox.is_dir(), what=f"the {label}'s inbox")
    return {"inbox": inbox, "sink": sink}


def coordinator_hardening(manager: UserManager) -> str:
    """The sandbox directives of the installed coordinator service, as lines to append."""
    text = (manager.unit_dir / f"{NAME}-coordinator.service").read_text()
    service = text.split("[Service]", 1)[1]
    keep = [
        line
        for line in service.splitlines()
        if line
        and not line.startswith("#")
        and not line.startswith(("Type=", "ExecStart=", "TimeoutStartSec=", "SyslogIdentifier="))
        and not line.startswith(("ReadWritePaths=", "LoadCredential="))
    ]
    return "".join(f"{line}\n" for line in keep)


# -- idle heartbeat -----------------------------------------------------------------------------


def app_slice_cpu(manager: UserManager) -> float | None:
    """CPU seconds used so far by the manager's app.slice (cgroup v2 cpu.stat, which counts
    the processes of removed child cgroups too), or None where it cannot be read."""
    stat = manager.cgroup / "user.slice" / "user-0.slice" / "user@0.service" / "app.slice"
    try:
        fields = dict(line.split() for line in (stat / "cpu.stat").read_text().splitlines())
    except (OSError, ValueError):
        return None
    return int(fields["usage_usec"]) / 1e6 if "usage_usec" in fields else None


def started_once(manager: UserManager, unit: str) -> tuple[float, float, float | None, str]:
    """Start a oneshot and wait for its end: (systemctl wall, exec wall, CPU, CPU source)."""
    slice_before = app_slice_cpu(manager)
    start = time.perf_counter()
    manager.systemctl("start", unit)  # a oneshot: returns when it has exited
    wall = time.perf_counter() - start
    slice_after = app_slice_cpu(manager)
    shown = manager.show(
        unit,
        "Result",
        "CPUUsageNSec",
        "ExecMainStartTimestampMonotonic",
        "ExecMainExitTimestampMonotonic",
    )
    if shown["Result"] != "success":
        raise RuntimeError(f"{unit} ended with Result={shown['Result']}")
    exec_wall = int(shown["ExecMainExitTimestampMonotonic"]) - int(
        shown["ExecMainStartTimestampMonotonic"]
    )
    cpu = shown.get("CPUUsageNSec", "")
    if cpu.isdigit() and int(cpu) < 2**63:
        return wall, exec_wall / 1e6, int(cpu) / 1e9, "CPUUsageNSec"
    if slice_before is not None and slice_after is not None:
        # systemd's CPUAccounting is off (e.g. hybrid cgroups): the kernel still counts.
        source = "cgroup v2 cpu.stat of app.slice (systemd's CPUUsageNSec not set)"
        return wall, exec_wall / 1e6, slice_after - slice_before, source
    return wall, exec_wall / 1e6, None, "unavailable (no CPUUsageNSec, no cgroup v2 cpu.stat)"


def idle_heartbeat(manager: UserManager, state: Path, runs: int) -> dict[str, Any]:
    """The coordinator started with an empty inbox (as its timer starts it: one pass, then it
    exits), interleaved with the floor's services started with an empty inbox (a bare
    interpreter that lists a directory and exits), bare and with vigil's sandbox."""
    unit = f"{NAME}-coordinator.service"
    floors = {"floor": f"{NAME}-floor.service", "sandboxed": f"{NAME}-sandboxed.service"}
    manager.systemctl("stop", unit)  # a run the latency samples left lingering
    walls, unit_walls, cpus = [], [], []
    floor_walls: dict[str, list[float]] = {label: [] for label in floors}
    floor_cpus: dict[str, list[float]] = {label: [] for label in floors}
    accounting = "CPUUsageNSec"
    for _ in range(runs):
        before = len(coordinator_runs(state))
        wall, exec_wall, cpu, accounting = started_once(manager, unit)
        walls.append(wall)
        unit_walls.append(exec_wall)
        if cpu is not None:
            cpus.append(cpu)
        records = manager.wait_for(
            lambda before=before: coordinator_runs(state)[before:],
            what="the idle run's record",
        )
        if records[-1]["findings"] != 0:
            raise RuntimeError(f"the idle run found something: {records[-1]}")
        for label, floor in floors.items():
            time.sleep(0.05)
            _, exec_wall, cpu, _ = started_once(manager, floor)
            floor_walls[label].append(exec_wall)
            if cpu is not None:
                floor_cpus[label].append(cpu)
        time.sleep(0.05)
    return {
        "runs": runs,
        "systemctl_start_wall_s": median(walls),
        "exec_wall_s": median(unit_walls),
        "exec_wall_from": "ExecMainStartTimestampMonotonic..ExecMainExitTimestampMonotonic",
        "cpu_s": median(cpus) if cpus else None,
        "cpu_from": accounting,
        "floor_exec_wall_s": median(floor_walls["floor"]),
        "floor_cpu_s": median(floor_cpus["floor"]) if floor_cpus["floor"] else None,
        "sandboxed_exec_wall_s": median(floor_walls["sandboxed"]),
        "sandboxed_cpu_s": median(floor_cpus["sandboxed"]) if floor_cpus["sandboxed"] else None,
    }


def coordinator_runs(state: Path) -> list[dict[str, Any]]:
    path = state / "runs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [run for run in map(json.loads, lines) if run.get("kind") == "coordinator"]


def editable_finder(python: str) -> bool:
    """Whether `python -I` loads an editable install's import finder at every start."""
    code = "import sys; print(any(m.startswith('__editable__') for m in sys.modules))"
    result = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return result.stdout.strip() == "True"


def imports_anthropic(work: Path, python: str) -> bool:
    """Run one idle coordinator pass (on a scratch state directory) and look at sys.modules."""
    spec_path = Path(os.environ["XDG_DATA_HOME"]) / "vigil" / NAME / "current" / "specs"
    spec = json.loads((spec_path / "coordinator.json").read_text())
    spec["state_dir"] = str(work / "scratch-state")
    scratch_spec = work / "scratch-coordinator.json"
    scratch_spec.write_text(json.dumps(spec))
    code = (
        "import sys; from runner.__main__ import main; main(['coordinator', sys.argv[1]]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'apprise')))"
    )
    result = subprocess.run(
        [python, "-I", "-c", code, str(scratch_spec)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return result.stdout.strip() != "[]"


# -- figures ------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile (with fewer than 100 samples: the largest)."""
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": median(samples),
        "p99_s": p99(samples),
        "min_s": min(samples),
        "max_s": max(samples),
    }


def run_bench(
    manager: UserManager, count: int, gap: float, idle_runs: int, python: str
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=manager.root))
    scratch = work / "writer"  # same filesystem as both inboxes: rename() is atomic
    scratch.mkdir()
    vigil = install_vigil(manager, work, python)
    floor = install_floor(manager, work, python)
    hardening = coordinator_hardening(manager)
    sandboxed = install_floor(manager, work, python, "sandboxed", hardening)
    watch_vigil, watch_floor = LineWatch(vigil["sink"].parent), LineWatch(work)
    coordinator = f"{NAME}-coordinator.service"
    routes = {
        "warm": WarmRoute("warm", coordinator, vigil["inbox"], vigil["sink"], watch_vigil, scratch),
        "cold": ColdRoute("cold", coordinator, vigil["inbox"], vigil["sink"], watch_vigil, scratch),
        "floor": Route(
            "floor", f"{NAME}-floor.service", floor["inbox"], floor["sink"], watch_floor, scratch
        ),
        # The same bare python with the coordinator's sandbox: what the hardening costs.
        "sandboxed": Route(
            "sandboxed",
            f"{NAME}-sandboxed.service",
            sandboxed["inbox"],
            sandboxed["sink"],
            watch_floor,
            scratch,
        ),
    }
    try:
        interleave(manager, list(routes.values()), count, gap)
    finally:
        watch_vigil.close()
        watch_floor.close()
    vigil_runs = coordinator_runs(vigil["state"])
    idle = idle_heartbeat(manager, vigil["state"], idle_runs)
    all_runs = coordinator_runs(vigil["state"])
    idle["tokens"] = sum(
        int(r.get("tokens_in") or 0) + int(r.get("tokens_out") or 0) for r in all_runs
    )
    idle["cost_usd"] = sum(float(r.get("cost_usd") or 0) for r in all_runs)
    idle["imports_anthropic_or_apprise"] = imports_anthropic(work, python)
    figures = {label: summary(route.samples) for label, route in routes.items()}
    warm, cold = figures["warm"], figures["cold"]
    warm_ratio = warm["median_s"] / figures["floor"]["median_s"]
    cold_ratio = cold["median_s"] / figures["sandboxed"]["median_s"]
    idle_cpu_ratio = (
        idle["cpu_s"] / idle["floor_cpu_s"] if idle["cpu_s"] and idle["floor_cpu_s"] else None
    )
    idle["cpu_ratio"] = idle_cpu_ratio
    return {
        "findings": count,
        "gap_s": gap,
        "end_of_measurement": watch_vigil.method,
        "python": python,
        "editable_finder_at_start": editable_finder(python),
        "warm": warm,
        "cold": cold,
        "floor": figures["floor"],
        "sandboxed_floor": figures["sandboxed"],
        "sandbox_directives": hardening.splitlines(),
        "warm_ratio": warm_ratio,
        "cold_ratio": cold_ratio,
        "cold_ratio_to_bare_floor": cold["median_s"] / figures["floor"]["median_s"],
        "targets": {
            "warm_ratio": WARM_TARGET,
            "cold_ratio": COLD_TARGET,
            "warm_p99_s": P99_TARGET_S,
            "idle_cpu_ratio": IDLE_CPU_TARGET,
        },
        "vs_reference_heartbeat": (REFERENCE_HEARTBEAT_S / 2) / warm["median_s"],
        "coordinator_runs_during_latency": len(vigil_runs),
        "idle_heartbeat": idle,
        "within_targets": warm_ratio <= WARM_TARGET
        and cold_ratio <= COLD_TARGET
        and warm["p99_s"] < P99_TARGET_S
        and idle_cpu_ratio is not None
        and idle_cpu_ratio <= IDLE_CPU_TARGET,
        "samples_s": {label: route.samples for label, route in routes.items()},
    }


def report(figures: dict[str, Any]) -> str:
    idle = figures["idle_heartbeat"]

    def ms(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds * 1000:8.1f} ms"

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    lines = [
        f"finding -> delivered, {figures['findings']} findings each, interleaved "
        f"(end of measurement: {figures['end_of_measurement']})",
        f"{'':34}{'median':>11}{'p99':>11}{'min':>11}{'max':>11}",
    ]
    rows = (
        ("vigil, warm (lingering)", figures["warm"]),
        ("vigil, cold (first after idle)", figures["cold"]),
        ("floor: bare python -I -c", figures["floor"]),
        ("the same, sandboxed as vigil", figures["sandboxed_floor"]),
    )
    for label, row in rows:
        lines.append(
            f"{label:34}{ms(row['median_s'])}{ms(row['p99_s'])}{ms(row['min_s'])}{ms(row['max_s'])}"
        )
    warm_p99 = figures["warm"]["p99_s"]
    lines += [
        f"warm / bare floor: {figures['warm_ratio']:.2f}x (target <= {WARM_TARGET:g}x: "
        f"{verdict(figures['warm_ratio'] <= WARM_TARGET)})",
        f"cold / sandboxed floor: {figures['cold_ratio']:.2f}x (target <= {COLD_TARGET:g}x: "
        f"{verdict(figures['cold_ratio'] <= COLD_TARGET)}); cold / bare floor: "
        f"{figures['cold_ratio_to_bare_floor']:.2f}x",
        f"warm p99: {ms(warm_p99).strip()} (target < {P99_TARGET_S * 1000:g} ms: "
        f"{verdict(warm_p99 < P99_TARGET_S)})",
        f"vs the reference 15-minute heartbeat (average wait 450 s): "
        f"{figures['vs_reference_heartbeat']:,.0f}x sooner",
        f"idle heartbeat (empty inbox, median of {idle['runs']}): "
        f"systemctl start {ms(idle['systemctl_start_wall_s']).strip()}, "
        f"exec wall {ms(idle['exec_wall_s']).strip()}, CPU {ms(idle['cpu_s']).strip()} "
        f"(CPU from {idle['cpu_from']}); a bare python -c service: exec wall "
        f"{ms(idle['floor_exec_wall_s']).strip()}, CPU {ms(idle['floor_cpu_s']).strip()}; "
        f"sandboxed as vigil: exec wall {ms(idle['sandboxed_exec_wall_s']).strip()}, "
        f"CPU {ms(idle['sandboxed_cpu_s']).strip()}",
        "idle heartbeat CPU / bare service: "
        + (
            "n/a"
            if idle["cpu_ratio"] is None
            else f"{idle['cpu_ratio']:.2f}x (target <= {IDLE_CPU_TARGET:g}x: "
            f"{verdict(idle['cpu_ratio'] <= IDLE_CPU_TARGET)})"
        ),
        f"tokens spent by the coordinator: {idle['tokens']} (cost ${idle['cost_usd']:.2f}); "
        f"imports anthropic/apprise on the idle path: "
        f"{'yes' if idle['imports_anthropic_or_apprise'] else 'no'}",
    ]
    if figures["editable_finder_at_start"]:
        lines.append(
            "note: this interpreter loads an editable install's import finder at every start; "
            "it slows the floor more than vigil (which needs those modules anyway), so the "
            "ratio is lower than with a regular install (--python)"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def manager_environment(manager: UserManager) -> Iterator[None]:
    """os.environ as the tests' monkeypatch sets it: the manager's HOME, XDG_* and bus."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(manager.env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="findings per path (default 100)")
    parser.add_argument("--quick", action="store_true", help="20 findings, 5 idle runs")
    parser.add_argument("--gap", type=float, default=0.2, help="idle seconds before each finding")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter of the runner and of the floor (default: this one); it must be able "
        "to `import runner` in isolated mode",
    )
    args = parser.parse_args()
    count, idle_runs = (20, 5) if args.quick else (args.n, 10)
    try:
        with private_user_manager() as manager, manager_environment(manager):
            figures = run_bench(manager, count, args.gap, idle_runs, args.python)
    except ManagerUnavailable as error:
        print(f"no private systemd user manager: {error}", file=sys.stderr)
        return 2
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["within_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())

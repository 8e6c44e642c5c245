"""`vigil status --fleet` against a real three-node NATS cluster: hosts installed with
`apply --root` into homes of their own, their reports published by the real forwarder, the
lease written as the coordinator writes it; and the view itself from hand-made reports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runner.clock import iso
from tests.conftest import ROOT
from tests.nats_cluster import NatsCluster, free_ports, nats_cluster  # noqa: F401 (the fixture)
from tests.runner_support import runner_env
from tests.test_cli_imports import heavy
from tests.test_runner_imports import imported_modules

LEASE = 300
CONFIG = """\
name: demo
timezone: UTC
{secrets}
fleet:
  servers: [{servers}]
  lease: 5m
{credentials}
hosts: [laptop, vps, homeserver]
jobs:
  disk:
    hosts: all
    schedule: "*/30 * * * *"
    run: "true"
  digest:
    host: vps
    schedule: "0 7 * * *"
    run: "true"
channels:
  log:
    file: ~/deliveries.jsonl
coordinator:
  deliver_to: [log]
  hosts: [vps, homeserver]
"""


def fleet_config(servers: list[str], secret: Path | None = None, comment: str = "") -> str:
    text = CONFIG.format(
        servers=", ".join(servers),
        secrets=f"secrets:\n  nats: {secret}" if secret else "",
        credentials="  credentials: nats" if secret else "",
    )
    return text + comment


def vigil(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *map(str, args)],
        cwd=home, env=runner_env(HOME=str(home)), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def install(tmp_path: Path, host: str, text: str) -> Path:
    """A home of its own with the config applied for `host`; the home."""
    home = tmp_path / host
    home.mkdir()
    (home / "fleet.yaml").write_text(text)
    applied = vigil(home, "apply", "fleet.yaml", "--root", home, "--host", host, "--yes")
    assert applied.returncode == 0, applied.stderr
    return home


def state_of(home: Path) -> Path:
    return home / ".local/state/vigil/demo"


def record(job: str, start: str, result: str, exit_status: int, reason: str = "") -> str:
    """One line of runs.jsonl, as runner.history.RunRecord writes it."""
    return json.dumps({
        "job": job, "kind": "job", "config": "demo", "invocation_id": None,
        "start": start, "end": start, "duration_s": 0.1, "exit_status": exit_status,
        "result": result, "reason": reason or None, "command_exit": exit_status,
        "finding_written": False, "findings": 0, "tokens_in": 0, "tokens_out": 0,
        "cost_usd": 0.0, "model": None,
    })  # fmt: skip


def write_runs(home: Path, lines: list[str]) -> None:
    state = state_of(home)
    state.mkdir(parents=True, exist_ok=True)
    (state / "runs.jsonl").write_text("".join(line + "\n" for line in lines))


def forward(home: Path) -> None:
    """The host's forwarder, as its heartbeat timer runs it: it publishes the report."""
    spec = home / ".local/share/vigil/demo/current/specs/forward.json"
    env = runner_env(HOME=str(home))
    env.pop("TRIGGER_UNIT", None)
    result = subprocess.run(
        [sys.executable, "-m", "runner", "forward", str(spec)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wait in outgoing" not in result.stderr, result.stderr


def set_up_fleet(servers: list[str], lease_holder: str | None = None) -> None:
    """The stream and buckets, as the first coordinator makes them; and the lease."""
    from runner.fleet.client import Connection
    from runner.fleet.jetstream import JetStream
    from runner.fleet.leader import setup
    from runner.fleet.names import LEASE_KEY, lease_bucket

    with Connection(servers) as connection:
        stream = JetStream(connection)
        setup(stream, "demo", LEASE)
        if lease_holder:
            value = {"host": lease_holder, "pid": 4242, "since": "2026-12-07T06:00:00Z"}
            stream.put(lease_bucket("demo"), LEASE_KEY, json.dumps(value).encode())


def test_the_fleet_at_a_glance(nats_cluster: NatsCluster, tmp_path: Path) -> None:  # noqa: F811
    text = fleet_config(nats_cluster.urls)
    laptop = install(tmp_path, "laptop", text)
    vps = install(tmp_path, "vps", text + "# edited on the vps\n")  # another config: drift
    set_up_fleet(nats_cluster.urls, lease_holder="vps")
    write_runs(laptop, [
        record("disk", "2026-12-07T09:30:00.000Z", "ok", 0),
        record("disk", "2026-12-07T10:00:00.000Z", "failed", 1, "command exited 1"),
        record("disk", "2026-12-07T10:30:00.000Z", "timeout", 4, "ran past 30s"),
    ])  # fmt: skip
    write_runs(vps, [
        record("digest", "2026-12-07T07:00:00.000Z", "ok", 0),
        record("disk", "2026-12-07T10:30:00.000Z", "ok", 0),
    ])  # fmt: skip
    forward(laptop)
    forward(vps)

    shown = vigil(laptop, "status", "--fleet", "fleet.yaml")
    assert shown.returncode == 1, shown.stdout + shown.stderr  # a job failing, a host silent
    out = shown.stdout
    lines = out.splitlines()
    assert lines, shown.stderr
    laptop_line = next(line for line in lines if line.startswith("laptop:"))
    vps_line = next(line for line in lines if line.startswith("vps:"))
    assert laptop_line.startswith("laptop: generation 1, config ")
    assert "drift" not in laptop_line and "coordinator" not in laptop_line
    assert "reported 0s ago" in laptop_line or "reported 1s ago" in laptop_line, laptop_line
    assert "drift: differs from this config" in vps_line, vps_line
    assert vps_line.endswith("coordinator: active"), vps_line
    assert "homeserver: never reported, coordinator: standby" in lines
    assert "coordinator active on vps since 2026-12-07 06:00:00 UTC" in lines[0], lines[0]

    def rows_of(host: str) -> list[list[str]]:
        start = lines.index(next(line for line in lines if line.startswith(f"{host}:")))
        table = []
        for line in lines[start + 2 :]:
            if not line.startswith("  "):
                break
            table.append(line.split())
        return table

    assert lines[lines.index(laptop_line) + 1].split() == [
        "JOB", "LAST_RUN", "RESULT", "NEXT_RUN", "FAILURES_IN_ROW", "NOTE"
    ]  # fmt: skip
    assert rows_of("laptop") == [
        ["disk", "2026-12-07", "10:30:00", "UTC", "timeout", "-", "2", "ran", "past", "30s"]
    ]
    assert rows_of("vps") == [
        ["digest", "2026-12-07", "07:00:00", "UTC", "ok", "-", "0"],
        ["disk", "2026-12-07", "10:30:00", "UTC", "ok", "-", "0"],
    ]

    as_json = json.loads(
        vigil(laptop, "status", "--fleet", "--config", "fleet.yaml", "--json").stdout
    )
    hosts = {host["host"]: host for host in as_json["hosts"]}
    assert list(hosts) == ["laptop", "vps", "homeserver"]
    assert as_json["lease"]["host"] == "vps"
    assert hosts["vps"]["drift"] is True and hosts["laptop"]["drift"] is False
    assert hosts["vps"]["config_hash"] != as_json["config_hash"] == hosts["laptop"]["config_hash"]
    assert hosts["homeserver"]["reported"] is None and hosts["homeserver"]["silent"] is True
    assert hosts["laptop"]["jobs"][0]["failures_in_row"] == 2
    assert hosts["laptop"]["generation"] == 1

    # From a machine where nothing is installed: the file, validated, gives the same fleet.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fleet.yaml").write_text(text)
    shown = vigil(elsewhere, "status", "--fleet", "fleet.yaml")
    assert shown.returncode == 1, shown.stderr
    assert "vps: generation 1" in shown.stdout and "drift" in shown.stdout
    assert "laptop: generation 1" in shown.stdout


def test_the_secret_file_is_read_and_never_shown(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The fleet's credential comes from the file `secrets:` maps it to (the forwarder's
    LoadCredential=); a server without authorization takes any."""
    secret = "~/.config/vigil/secrets/nats"
    laptop = install(tmp_path, "laptop", fleet_config(nats_cluster.urls, Path(secret)))
    shown = vigil(laptop, "status", "--fleet", "fleet.yaml")
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout == ""
    assert shown.stderr.strip() == (
        "vigil: cannot read the fleet credential 'nats' "
        f"({laptop}/.config/vigil/secrets/nats): No such file or directory"
    )
    (laptop / ".config/vigil/secrets").mkdir(parents=True)
    (laptop / ".config/vigil/secrets/nats").write_text("laptop:hunter2-secret\n")
    set_up_fleet(nats_cluster.urls)
    shown = vigil(laptop, "status", "--fleet", "fleet.yaml")
    assert "laptop: never reported" in shown.stdout, shown.stderr
    assert "no coordinator active" in shown.stdout
    assert "hunter2" not in shown.stdout + shown.stderr


def test_unreachable_nats_is_one_line_and_exit_1(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    laptop = install(tmp_path, "laptop", fleet_config([f"nats://127.0.0.1:{port}"]))
    shown = vigil(laptop, "status", "--fleet", "fleet.yaml")
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr.splitlines() == [
        "vigil: cannot reach the fleet's NATS: no NATS server answered "
        f"(nats://127.0.0.1:{port}: Connection refused)"
    ]


def test_a_config_without_fleet_exits_2(tmp_path: Path) -> None:
    (tmp_path / "vigil.yaml").write_text((ROOT / "examples/minimal.yaml").read_text())
    shown = vigil(tmp_path, "status", "--fleet", "vigil.yaml")
    assert shown.returncode == 2
    assert shown.stderr.strip().splitlines()[-1] == "vigil: --fleet needs a config with fleet:"
    both = vigil(tmp_path, "status", "--fleet", "vigil.yaml", "--config", "vigil.yaml")
    assert both.returncode == 2
    missing = vigil(tmp_path, "status", "--fleet", "nowhere.yaml")
    assert missing.returncode == 2 and "nowhere.yaml" in missing.stderr


def test_status_fleet_of_an_installed_config_loads_nothing_heavy(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    laptop = install(tmp_path, "laptop", fleet_config([f"nats://127.0.0.1:{port}"]))
    modules = imported_modules(
        "status", "--fleet", laptop / "fleet.yaml", module="compiler.cli",
        env={"HOME": str(laptop)},
    )  # fmt: skip
    assert heavy(modules) == []
    assert "compiler.operate.fleetstatus" in modules


# --- the view, from hand-made reports ------------------------------------------------------------

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def report(host: str, config_hash: str, *, minutes_ago: int, **fields: Any) -> dict[str, Any]:
    return {
        "version": 1, "host": host, "config": "demo", "config_hash": config_hash,
        "generation": 2, "reported": iso(NOW - timedelta(minutes=minutes_ago)),
        "heartbeat": 900, "waiting": 0, "coordinator": False, "jobs": {}, **fields,
    }  # fmt: skip


def settings(**fields: Any) -> Any:
    from compiler.operate.fleetstatus import FleetSettings

    base: dict[str, Any] = {
        "config": "demo", "servers": ("nats://127.0.0.1:4222",), "credential": None,
        "credential_file": None, "host": "laptop", "hosts": ("laptop", "vps", "pi"),
        "coordinator_hosts": ("vps",), "config_hash": "a" * 64, "heartbeat": 900,
        "timezone": "Europe/Berlin",
    }  # fmt: skip
    return FleetSettings(**{**base, **fields})


def view(reports: dict[str, dict[str, Any]], lease: dict[str, Any] | None = None) -> str:
    import contextlib
    import io

    from compiler.cli.tables import show_fleet
    from compiler.operate.fleetstatus import Snapshot, fleet_status

    shown = fleet_status(settings(), Snapshot(reports, lease, []), NOW)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        show_fleet(shown, "Europe/Berlin", as_json=False)
    return out.getvalue()


def test_a_silent_host_its_waiting_findings_and_a_stranger_are_said() -> None:
    out = view({
        "laptop": report("laptop", "a" * 64, minutes_ago=31, waiting=3),
        "vps": report("vps", "a" * 64, minutes_ago=29, coordinator=True),
        "old-nas": report("old-nas", "b" * 64, minutes_ago=2),
    })  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == ("demo: 3 hosts, this config aaaaaaaa on 2 of them, no coordinator active")
    assert (
        "laptop: generation 2, config aaaaaaaa, reported 31m ago (2026-12-07 12:29:00 CET), "
        "silent (heartbeat 15m), 3 finding(s) waiting in outgoing/"
    ) in lines
    assert (
        "vps: generation 2, config aaaaaaaa, reported 29m ago (2026-12-07 12:31:00 CET), "
        "coordinator: standby"
    ) in lines
    assert "pi: never reported" in lines
    assert (
        "old-nas: generation 2, config bbbbbbbb (drift: differs from this config), "
        "reported 2m ago (2026-12-07 12:58:00 CET), not one of this config's hosts"
    ) in lines
    assert "  no jobs" in lines


def test_drift_says_when_most_hosts_run_another_config() -> None:
    out = view({
        "laptop": report("laptop", "a" * 64, minutes_ago=1),
        "vps": report("vps", "c" * 64, minutes_ago=1),
        "pi": report("pi", "c" * 64, minutes_ago=1),
    })  # fmt: skip
    assert "vps: generation 2, config cccccccc (drift: not this config, but most hosts')" in out
    assert "this config aaaaaaaa on 1 of them" in out


def test_report_ages() -> None:
    from compiler.operate.fleetstatus import age

    assert [age(s) for s in (0, 59, 60, 7199, 7200, 172799, 172800)] == [
        "0s", "59s", "1m", "119m", "2h", "47h", "2d"
    ]  # fmt: skip

"""Several machines, compiler side: a config with `fleet:` compiles for one host at a time
(`--host`, default this machine), which gets its jobs, a forwarder, and on a coordinator host
the long-running coordinator; its specs carry the fleet. Bad fleet configs are in
tests/cases/bad/ (fleet-*.yaml)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

from compiler.errors import ExitCode, UsageError, VigilError
from compiler.generate.build import build
from compiler.layout import Scope
from compiler.operate.control import run_now, units_of
from compiler.operate.setup import ConfigView
from compiler.operate.status import collect
from runner.contract import FLEET_LEASE
from tests.conftest import ROOT, require_systemd_analyze

FLEET = ROOT / "examples" / "fleet.yaml"
HASH = hashlib.sha256(FLEET.read_bytes()).hexdigest()
COMMON = {"fleet-failure@.service", "fleet-forward.path", "fleet-forward.service"}
COMMON |= {"fleet-forward.timer"}


def job(name: str) -> set[str]:
    return {f"fleet-{name}.service", f"fleet-{name}.timer"}


UNITS = {
    "laptop": COMMON | job("disk"),
    "homeserver": COMMON | job("disk") | job("backup") | {"fleet-coordinator.service"},
    "vps": COMMON | job("disk") | job("digest") | job("logins") | {"fleet-coordinator.service"},
}


def tree_of(host: str) -> dict[str, bytes]:
    return {path: f.content for path, f in build(FLEET, host=host)[1].items()}


def spec(tree: dict[str, bytes], name: str) -> dict:
    return json.loads(tree[f"specs/{name}.json"])


@pytest.mark.parametrize("host", UNITS)
def test_each_host_gets_its_jobs_the_forwarder_and_its_coordinator(host: str) -> None:
    tree = tree_of(host)
    assert {p.removeprefix("units/") for p in tree if p.startswith("units/")} == UNITS[host]
    assert not [p for p in tree if p.endswith(("coordinator.path", "coordinator.timer"))]
    manifest = json.loads(tree["manifest.json"])
    assert manifest["host"] == host
    assert manifest["config"]["sha256"] == HASH
    assert manifest["units"]["fleet-forward.path"] == {"start": True}
    assert manifest["units"]["fleet-forward.timer"] == {"start": True}
    assert manifest["units"]["fleet-forward.service"] == {"start": False}
    if "fleet-coordinator.service" in UNITS[host]:  # long-running: apply enables and starts it
        assert manifest["units"]["fleet-coordinator.service"] == {"start": True}


@pytest.mark.parametrize("host", UNITS)
def test_specs_carry_the_fleet_as_this_host_is_compiled(host: str) -> None:
    tree = tree_of(host)
    fleet = {
        "servers": ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"],
        "credential": "nats-credentials",
        "host": host,
        "hosts": ["laptop", "homeserver", "vps"],
        "coordinator_hosts": ["vps", "homeserver"],
        "lease": FLEET_LEASE,
        "config_hash": HASH,
        "tls_ca": None,
    }
    forward = spec(tree, "forward")
    assert forward["kind"] == "forward" and forward["unit"] == "fleet-forward.service"
    assert forward["fleet"] == fleet
    assert forward["heartbeat"] == 900
    jobs = sorted(p.removeprefix("specs/").removesuffix(".json") for p in tree)
    local = {name for name in ("backup", "digest", "disk", "logins") if name in jobs}
    assert forward["jobs"] == {
        name: {"unit": f"fleet-{name}.service", "timer": f"fleet-{name}.timer"} for name in local
    }
    for name in local:
        assert spec(tree, name)["host"] == host
        # A prompt job books its calls in the fleet's spend ledger: it needs the connection.
        assert spec(tree, name).get("fleet") == (fleet if name == "logins" else None)
    if "specs/coordinator.json" in tree:  # the fleet's coordinator: every host's jobs
        coordinator = spec(tree, "coordinator")
        assert coordinator["fleet"] == fleet
        assert coordinator["jobs"] == ["backup", "digest", "disk", "logins"]
    else:
        assert host == "laptop"


def test_the_fleet_units_say_what_they_are() -> None:
    tree = tree_of("vps")
    coordinator = tree["units/fleet-coordinator.service"].decode()
    for line in ("Type=exec", "Restart=always", "RestartSec=2s", "KillMode=mixed"):
        assert f"\n{line}\n" in coordinator
    assert "TimeoutStartSec" not in coordinator
    assert "LoadCredential=nats-credentials:%h/.config/vigil/secrets/nats-credentials" in (
        coordinator
    )
    assert "WantedBy=default.target" in coordinator
    forward = tree["units/fleet-forward.service"].decode()
    for line in ("Type=oneshot", "StartLimitIntervalSec=0", "OnFailure=fleet-failure@%n.service"):
        assert f"\n{line}\n" in forward
    assert "ExecStart=%h/.local/share/vigil/fleet/current/bin/fleet-forward\n" in forward
    assert "LoadCredential=nats-credentials:" in forward
    path = tree["units/fleet-forward.path"].decode()
    assert "DirectoryNotEmpty=%h/.local/state/vigil/fleet/inbox" in path
    assert "MakeDirectory=yes" in path and "Unit=fleet-forward.service" in path
    heartbeat = tree["units/fleet-forward.timer"].decode()
    assert "OnActiveSec=15min" in heartbeat and "OnUnitActiveSec=15min" in heartbeat
    script = tree["bin/fleet-forward"].decode().splitlines()[-1]
    assert ' forward "${0%/bin/*}/specs/forward.json" "$@"' in script


def test_without_credentials_nothing_is_loaded(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET.read_text().replace("  credentials: nats-credentials\n", ""))
    tree = build(config, host="vps")[1]
    assert json.loads(tree["specs/forward.json"].content)["fleet"]["credential"] is None
    assert b"LoadCredential" not in tree["units/fleet-forward.service"].content
    assert b"LoadCredential=nats" not in tree["units/fleet-logins.service"].content


def test_a_prompt_job_gets_the_fleet_credential_and_others_do_not() -> None:
    tree = tree_of("vps")
    credential = "LoadCredential=nats-credentials:%h/.config/vigil/secrets/nats-credentials"
    assert credential in tree["units/fleet-logins.service"].decode().splitlines()
    assert "nats-credentials" not in tree["units/fleet-digest.service"].decode()


@pytest.mark.parametrize(
    ("machine", "host"), [("vps", "vps"), ("homeserver.example.org", "homeserver")]
)
def test_the_host_defaults_to_this_machine(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, host: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: machine)
    result = vigil("compile", FLEET, "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "manifest.json").read_text())["host"] == host


def test_a_machine_that_is_not_a_host_must_name_one(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "desktop")
    compiled = vigil("compile", FLEET, "--out", tmp_path / "out")
    planned = vigil("plan", FLEET, "--root", tmp_path / "root")
    for result in (compiled, planned):
        assert result.exit_code == 2, result.stderr
        assert result.stderr == (
            "vigil: this machine (desktop) is not one of the fleet's hosts: "
            "laptop, homeserver, vps; pass --host\n"
        )
    assert not (tmp_path / "out").exists()


def test_an_unknown_host_is_exit_2_naming_the_hosts(vigil, tmp_path: Path) -> None:
    result = vigil("compile", FLEET, "--out", tmp_path / "out", "--host", "desktop")
    assert result.exit_code == 2
    assert result.stderr == (
        "vigil: --host desktop is not one of the fleet's hosts: laptop, homeserver, vps\n"
    )
    assert not (tmp_path / "out").exists()


def test_host_without_a_fleet_is_exit_2(vigil, tmp_path: Path) -> None:
    minimal = ROOT / "examples" / "minimal.yaml"
    for command in (("compile", minimal, "--out", tmp_path / "out"), ("plan", minimal)):
        result = vigil(*command, "--host", "vps")
        assert result.exit_code == 2
        assert result.stderr == "vigil: --host vps: demo has no `fleet:` (it runs on one machine)\n"


def test_apply_installs_one_host_into_a_tree(vigil, tmp_path: Path) -> None:
    require_systemd_analyze()  # apply verifies the units first
    root = tmp_path / "root"
    result = vigil("apply", FLEET, "--root", root, "--host", "vps", "--yes")
    assert result.exit_code == 0, result.stderr
    data = root / ".local/share/vigil/fleet"
    manifest = json.loads((data / "current/manifest.json").read_text())
    assert manifest["host"] == "vps" and manifest["config"]["sha256"] == HASH
    meta = json.loads((data / "current/generation.json").read_text())
    # not the others' jobs
    assert meta["jobs_changed"] == {"digest": "new", "disk": "new", "logins": "new"}
    unit_dir = root / ".config/systemd/user"
    assert {p.name for p in unit_dir.iterdir() if p.is_file()} == UNITS["vps"]
    links = {p.relative_to(unit_dir).as_posix() for p in unit_dir.glob("*.wants/*")}
    assert links == {
        "default.target.wants/fleet-coordinator.service",
        "paths.target.wants/fleet-forward.path",
        "timers.target.wants/fleet-forward.timer",
        "timers.target.wants/fleet-digest.timer",
        "timers.target.wants/fleet-disk.timer",
        "timers.target.wants/fleet-logins.timer",
    }
    assert os.readlink(unit_dir / "default.target.wants/fleet-coordinator.service") == (
        "../fleet-coordinator.service"
    )
    again = vigil("plan", FLEET, "--root", root, "--host", "vps", "--check")
    assert again.exit_code == 0, again.stderr
    assert "No changes." in again.stderr
    history = vigil("history", "--root", root)
    assert history.exit_code == 0, history.stderr
    # Another host's tree is a change of every host-specific file.
    other = vigil("plan", FLEET, "--root", root, "--host", "homeserver", "--check")
    assert other.exit_code == 1, other.stderr


def setup_of(host: str) -> ConfigView:
    return ConfigView.of_tree(tree_of(host))


def test_status_reads_a_host_without_the_coordinator(tmp_path: Path) -> None:
    laptop = setup_of("laptop")
    assert laptop.targets == ["disk"]
    rows = collect(laptop, Scope(root=tmp_path), tmp_path, warn=pytest.fail)
    assert [(row.name, row.kind) for row in rows] == [("disk", "job")]
    with pytest.raises(UsageError, match="does not run fleet's coordinator"):
        units_of(laptop, "coordinator")


def test_status_and_run_know_the_fleet_coordinator_is_long_running(tmp_path: Path) -> None:
    vps = setup_of("vps")
    assert units_of(vps, "coordinator") == ["fleet-coordinator.service"]
    rows = collect(vps, Scope(root=tmp_path), tmp_path, warn=pytest.fail)
    assert [(row.name, row.kind) for row in rows] == [
        ("digest", "job"),
        ("disk", "job"),
        ("logins", "job"),
        ("coordinator", "coordinator"),
    ]
    with pytest.raises(VigilError, match="the fleet coordinator is a long-running service") as err:
        run_now(vps, Scope(), tmp_path, "coordinator", wait=False)
    assert err.value.exit_code == ExitCode.FAILED

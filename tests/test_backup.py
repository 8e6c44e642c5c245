"""`vigil export` and `vigil import` on `--root` trees, each standing for a machine's home: a
round trip, archives damaged or hostile in every way refused before anything is written,
newer versions refused, no secret in an archive, existing setups refused, fleets refused."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler import __version__
from compiler.backup import archive
from tests.conftest import ROOT, fleet_hosts, require_systemd_analyze
from tests.test_apply_root import snapshot

Manifest = dict[str, Any]
Entries = list[tuple[tarfile.TarInfo, bytes]]
Change = Callable[[Manifest, Entries], Entries]
"""How a test damages an archive: its manifest (changed in place) and members, to members."""

TOKEN = "sk-very-distinctive-token-4711"

CONFIG = """\
name: bk
timezone: UTC
secrets:
  api: ~/.config/vigil/secrets/api
jobs:
  hello:
    schedule: "*/15 * * * *"
    run: "echo hi"
    secrets: [api]
channels:
  sink:
    file: ~/sink.jsonl
coordinator:
  deliver_to: [sink]
nag:
  todo: {source: hello, items: overdue, key: id, ladder: [{min_count: 1, message: "{id}"}]}
"""


LAST_TRIGGER = 1_790_000_000.5
"""The hello timer's last trigger on the old machine (its Persistent= stamp's mtime)."""


class Machine:
    """A home directory standing for a machine: HOME points at it while the test uses it."""

    name = "bk"
    """The config's `name:`, which names its state and data directories."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.home, self.monkeypatch = home, monkeypatch
        home.mkdir(parents=True, exist_ok=True)

    def enter(self) -> Machine:
        self.monkeypatch.setenv("HOME", str(self.home))
        self.monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        return self

    @property
    def state(self) -> Path:
        return self.home / ".local/state/vigil" / self.name

    @property
    def data(self) -> Path:
        return self.home / ".local/share/vigil" / self.name

    def secret(self) -> None:
        path = self.home / ".config/vigil/secrets/api"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TOKEN + "\n")


@pytest.fixture
def machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Machine, Machine]:
    require_systemd_analyze()  # apply verifies the units first
    return Machine(tmp_path / "old", monkeypatch), Machine(tmp_path / "new", monkeypatch)


def installed(vigil, old: Machine) -> Path:
    """The config applied on `old`, with state as its coordinator leaves it."""
    old.enter().secret()
    config = old.home / "agent/vigil.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG)
    for _ in range(2):  # two generations
        result = vigil("apply", config, "--root", old.home, "--yes")
        assert result.exit_code == 0, result.stderr
        config.write_text(config.read_text().replace("*/15", "*/20"))
    (old.state / "state").mkdir(parents=True)
    nag = {"version": 1, "items": {"x": {"count": 1, "status": "active"}}}
    (old.state / "state/nag-todo.json").write_text(json.dumps(nag))
    watch = {"version": 1, "instances": {"k": {"state": "armed", "path": f"{old.home}/w/k"}}}
    (old.state / "state/watch-w.json").write_text(json.dumps(watch))
    (old.state / "outbox").mkdir()
    (old.state / "outbox/m1.json").write_text('{"title": "undelivered"}')
    (old.state / "runs.jsonl").write_text('{"job": "hello", "result": "ok"}\n')
    (old.state / "running").mkdir()
    (old.state / "running/hello.json").write_text('{"pid": 1}')
    (old.state / ".coordinator.lock").write_text("")
    stamp = old.home / ".local/share/systemd/timers/stamp-bk-hello.timer"
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    os.utime(stamp, (LAST_TRIGGER, LAST_TRIGGER))
    return config


def exported(vigil, machines: tuple[Machine, Machine], tmp_path: Path) -> Path:
    old, _new = machines
    config = installed(vigil, old)
    out = tmp_path / "bk.tar.gz"
    result = vigil("export", "--out", out, "--config", config, "--root", old.home)
    assert result.exit_code == 0, result.stderr
    return out


def test_round_trip_restores_state_history_and_generations(vigil, machines, tmp_path) -> None:
    old, new = machines
    out = exported(vigil, machines, tmp_path)
    before = snapshot(old.state)
    new.enter().secret()
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    after = snapshot(new.state)
    assert after["outbox/m1.json"] == before["outbox/m1.json"]
    assert after["runs.jsonl"] == before["runs.jsonl"]
    assert after["state/nag-todo.json"] == before["state/nag-todo.json"]
    assert "running/hello.json" not in after and ".coordinator.lock" not in after
    watch = json.loads(after["state/watch-w.json"])
    assert watch["instances"]["k"]["path"] == f"{new.home}/w/k"  # the old home is not kept
    assert sorted(p.name for p in (new.data / "generations").iterdir()) == ["1", "2", "3"]
    assert os.readlink(new.data / "current") == "generations/3"
    meta = json.loads((new.data / "generations/3/generation.json").read_text())
    assert "import from bk.tar.gz (generation 2" in meta["reason"]
    config = new.home / "agent/vigil.yaml"  # where it was, under the new home
    assert config.read_text() == (old.data / "generations/2/config.yaml").read_text()
    assert (new.home / ".config/systemd/user/bk-hello.timer").is_file()
    stamp = new.home / ".local/share/systemd/timers/stamp-bk-hello.timer"
    assert stamp.stat().st_mtime == LAST_TRIGGER  # Persistent= catches up the move
    again = vigil("plan", config, "--root", new.home, "--check")
    assert again.exit_code == 0, again.stderr


def test_export_lists_secrets_and_never_holds_one(vigil, machines, tmp_path) -> None:
    old, _new = machines
    installed(vigil, old)
    (old.state / "state/leak.json").write_text(json.dumps({"token": TOKEN}))
    out = tmp_path / "leak.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 1 and "secret 'api'" in result.stderr
    assert TOKEN not in result.stderr and not out.exists()
    assert not list(tmp_path.glob(".leak.tar.gz.*"))  # a failed export leaves nothing
    (old.state / "state/leak.json").unlink()
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 0, result.stderr
    assert "api: ~/.config/vigil/secrets/api" in result.stderr
    raw = out.read_bytes()
    assert TOKEN.encode() not in raw and TOKEN.encode() not in gzip.decompress(raw)
    manifest = read_manifest(out)
    assert manifest["secrets"] == [{"name": "api", "path": "~/.config/vigil/secrets/api"}]
    assert manifest["format"] == archive.FORMAT and manifest["name"] == "bk"


def read_manifest(path: Path) -> Manifest:
    with tarfile.open(path) as tar:
        first = tar.next()
        assert first is not None and first.name == archive.MANIFEST
        handle = tar.extractfile(first)
        assert handle is not None
        return json.loads(handle.read())


def rebuilt(path: Path, change: Change) -> bytes:
    """The archive's members (manifest parsed), changed by `change`, written again."""
    with tarfile.open(path) as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar]  # type: ignore[union-attr]
    manifest = json.loads(members[0][1])
    members = change(manifest, members[1:])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        text = json.dumps(manifest).encode()
        info = tarfile.TarInfo(archive.MANIFEST)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def changed_member(name: str, edit: Callable[[bytes], bytes]) -> Change:
    """The member `name` edited, listed in the manifest as edited (a consistent archive)."""

    def change(manifest: Manifest, members: Entries) -> Entries:
        changed = []
        for info, content in members:
            if info.name == name:
                content = edit(content)
                info.size = len(content)
                manifest["members"][name] = archive.Member(name, content).entry().to_json()
            changed.append((info, content))
        return changed

    return change


def _extra(_manifest: Manifest, members: Entries) -> Entries:
    info = tarfile.TarInfo("state/extra.json")
    info.size = 2
    return [*members, (info, b"{}")]


def _link(kind: bytes, target: str) -> Change:
    def change(manifest: Manifest, members: Entries) -> Entries:
        info = tarfile.TarInfo("state/state/evil.json")
        info.type, info.linkname = kind, target
        manifest["members"]["state/state/evil.json"] = archive.Member("x", b"").entry().to_json()
        return [*members, (info, b"")]

    return change


def _traversal(manifest: Manifest, members: Entries) -> Entries:
    info = tarfile.TarInfo("state/../../escape.json")
    info.size = 2
    manifest["members"][info.name] = archive.Member(info.name, b"{}").entry().to_json()
    return [*members, (info, b"{}")]


def _absolute(manifest: Manifest, members: Entries) -> Entries:
    info = tarfile.TarInfo("/tmp/escape.json")
    info.size = 2
    manifest["members"][info.name] = archive.Member(info.name, b"{}").entry().to_json()
    return [*members, (info, b"{}")]


def _missing(_manifest: Manifest, members: Entries) -> Entries:
    return [m for m in members if m[0].name != "state/runs.jsonl"]


def _bad_hash(manifest: Manifest, members: Entries) -> Entries:
    manifest["members"]["state/runs.jsonl"]["sha256"] = "0" * 64
    return members


def _newer_format(manifest: Manifest, members: Entries) -> Entries:
    manifest["format"] = archive.FORMAT + 1
    return members


def _newer_vigil(manifest: Manifest, members: Entries) -> Entries:
    manifest["vigil"] = "99.0.0"
    return members


REBUILT = {
    "extra member": (_extra, "not in the manifest"),
    "symlink member": (_link(tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    "hard link member": (_link(tarfile.LNKTYPE, "config.yaml"), "not a regular file"),
    "path traversal": (_traversal, "unsafe or unknown path"),
    "absolute path": (_absolute, "unsafe or unknown path"),
    "missing member": (_missing, "listed in the manifest but missing"),
    "bad manifest hash": (_bad_hash, "does not match its sha256"),
    "newer format": (_newer_format, f"archive format {archive.FORMAT + 1} (written by vigil"),
    "newer vigil": (_newer_vigil, "written by vigil 99.0.0, newer than this vigil"),
}


def _damaged(kind: str, out: Path) -> bytes:
    raw = out.read_bytes()
    if kind == "truncated":
        return raw[: len(raw) // 2]
    if kind == "flipped byte":
        middle = len(raw) // 2
        return raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :]
    if kind == "not gzip":
        return b"hello" + raw
    return rebuilt(out, REBUILT[kind][0])


def refused(vigil, new: Machine, bad: Path, content: bytes):  # type: ignore[no-untyped-def]
    """Import `content` (written to `bad`) on `new`: refused as bad input, nothing written."""
    bad.write_bytes(content)
    new.enter().secret()
    before = snapshot(new.home)
    result = vigil("import", bad, "--root", new.home, "--yes")
    assert result.exit_code == 2, result.stderr
    assert snapshot(new.home) == before
    return result


@pytest.mark.parametrize("kind", ["truncated", "flipped byte", "not gzip", *REBUILT])
def test_a_damaged_or_hostile_archive_is_refused_before_anything_is_written(
    vigil, machines, tmp_path, kind: str
) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    result = refused(vigil, new, tmp_path / "bad.tar.gz", _damaged(kind, out))
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    if kind in REBUILT:
        assert REBUILT[kind][1] in result.stderr
    if kind.startswith("newer"):  # both versions named
        assert f"vigil {__version__}" in result.stderr
    assert not (tmp_path / "escape.json").exists()


def test_an_existing_setup_is_refused_unless_replace(vigil, machines, tmp_path) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    (new.state / "state").mkdir(parents=True)
    (new.state / "state/nag-todo.json").write_text("{}")
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 1 and "is not empty: nothing was written" in result.stderr
    assert not (new.home / "agent/vigil.yaml").exists()
    result = vigil("import", out, "--root", new.home, "--yes", "--replace")
    assert result.exit_code == 0, result.stderr
    aside = list(new.state.parent.glob("bk.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "state/nag-todo.json").read_text() == "{}"
    result = vigil("import", out, "--root", new.home, "--yes", "--replace")
    assert result.exit_code == 1 and "installed here already" in result.stderr


def test_missing_secrets_are_named_and_refused_unless_skipped(vigil, machines, tmp_path) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter()
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 1, result.stderr
    assert "secret api:" in result.stderr and "copy it from the old machine" in result.stderr
    assert not new.state.exists() and not (new.home / "agent").exists()
    result = vigil("import", out, "--root", new.home, "--yes", "--skip-secret-check")
    assert result.exit_code == 0, result.stderr
    assert "warning: secret api" in result.stderr


def test_an_existing_other_config_file_is_never_overwritten(vigil, machines, tmp_path) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    mine = new.home / "agent/vigil.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: mine\n")
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 2 and "--config-out" in result.stderr
    assert mine.read_text() == "name: mine\n" and not new.state.exists()
    elsewhere = tmp_path / "elsewhere.yaml"
    result = vigil("import", out, "--root", new.home, "--yes", "--config-out", elsewhere)
    assert result.exit_code == 0, result.stderr
    assert "name: bk" in elsewhere.read_text()


def test_import_without_yes_off_a_terminal_writes_nothing(vigil, machines, tmp_path) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    before = snapshot(new.home)
    result = vigil("import", out, "--root", new.home)
    assert result.exit_code == 1 and "--yes" in result.stderr
    assert snapshot(new.home) == before


def test_a_fleet_config_is_refused(vigil, tmp_path, monkeypatch) -> None:
    require_systemd_analyze()
    monkeypatch.setenv("HOME", str(tmp_path))
    fleet = next(p for p in (ROOT / "examples").glob("*.yaml") if "fleet:" in p.read_text())
    config = tmp_path / fleet.name
    config.write_text(fleet.read_text())
    first = fleet_hosts(config)[0]  # installed as its first host
    args = ["--host", first] if first else []
    result = vigil("apply", config, "--root", tmp_path, "--yes", "--skip-package-check", *args)
    assert result.exit_code == 0, result.stderr
    result = vigil("export", "--out", tmp_path / "f.tar.gz", "--config", config, "--root", tmp_path)
    assert result.exit_code == 2 and "not supported on a fleet" in result.stderr
    assert not (tmp_path / "f.tar.gz").exists()


def test_history_and_rollback_work_after_an_import(vigil, machines, tmp_path) -> None:
    from compiler.install.generations import history
    from compiler.layout import Scope

    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    assert vigil("import", out, "--root", new.home, "--yes").exit_code == 0
    rows = history(Scope(root=new.home), "bk")
    assert [(row["generation"], row["current"]) for row in rows] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert rows[0]["reason"] == "apply" and rows[2]["reason"].startswith("import from")
    timer = new.home / ".config/systemd/user/bk-hello.timer"
    assert "/20" in timer.read_text()
    result = vigil("rollback", "1", "--name", "bk", "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    assert os.readlink(new.data / "current") == "generations/4"
    assert "/15" in timer.read_text()  # the first generation's schedule, from the old machine


def test_an_archive_whose_config_does_not_validate_is_refused(vigil, machines, tmp_path) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)

    bad = tmp_path / "bad.tar.gz"
    edit = changed_member(archive.CONFIG, lambda c: c.replace(b'"*/20', b'"*/99'))
    result = refused(vigil, new, bad, rebuilt(out, edit))
    assert f"{bad}:config.yaml:" in result.stderr


def test_export_copies_the_state_between_two_coordinator_passes(vigil, machines, tmp_path) -> None:
    """A pass changes several files (nag counts, outbox, claims): export waits for its end."""
    import fcntl
    import threading

    from compiler.backup.export import export
    from compiler.install.generations import Installation
    from compiler.layout import Scope
    from compiler.operate.setup import read_installed
    from runner.contract import COORDINATOR_LOCK

    old, _new = machines
    installed(vigil, old)
    found = read_installed(Installation(Scope(root=old.home), "bk"))
    assert found is not None
    out = tmp_path / "during.tar.gz"
    with open(old.state / COORDINATOR_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a coordinator pass in progress
        worker = threading.Thread(target=export, args=(found.installation, found.setup, out))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not out.exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join(10)
    assert not worker.is_alive() and out.exists()


def test_a_system_setup_round_trips(vigil, machines, tmp_path) -> None:
    """System scope keeps the state inside the data directory (/var/lib/vigil/NAME/state)."""
    old, new = machines
    old.enter().secret()
    config = tmp_path / "bk.yaml"
    config.write_text(CONFIG)
    assert vigil("apply", config, "--system", "--root", old.home, "--yes").exit_code == 0
    state = old.home / "var/lib/vigil/bk/state"
    (state / "state").mkdir(parents=True)
    (state / "state/nag-todo.json").write_text('{"version": 1, "items": {}}')
    out = tmp_path / "system.tar.gz"
    result = vigil("export", "--out", out, "--config", config, "--system", "--root", old.home)
    assert result.exit_code == 0, result.stderr
    new.enter().secret()
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 2 and "import it with --system" in result.stderr
    result = vigil("import", out, "--system", "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    data = new.home / "var/lib/vigil/bk"
    assert (data / "state/state/nag-todo.json").read_text() == '{"version": 1, "items": {}}'
    assert os.readlink(data / "current") == "generations/2"
    assert (new.home / "etc/systemd/system/bk-hello.timer").is_file()

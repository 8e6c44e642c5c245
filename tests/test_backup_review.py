"""REVIEW REPRODUCTIONS (branch review-backup): each test here states what `vigil export` /
`vigil import` should do and FAILS on main where it does not. They are findings, not
regression tests of behaviour main has; numbers match the review report (R1, R2, ...)."""

# ruff: noqa: F811  (the `machines` fixture is imported from test_backup)
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from compiler.backup import archive
from tests.conftest import ROOT
from tests.test_backup import (  # noqa: F401  (machines is a fixture)
    TOKEN,
    Entries,
    Machine,
    Manifest,
    exported,
    installed,
    machines,
    rebuilt,
    refused,
)

CLI = "from compiler.cli.commands import main; main()"


def cli(home: Path, *args: object, prelude: str = "", limit_as: int | None = None):
    """`vigil ARGS` as a real process (HOME=home), so a traceback shows as it would to a user."""
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("XDG_CONFIG_HOME", None)

    def limits() -> None:
        if limit_as is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    return subprocess.run(
        [sys.executable, "-c", prelude + CLI, *[str(a) for a in args]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        preexec_fn=limits,
        timeout=300,
    )


def with_member(name: str, content: bytes, listed: bool = True):
    def change(manifest: Manifest, members: Entries) -> Entries:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        if listed:
            manifest["members"][name] = archive.Member(name, content).entry()
        return [*members, (info, content)]

    return change


def with_manifest(**fields: object):
    def change(manifest: Manifest, members: Entries) -> Entries:
        manifest.update(fields)
        return members

    return change


# --- R1: an archive's size is unbounded: a 174-byte archive makes import allocate 10 GB -----


def test_R1_sparse_bomb_is_refused_without_reading_it_into_memory(tmp_path) -> None:
    """GNU tar stores a 10 GiB file of zeros (or any hole) in 174 bytes. import reads the whole
    archive, and then every member, into memory before looking at the manifest: under a 1 GiB
    address-space limit that is a MemoryError traceback (without a limit: the OOM killer)."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar needed to write a sparse member")
    work = tmp_path / "a"
    (work / "state").mkdir(parents=True)
    (work / "vigil-export.json").write_text('{"members": {}, "name": "bk", "scope": "user", '
                                           '"vigil": "0.0.1", "format": 1}')  # fmt: skip
    (work / "state/big").touch()
    os.truncate(work / "state/big", 10 * 2**30)
    bomb = tmp_path / "bomb.tar.gz"
    subprocess.run(["tar", "--sparse", "-czf", bomb, "vigil-export.json", "state/big"],
                   cwd=work, check=True)  # fmt: skip
    assert bomb.stat().st_size < 1000
    home = tmp_path / "new"
    home.mkdir()
    result = cli(home, "import", bomb, "--root", home, "--yes", limit_as=2**30)
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 2 and "not in the manifest" in result.stderr


# --- R2: a generation directory named with a non-ASCII digit passes safe_path ---------------


def test_R2_a_unicode_digit_generation_is_refused(vigil, machines, tmp_path) -> None:
    """safe_path accepts `generations/²/...` because str.isdigit() is true for '²'; the
    import then crashes inside apply (int('²')) after the state was restored, with a
    traceback. ('١', Arabic-Indic one, even passes int() and collides with generation 1.)"""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(rebuilt(out, with_member("generations/²/config.yaml", b"name: bk\n")))
    new.enter().secret()
    result = cli(new.home, "import", bad, "--root", new.home, "--yes")
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 2 and "unsafe or unknown path" in result.stderr
    assert not new.state.exists()


# --- R3: manifest fields are used unchecked: tracebacks, some after writing -----------------


@pytest.mark.parametrize(
    "fields",
    [
        {"config": "a string"},  # .get on str in _former_path (before anything is written)
        {"counts": ["x"]},  # backupview._contents
        {"timers": ["bk-hello.timer"]},  # .items() on a list, in restore(): after writing
        {"timers": {"bk-hello.timer": 1e300}},  # os.utime OverflowError, after writing
        {"timers": {"bk-hello.timer": float("nan")}},  # ValueError, after writing
    ],
    ids=["config-str", "counts-list", "timers-list", "timer-1e300", "timer-nan"],
)
def test_R3_a_malformed_manifest_is_refused_as_bad_input(vigil, machines, tmp_path, fields) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(rebuilt(out, with_manifest(**fields)))
    new.enter().secret()
    result = cli(new.home, "import", bad, "--root", new.home, "--yes")
    assert "Traceback" not in result.stderr, result.stderr[-500:]
    assert result.returncode == 2, result.stderr
    assert not new.state.exists(), "state restored before the manifest was found bad"


# --- R4: version comparison --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "here", "refused_"),
    [
        ("0.2rc1", "0.2.0", False),  # a pre-release of 0.2.0 is older: (0,2,1) > (0,2,0)
        ("0.2.dev3", "0.2.0", False),  # same
        ("0.1.0", "unknown", False),  # a vigil with no metadata refuses every archive
        ("unknown", "0.1.0", True),  # an archive of unknown version is accepted silently
    ],
)
def test_R4_version_comparison(written: str, here: str, refused_: bool) -> None:
    manifest = {"vigil": written, "format": archive.FORMAT}
    try:
        archive.check_versions(Path("a.tar.gz"), manifest, here)
        was_refused = False
    except archive.ArchiveError:
        was_refused = True
    assert was_refused == refused_


@pytest.mark.parametrize("value", [0, -1, True], ids=["zero", "negative", "bool"])
def test_R4_a_format_that_never_existed_is_refused(value) -> None:
    manifest = {"vigil": "0.1.0", "format": value}
    with pytest.raises(archive.ArchiveError):
        archive.check_versions(Path("a.tar.gz"), manifest, "0.1.0")


# --- R5: secrets ---------------------------------------------------------------------------


def test_R5_a_short_secret_is_archived_silently(vigil, machines, tmp_path) -> None:
    """A 7-character secret (a PIN, a short password) is never searched for, and the summary
    does not say so: the archive holds it and export exits 0 with nothing said."""
    old, _new = machines
    installed(vigil, old)
    (old.home / ".config/vigil/secrets/api").write_text("hunter2\n")
    (old.state / "state/leak.json").write_text(json.dumps({"password": "hunter2"}))
    out = tmp_path / "short.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    told = "not searched for" in result.stderr and "api" in result.stderr.split("not searched")[1]
    assert result.exit_code != 0 or told, (
        f"a short secret was archived and the user was not told:\n{result.stderr}"
    )


def test_R5_a_secret_inside_a_multi_line_secret_file_is_not_found(
    vigil, machines, tmp_path
) -> None:
    """A credentials file (JSON, PEM, NATS .creds) is searched for as one blob: a state file that
    holds the token it contains is archived."""
    old, _new = machines
    installed(vigil, old)
    creds = {"client_id": "agent", "token": TOKEN}
    (old.home / ".config/vigil/secrets/api").write_text(json.dumps(creds, indent=1))
    (old.state / "state/leak.json").write_text(json.dumps({"seen": TOKEN}))
    out = tmp_path / "multi.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 1, "the token from the credentials file went into the archive"


def test_R5_an_unreadable_secret_does_not_stop_export(vigil, machines, tmp_path) -> None:
    """'No secrets ever' cannot be checked for a secret export cannot read, yet it exits 0 (the
    only trace is a parenthesis in the summary); it should refuse unless told to go on."""
    old, _new = machines
    installed(vigil, old)
    secret = old.home / ".config/vigil/secrets/api"
    secret.unlink()
    secret.mkdir()  # unreadable as a file, for root too
    (old.state / "state/leak.json").write_text(json.dumps({"seen": TOKEN}))
    out = tmp_path / "unread.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code != 0, "exported without being able to check for a secret"


# --- R6: --config-out inside the state directory ------------------------------------------


def test_R6_config_out_inside_the_state_directory(vigil, machines, tmp_path) -> None:
    """The target check runs before the config is written; restore() then finds the state
    directory non-empty (the config it just wrote) and moves it aside without --replace:
    the installed config's file is gone from where the user asked for it."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    inside = new.state / "vigil.yaml"
    result = vigil("import", out, "--root", new.home, "--yes", "--config-out", inside)
    assert result.exit_code != 0 or inside.is_file(), (
        f"import exited 0 and {inside} is gone; aside: "
        f"{[p.name for p in new.state.parent.iterdir()]}"
    )
    assert not list(new.state.parent.glob("bk.replaced-*")), "moved aside without --replace"


# --- R7: an apply failure after restore / a kill between restore and apply ---------------


FULL_DISK = (
    "import errno, os\n"
    "from compiler.install import workflows as w\n"
    "def full(p):\n raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), 'units')\n"
    "w.run = full\n"
)
"""apply fails (a full disk) once restore() has run."""


def test_R7_a_failed_apply_after_restore_tells_how_to_finish(vigil, machines, tmp_path) -> None:
    """restore() has renamed the state and generations into place; apply fails (a full disk).
    The message names only the OSError; the config file, the state and the generations stay
    (discard() keeps them once restored), nothing is installed, and re-running the same import
    is refused ("not empty ... --replace")."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    result = cli(new.home, "import", out, "--root", new.home, "--yes", prelude=FULL_DISK)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    left = new.state.exists()
    assert not left or "vigil apply" in result.stderr or "--replace" in result.stderr, (
        f"state restored and left behind, the message does not say what to do:\n"
        f"{result.stderr.splitlines()[-1]}"
    )
    again = cli(new.home, "import", out, "--root", new.home, "--yes")
    assert again.returncode == 0, f"re-running the same import fails:\n{again.stderr}"


def test_R7_a_kill_between_restore_and_apply_is_recoverable_by_rerunning(
    vigil, machines, tmp_path
) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    killer = (
        "import os, signal\n"
        "from compiler.backup import restore as r\n"
        "o = r.Importer.restore\n"
        "def k(self, p):\n o(self, p); os.kill(os.getpid(), signal.SIGKILL)\n"
        "r.Importer.restore = k\n"
    )
    killed = cli(new.home, "import", out, "--root", new.home, "--yes", prelude=killer)
    assert killed.returncode == -signal.SIGKILL
    again = cli(new.home, "import", out, "--root", new.home, "--yes")
    assert again.returncode == 0, f"the same command again:\n{again.stderr}"
    # (with --replace it works, but moves the just-restored state aside: debris, and a user
    # who had not read the code would fear losing the state)


# --- R8: the config's former path outside the home escapes --root ------------------------


def test_R8_import_under_root_writes_outside_root(vigil, machines, tmp_path) -> None:
    """A config applied from outside the home (/srv/agent/vigil.yaml) is written back at that
    absolute path even under --root DIR, i.e. onto the live system."""
    old, new = machines
    old.enter().secret()
    outside = tmp_path / "srv/agent/vigil.yaml"  # outside both homes
    outside.parent.mkdir(parents=True)
    from tests.test_backup import CONFIG

    outside.write_text(CONFIG)
    assert vigil("apply", outside, "--root", old.home, "--yes").exit_code == 0
    out = tmp_path / "o.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    shutil.rmtree(tmp_path / "srv")  # "the live system" of the new machine has no such file
    new.enter().secret()
    result = vigil("import", out, "--root", new.home, "--yes")
    assert not outside.exists(), "import --root wrote outside its root"
    assert result.exit_code in (0, 2)


# --- R9: home rewriting --------------------------------------------------------------------


def test_R9_an_old_home_of_slash_rewrites_every_absolute_path(vigil, machines, tmp_path) -> None:
    """A service account with HOME=/ exports home "/": _rehome(old="") then prefixes every
    absolute path in state/*.json with the new home (/etc/x -> /home/bob/etc/x)."""
    old, new = machines
    installed(vigil, old)
    (old.state / "state/paths.json").write_text(json.dumps({"version": 1, "p": "/etc/hosts"}))
    out = tmp_path / "o.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    bad = tmp_path / "slash.tar.gz"
    bad.write_bytes(rebuilt(out, with_manifest(home="/")))
    new.enter().secret()
    assert vigil("import", bad, "--root", new.home, "--yes").exit_code == 0
    assert json.loads((new.state / "state/paths.json").read_text())["p"] == "/etc/hosts"


def test_R9_keys_are_not_rehomed_but_their_values_are(vigil, machines, tmp_path) -> None:
    """A nag item or watch instance keyed by a path keeps the old key while its fields get
    the new home: the entry no longer agrees with itself."""
    old, new = machines
    installed(vigil, old)
    key = f"{old.home}/docs/a.pdf"
    nag = {"version": 1, "items": {key: {"id": key, "count": 3, "status": "active"}}}
    (old.state / "state/nag-todo.json").write_text(json.dumps(nag))
    out = tmp_path / "o.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    new.enter().secret()
    assert vigil("import", out, "--root", new.home, "--yes").exit_code == 0
    items = json.loads((new.state / "state/nag-todo.json").read_text())["items"]
    ((k, item),) = items.items()
    assert k == item["id"], f"key {k!r} vs id {item['id']!r}"


# --- R10: runs.jsonl rotated while export reads the state -----------------------------------


def test_R10_a_rotation_during_export_duplicates_history(vigil, machines, tmp_path, monkeypatch):
    """Export holds the coordinator and spend locks, not runs.jsonl.lock. It reads runs.jsonl,
    then runs.jsonl.1 (sorted order); a job rotating in between makes the archive hold the
    same lines twice (and lose the old runs.jsonl.1): budgets and history count them twice."""
    from compiler.backup import export as export_module

    old, _new = machines
    installed(vigil, old)
    (old.state / "runs.jsonl").write_text('{"job": "hello", "n": 2}\n')
    (old.state / "runs.jsonl.1").write_text('{"job": "hello", "n": 1}\n')
    real = export_module._read_once

    def read_then_rotate(path: Path) -> bytes | None:
        content = real(path)
        if path.name == "runs.jsonl":  # a job rotates right after export read the file
            os.replace(path, path.with_name("runs.jsonl.1"))
        return content

    monkeypatch.setattr(export_module, "_read_once", read_then_rotate)
    out = tmp_path / "r.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    with tarfile.open(out) as tar:
        runs = {m.name: tar.extractfile(m).read() for m in tar if m.name.startswith("state/runs")}  # type: ignore[union-attr]
    lines = b"".join(runs.values()).splitlines()
    assert len(lines) == len(set(lines)), f"history duplicated in the archive: {runs}"


# --- R11: members export never writes are accepted on import -------------------------------


@pytest.mark.parametrize(
    "name", ["state/.coordinator.lock", "state/running/hello.json", "state/tmp/x", "state/.x"]
)
def test_R11_members_export_never_writes_are_refused(vigil, machines, tmp_path, name) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    result = refused(vigil, new, tmp_path / "bad.tar.gz", rebuilt(out, with_member(name, b"{}")))
    assert "unsafe or unknown path" in result.stderr


def test_R11_a_member_mode_of_zero_is_restored_unreadable(vigil, machines, tmp_path) -> None:
    """Modes are capped at 0755 but have no floor: a listed mode 0000 (or 0200) makes the state
    file unreadable to the coordinator after import."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)

    def mode_zero(manifest: Manifest, members: Entries) -> Entries:
        manifest["members"]["state/state/nag-todo.json"]["mode"] = "0000"
        return members

    bad = tmp_path / "m.tar.gz"
    bad.write_bytes(rebuilt(out, mode_zero))
    new.enter().secret()
    vigil("import", bad, "--root", new.home, "--yes")
    mode = (new.state / "state/nag-todo.json").stat().st_mode & 0o777
    assert mode & 0o600 == 0o600, f"restored with mode {mode:04o}"


# --- R12: the config path from the manifest is written before confirmation -----------------


def test_R12_the_manifest_chooses_any_absolute_path_for_the_config(vigil, machines, tmp_path):
    """config.file comes from the (unsigned) manifest: an archive can make import create any
    absent file the user can write (under ~ it is re-homed, e.g. ~/.bash_login), and it is
    written in prepare(), before the plan is shown and confirmed."""
    old, new = machines
    out = exported(vigil, machines, tmp_path)
    target = f"{old.home}/.bash_login"
    bad = tmp_path / "c.tar.gz"
    bad.write_bytes(rebuilt(out, with_manifest(config={"file": target, "git": None})))
    new.enter().secret()
    result = vigil("import", bad, "--root", new.home)  # no --yes, off a terminal: declined
    assert result.exit_code == 1
    result = vigil("import", bad, "--root", new.home, "--yes")
    assert not (new.home / ".bash_login").exists(), "the archive chose a dotfile to create"


# --- R13: the restored generations carry the old machine's interpreter path ------------------


def test_R13_rollback_after_import_installs_the_old_machines_interpreter(
    vigil, machines, tmp_path
) -> None:
    """Generations are restored verbatim and rollback reinstalls a stored tree as it is: the
    runner scripts of generations 1-2 exec the OLD machine's python (a venv under the old
    home). `vigil rollback 1` on the new machine installs units whose every run fails."""
    from tests.test_backup import CONFIG

    old, new = machines
    old.enter().secret()
    python = old.home / "venv/bin/python3"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    config = old.home / "agent/vigil.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG)
    args = ["--root", old.home, "--yes", "--python", python, "--skip-package-check"]
    assert vigil("apply", config, *args).exit_code == 0
    out = tmp_path / "o.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    new.enter().secret()
    assert vigil("import", out, "--root", new.home, "--yes").exit_code == 0
    result = vigil("rollback", "1", "--name", "bk", "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    script = (new.data / "current/bin/bk-hello").read_text()
    assert f"exec {old.home}" not in script, (
        f"the old machine's interpreter: {script.splitlines()[-1]}"
    )


# --- R14: a secret file under the state directory -----------------------------------------


def _secret_in_state(vigil, old: Machine, value: str) -> Path:
    from tests.test_backup import CONFIG

    old.enter()
    config = old.home / "agent/vigil.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG.replace("~/.config/vigil/secrets/api", "~/.local/state/vigil/bk/api"))
    old.state.mkdir(parents=True)
    (old.state / "api").write_text(value + "\n")
    assert vigil("apply", config, "--root", old.home, "--yes").exit_code == 0
    return config


def test_R14_a_secret_file_in_the_state_directory_is_archived(vigil, machines, tmp_path) -> None:
    """The state walk does not leave out the config's own secret files: a short one is
    archived as state/api while the summary says 'secrets NOT in the archive'; a long one makes
    export refuse with 'remove it from that file first' (i.e. empty your secret file)."""
    old, _new = machines
    _secret_in_state(vigil, old, "pin1234")
    out = tmp_path / "s.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 0, result.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "state/api" not in names, "the secret file itself is in the archive"


def test_R14_a_long_secret_in_the_state_directory_blocks_export(vigil, machines, tmp_path):
    old, _new = machines
    _secret_in_state(vigil, old, "a-long-secret-value-xyz")
    out = tmp_path / "s.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 0, result.stderr  # the secret file is not state: left out

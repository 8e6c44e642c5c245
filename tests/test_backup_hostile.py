"""`vigil export` and `vigil import` against hostile archives and awkward machines: archives that
would exhaust memory, malformed manifests, paths and modes export never writes, secrets in
every shape, config paths the archive should not choose, imports interrupted half way, homes
that cannot be re-homed, history rotated during an export, generations carrying another
machine's interpreter. Import runs as a real process where a traceback must show."""

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
from compiler.backup import manifest as manifests
from compiler.layout import ScopeKind
from tests.conftest import ROOT
from tests.test_backup import (  # noqa: F401  (machines is a fixture)
    TOKEN,
    Entries,
    Machine,
    Manifest,
    changed_member,
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
            manifest["members"][name] = archive.Member(name, content).entry().to_json()
        return [*members, (info, content)]

    return change


def with_manifest(**fields: object):
    def change(manifest: Manifest, members: Entries) -> Entries:
        manifest.update(fields)
        return members

    return change


# --- an archive's size: a 174-byte archive that holds 10 GiB --------------------------------


@pytest.mark.parametrize("listed", [False, True], ids=["unlisted", "listed"])
def test_a_sparse_bomb_is_refused_without_reading_it_into_memory(tmp_path, listed) -> None:
    """GNU tar stores a 10 GiB file of zeros (or any hole) in 174 bytes. Import reads the
    manifest first and refuses a member it does not list, or one past the total cap, before
    reading a byte of it: under a 1 GiB address-space limit, no MemoryError."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar needed to write a sparse member")
    work = tmp_path / "a"
    (work / "state").mkdir(parents=True)
    members = {"state/big": {"sha256": "0" * 64, "size": 10 * 2**30}} if listed else {}
    manifest = {"members": members, "name": "bk", "scope": "user", "vigil": "0.0.1", "format": 1}
    (work / "vigil-export.json").write_text(json.dumps(manifest))
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
    expected = "more than" if listed else "not in the manifest"
    assert result.returncode == 2 and expected in result.stderr, result.stderr


# --- a generation directory named with a non-ASCII digit passes safe_path ---------------


def test_a_unicode_digit_generation_is_refused(vigil, machines, tmp_path) -> None:
    """`²` is a digit to str.isdigit() (and `١`, Arabic-Indic one, even to int(), colliding
    with generation 1): a generation is named by ASCII digits only, checked before writing."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(rebuilt(out, with_member("generations/²/config.yaml", b"name: bk\n")))
    new.enter().secret()
    result = cli(new.home, "import", bad, "--root", new.home, "--yes")
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 2 and "unsafe or unknown path" in result.stderr
    assert not new.state.exists()


# --- manifest fields are used unchecked: tracebacks, some after writing -----------------


@pytest.mark.parametrize(
    "fields",
    [
        {"config": "a string"},
        {"counts": ["x"]},
        {"timers": ["bk-hello.timer"]},
        {"timers": {"bk-hello.timer": 1e300}},  # past any time a stamp had (os.utime overflows)
        {"timers": {"bk-hello.timer": float("nan")}},
    ],
    ids=["config-str", "counts-list", "timers-list", "timer-1e300", "timer-nan"],
)
def test_a_malformed_manifest_is_refused_as_bad_input(vigil, machines, tmp_path, fields) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(rebuilt(out, with_manifest(**fields)))
    new.enter().secret()
    result = cli(new.home, "import", bad, "--root", new.home, "--yes")
    assert "Traceback" not in result.stderr, result.stderr[-500:]
    assert result.returncode == 2, result.stderr
    assert not new.state.exists(), "state restored before the manifest was found bad"


# --- version comparison --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "here", "refused_"),
    [
        ("0.2rc1", "0.2.0", False),  # a pre-release of 0.2.0 is older
        ("0.2.dev3", "0.2.0", False),
        ("0.2.0", "0.2rc1", True),
        ("0.2.post1", "0.2", True),
        ("0.2", "0.2.0", False),
        ("0.1.0", "unknown", False),  # this vigil's version unknown: only the format checked
        ("unknown", "0.1.0", True),  # an archive's version that is no version is refused
    ],
)
def test_versions_compare_in_pep440_order(written: str, here: str, refused_: bool) -> None:
    manifest = manifests.Manifest(name="bk", scope=ScopeKind.USER, vigil=written)
    try:
        archive.check_versions(Path("a.tar.gz"), manifest, here)
        was_refused = False
    except archive.ArchiveError:
        was_refused = True
    assert was_refused == refused_


@pytest.mark.parametrize("value", [0, -1, True], ids=["zero", "negative", "bool"])
def test_a_format_that_never_existed_is_refused(value) -> None:
    manifest = {"vigil": "0.1.0", "format": value, "name": "bk", "scope": "user", "members": {}}
    with pytest.raises(archive.ArchiveError, match="not an archive format"):
        archive.parse_manifest(Path("a.tar.gz"), json.dumps(manifest).encode())


# --- secrets ---------------------------------------------------------------------------


def test_a_short_secret_is_named_as_not_searched_for(vigil, machines, tmp_path) -> None:
    """A 7-character secret (a PIN, a short password) would match by chance: it is not searched
    for, and the summary says so."""
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


def test_a_secret_inside_a_multi_line_secret_file_is_found(vigil, machines, tmp_path) -> None:
    """A credentials file (JSON, PEM, NATS .creds) is searched for by its lines and values, not
    only as one blob: a state file that holds the token it contains is refused."""
    old, _new = machines
    installed(vigil, old)
    creds = {"client_id": "agent", "token": TOKEN}
    (old.home / ".config/vigil/secrets/api").write_text(json.dumps(creds, indent=1))
    (old.state / "state/leak.json").write_text(json.dumps({"seen": TOKEN}))
    out = tmp_path / "multi.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 1, "the token from the credentials file went into the archive"


def test_a_secret_is_searched_for_by_its_lines_values_and_json_escapes() -> None:
    from compiler.backup.export import needles

    pem = b"-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcw\n-----END KEY-----\n"
    found = needles(pem)
    assert b"MIIEvQIBADANBgkqhkiG9w0B" in found  # a line
    assert pem.strip().replace(b"\n", b"\\n") in found  # the whole, as JSON writes it
    assert b"s3cr3t-value-42" in needles(b"API_TOKEN=s3cr3t-value-42\n")
    assert b"s3cr3t-value-42" in needles(b'{"a": {"b": ["s3cr3t-value-42"]}}')
    assert needles(b"pin1234\n") == set()  # too short: named in the summary instead


def test_an_unreadable_secret_stops_export_unless_told_to_go_on(vigil, machines, tmp_path) -> None:
    """'No secrets ever' cannot be checked for a secret export cannot read: it refuses unless
    told to go on (--unchecked-secrets), and then the summary names it."""
    old, _new = machines
    installed(vigil, old)
    secret = old.home / ".config/vigil/secrets/api"
    secret.unlink()
    secret.mkdir()  # unreadable as a file, for root too
    (old.state / "state/leak.json").write_text(json.dumps({"seen": TOKEN}))
    out = tmp_path / "unread.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code != 0, "exported without being able to check for a secret"
    assert "--unchecked-secrets" in result.stderr and not out.exists()
    result = vigil(
        "export", "--out", out, "--name", "bk", "--root", old.home, "--unchecked-secrets"
    )
    assert result.exit_code == 0, result.stderr
    assert "not searched for" in result.stderr and "api" in result.stderr.split("not searched")[1]


# --- --config-out inside the state directory ------------------------------------------


def test_config_out_inside_the_state_directory_is_refused(vigil, machines, tmp_path) -> None:
    """A config written into the state directory would make it non-empty, and be moved aside
    with it: refused before anything is written."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    inside = new.state / "vigil.yaml"
    result = vigil("import", out, "--root", new.home, "--yes", "--config-out", inside)
    assert result.exit_code == 2 and "which the import fills" in result.stderr
    assert result.exit_code != 0 or inside.is_file(), (
        f"import exited 0 and {inside} is gone; aside: "
        f"{[p.name for p in new.state.parent.iterdir()]}"
    )
    assert not list(new.state.parent.glob("bk.replaced-*")), "moved aside without --replace"


# --- an apply failure after restore / a kill between restore and apply ---------------


FULL_DISK = (
    "import errno, os\n"
    "from compiler.install import workflows as w\n"
    "def full(p):\n raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), 'units')\n"
    "w.run = full\n"
)
"""apply fails (a full disk) once restore() has run."""


def test_a_failed_apply_after_restore_tells_how_to_finish(vigil, machines, tmp_path) -> None:
    """The state and generations are in place when apply fails (a full disk): the message says
    how to finish (`vigil apply CONFIG`, or the same import again), and the same import again
    finds its own pending marker and applies without restoring."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    result = cli(new.home, "import", out, "--root", new.home, "--yes", prelude=FULL_DISK)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    left = new.state.exists()
    assert (new.data / "import-pending.json").is_file()
    assert not left or "vigil apply" in result.stderr or "--replace" in result.stderr, (
        f"state restored and left behind, the message does not say what to do:\n"
        f"{result.stderr.splitlines()[-1]}"
    )
    again = cli(new.home, "import", out, "--root", new.home, "--yes")
    assert again.returncode == 0, f"re-running the same import fails:\n{again.stderr}"
    assert not (new.data / "import-pending.json").exists()
    assert not list(new.state.parent.glob("bk.replaced-*"))


def test_a_kill_between_restore_and_apply_is_recoverable_by_rerunning(
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
    assert "resuming" in again.stderr and not list(new.state.parent.glob("bk.replaced-*"))


# --- the config's former path outside the home escapes --root ------------------------


def test_import_under_root_never_writes_outside_root(vigil, machines, tmp_path) -> None:
    """A config applied from outside the home (/srv/agent/vigil.yaml) is not written back at
    that absolute path under --root DIR (the live system): --config-out is asked for."""
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
    assert result.exit_code == 2 and "--config-out" in result.stderr


# --- home rewriting --------------------------------------------------------------------


def test_an_old_home_of_slash_rewrites_nothing(vigil, machines, tmp_path) -> None:
    """A service account with HOME=/ exports home "/": no path is re-homed (/etc/x stays, never
    /home/bob/etc/x). Its config's former path is under no home, so --config-out is given."""
    old, new = machines
    installed(vigil, old)
    (old.state / "state/paths.json").write_text(json.dumps({"version": 1, "p": "/etc/hosts"}))
    out = tmp_path / "o.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    bad = tmp_path / "slash.tar.gz"
    bad.write_bytes(rebuilt(out, with_manifest(home="/")))
    new.enter().secret()
    config = new.home / "agent/vigil.yaml"
    result = vigil("import", bad, "--root", new.home, "--yes", "--config-out", config)
    assert result.exit_code == 0, result.stderr
    assert json.loads((new.state / "state/paths.json").read_text())["p"] == "/etc/hosts"


def test_only_watch_paths_are_rehomed_so_keys_and_values_agree(vigil, machines, tmp_path) -> None:
    """Only a file watch instance's `path` is re-homed (stateshapes' WATCH): a nag item keyed
    by a path keeps its key and its fields alike, so the entry agrees with itself."""
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


# --- runs.jsonl rotated while export reads the state -----------------------------------


def test_a_rotation_during_export_does_not_duplicate_history(
    vigil, machines, tmp_path, monkeypatch
) -> None:
    """A job rotating runs.jsonl (runner/history.py, under runs.jsonl.lock) right after export
    read it would make the archive hold the same lines twice: export holds that lock while it
    reads the state, so the rotation waits for it."""
    import threading

    from compiler.backup import export as export_module
    from runner import history

    old, _new = machines
    installed(vigil, old)
    (old.state / "runs.jsonl").write_text('{"job": "hello", "n": 2}\n')
    (old.state / "runs.jsonl.1").write_text('{"job": "hello", "n": 1}\n')
    real = export_module._read_once
    rotations: list[threading.Thread] = []

    def read_then_rotate(path: Path) -> bytes | None:
        content = real(path)
        if path.name == "runs.jsonl":  # a job rotates right after export read the file
            rotate = threading.Thread(target=history._rotate_if_full, args=(str(path), 10**6, 1))
            rotate.start()
            rotate.join(0.3)  # it waits for export's lock
            rotations.append(rotate)
        return content

    monkeypatch.setattr(export_module, "_read_once", read_then_rotate)
    out = tmp_path / "r.tar.gz"
    assert vigil("export", "--out", out, "--name", "bk", "--root", old.home).exit_code == 0
    for rotate in rotations:
        rotate.join(10)
    assert rotations and (old.state / "runs.jsonl.1").read_text() == '{"job": "hello", "n": 2}\n'
    with tarfile.open(out) as tar:
        runs = {m.name: tar.extractfile(m).read() for m in tar if m.name.startswith("state/runs")}  # type: ignore[union-attr]
    lines = b"".join(runs.values()).splitlines()
    assert len(lines) == len(set(lines)) == 2, f"history duplicated in the archive: {runs}"
    with tarfile.open(out) as tar:
        locks = [name for name in tar.getnames() if name.endswith(".lock")]
    assert not locks, f"lock files archived: {locks}"


# --- members export never writes are accepted on import -------------------------------


@pytest.mark.parametrize(
    "name", ["state/.coordinator.lock", "state/running/hello.json", "state/tmp/x", "state/.x"]
)
def test_members_export_never_writes_are_refused(vigil, machines, tmp_path, name) -> None:
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    result = refused(vigil, new, tmp_path / "bad.tar.gz", rebuilt(out, with_member(name, b"{}")))
    assert "unsafe or unknown path" in result.stderr


def test_a_member_mode_of_zero_is_restored_readable(vigil, machines, tmp_path) -> None:
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


# --- the config path from the manifest is written before confirmation -----------------


def test_the_manifest_cannot_choose_a_dotfile_for_the_config(vigil, machines, tmp_path):
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


# --- the restored generations carry the old machine's interpreter path ------------------


def test_rollback_after_import_uses_this_machines_interpreter(vigil, machines, tmp_path) -> None:
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


# --- a secret file under the state directory -----------------------------------------


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


def test_a_secret_file_in_the_state_directory_is_left_out(vigil, machines, tmp_path) -> None:
    """The config's own secret files are not state: left out of the archive, short or long,
    and on import the secret placed there first does not make the state directory non-empty."""
    old, _new = machines
    _secret_in_state(vigil, old, "pin1234")
    out = tmp_path / "s.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 0, result.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "state/api" not in names, "the secret file itself is in the archive"


def test_a_long_secret_in_the_state_directory_does_not_block_export(vigil, machines, tmp_path):
    old, new = machines
    _secret_in_state(vigil, old, "a-long-secret-value-xyz")
    out = tmp_path / "s.tar.gz"
    result = vigil("export", "--out", out, "--name", "bk", "--root", old.home)
    assert result.exit_code == 0, result.stderr  # the secret file is not state: left out
    new.enter()
    (new.state).mkdir(parents=True)
    (new.state / "api").write_text("a-long-secret-value-xyz\n")  # placed first, as told
    result = vigil("import", out, "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    assert (new.state / "api").read_text() == "a-long-secret-value-xyz\n"
    assert (new.data / "current").is_symlink()


def test_rollback_refuses_an_imported_generation_it_could_not_render_here(
    vigil, machines, tmp_path
) -> None:
    """A generation whose config no longer validates cannot be rendered for this machine: it
    is restored as it was, marked, and rollback to it refuses rather than install units that
    exec the old machine's interpreter."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)

    old_config_invalid = changed_member(
        "generations/1/config.yaml", lambda c: c.replace(b"name: bk", b"name: bk\nno_such_key: 1")
    )
    bad = tmp_path / "old-config.tar.gz"
    bad.write_bytes(rebuilt(out, old_config_invalid))
    new.enter().secret()
    result = vigil("import", bad, "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    meta = json.loads((new.data / "generations/1/generation.json").read_text())
    assert meta["not_rendered_here"]
    assert json.loads((new.data / "generations/2/generation.json").read_text())["import"]
    result = vigil("rollback", "1", "--name", "bk", "--root", new.home, "--yes")
    assert result.exit_code == 1 and "came from another machine" in result.stderr
    assert os.readlink(new.data / "current") == "generations/3"


def test_vigil_apply_finishes_an_import_whose_apply_failed(vigil, machines, tmp_path) -> None:
    """The message's advice works: `vigil apply CONFIG` installs the restored setup; the
    pending marker it leaves is recognised as finished by the next import."""
    _old, new = machines
    out = exported(vigil, machines, tmp_path)
    new.enter().secret()
    failed = cli(new.home, "import", out, "--root", new.home, "--yes", prelude=FULL_DISK)
    assert failed.returncode == 1 and "vigil apply" in failed.stderr
    config = new.home / "agent/vigil.yaml"
    assert vigil("apply", config, "--root", new.home, "--yes").exit_code == 0
    assert sorted(p.name for p in (new.data / "generations").iterdir()) == ["1", "2", "3"]
    again = vigil("import", out, "--root", new.home, "--yes")
    assert again.exit_code == 1 and "installed here already" in again.stderr
    assert not (new.data / "import-pending.json").exists()

"""A private, real systemd user manager (plus its own journald) for tests.

Test machines do not boot systemd, but as root a user manager starts fine in a private mount
namespace, next to a journald of its own:

- ``unshare --mount`` gives journald (and, through ``nsenter``, the manager) a tmpfs on
  ``/run/systemd`` (journald's sockets; ``/run/systemd/system`` makes ``sd_booted()`` true),
  a per-instance directory bind-mounted on ``/run/log`` (so the runtime journal lands in our
  temporary directory, readable from outside with ``journalctl -D``), a journald.conf that
  keeps the kernel log out, a file on ``/dev/console`` (the manager's fallback log target), and
  the runtime directory bind-mounted on itself as a shared mount (``LoadCredential=`` needs that).
- Both processes live in a cgroup v2 subtree of their own. journald attributes a log line to a
  user unit only if the writer's cgroup path has the shape
  ``[*.slice/]user@UID.service/<unit>``, so the manager goes into
  ``vigil-<id>.slice/user.slice/user-0.slice/user@0.service`` (leading slices are skipped when
  journald parses the path; the unique top slice keeps concurrent instances apart). The
  hierarchy is found from the mounts: cgroup2 on ``/sys/fs/cgroup`` (unified) or on
  ``/sys/fs/cgroup/unified`` (hybrid: systemd then tracks processes on the cgroup2 mount).
- The manager gets ``HOME``, ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``... and ``XDG_RUNTIME_DIR``
  under the temporary directory; it honours them, so its unit search path starts with
  ``$XDG_CONFIG_HOME/systemd/user`` (``unit_dir``) and its private bus socket is
  ``$XDG_RUNTIME_DIR/systemd/private``. Tests never touch the real home or ``/run/user``.
  ``systemctl --user`` reaches the manager from outside the namespace through that socket.

Sandboxed units need what a booted system has: ``/run`` as a mount of its own, and what PID 1
creates (``/run/systemd/inaccessible/*``, ``/run/systemd/unit-root``); the namespace gets them.
The instance directory is under /home where there is one, so ProtectHome= covers the manager's
home as in real life.

``private_user_manager(unprivileged_account())`` runs the manager as an unprivileged user
instead, the way logind would: journald still runs as root, the manager joins its cgroup as root
and then drops to the user (``setpriv``); its home, its runtime directory (a tmpfs, also seen at
``/run/user/UID``, where a non-root manager looks for its inaccessible nodes) and its cgroup
subtree (delegated by chown, in both hierarchies in hybrid mode) belong to the user. The journal
is persistent then (``/var/log`` in the namespace is the instance's ``log/``), so the user has a
journal file of its own to read, as on a real system. That manager accepts only its own user on
its bus, so ``systemctl`` then runs as the user inside the namespace (``as_user``). Directories
on the way to this interpreter and its packages that the user cannot search (``/root`` is 0700)
are covered, inside the namespace only, by a tmpfs that shows just the needed entries, so units
and ``vigil`` run the same interpreter at the same paths.

Starting takes about 0.1 s and stopping well under a second, so a fresh manager per module
would be affordable; the fixtures still share one per session and ``clean_user_manager``
resets it between tests (units removed, daemon-reload, reset-failed). A module that needs a
pristine manager can open ``private_user_manager()`` in a module-scoped fixture of its own.

Where the manager cannot run (not root, no systemd, no ``unshare``/``nsenter``, no cgroup2, or it
does not come up) the tests are skipped, unless ``VIGIL_REQUIRE_SYSTEMD`` is set (CI): then
every such skip is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

SYSTEMD = "/lib/systemd/systemd"
JOURNALD = "/lib/systemd/systemd-journald"
UNSHARE = ("unshare", "--mount", "--propagation", "private")
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
SUN_PATH_MAX = 107  # longest AF_UNIX socket path

JOURNALD_CONF = """\
[Journal]
Storage={storage}
SystemMaxUse=64M
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
RuntimeMaxUse=64M
"""

# Runs under `unshare --mount`: private mounts, own cgroup, then becomes journald.
# $1 = instance directory, $2 = journald's cgroup directory, $3 = the journald binary,
# $4 = where the journal goes: /run/log (volatile) or /var/log (persistent).
JOURNALD_SCRIPT = r"""
set -eu
root=$1
# /run is a file system of its own on a booted system. Where it is not, a sandboxed unit
# (MountAPIVFS=, implied by ProtectKernelTunables= and others) gets an empty tmpfs there,
# without the journal or anything else below /run.
mountpoint -q /run || mount --bind /run /run
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/journal "$root/log/journal"
# What PID 1 creates at boot: sandboxed units mount these over the paths they hide
# (ProtectKernelTunables=, InaccessiblePaths=...).
mkdir -m 0755 /run/systemd/inaccessible
mkdir -m 0000 /run/systemd/inaccessible/dir
install -m 0000 /dev/null /run/systemd/inaccessible/reg
mkfifo -m 0000 /run/systemd/inaccessible/fifo
mknod -m 0000 /run/systemd/inaccessible/chr c 0 0 || true
mknod -m 0000 /run/systemd/inaccessible/blk b 0 0 || true
mkdir -m 0400 /run/systemd/unit-root
mkdir -p /run/log
if [ "$4" = /var/log ]; then
    # Persistent, with the boot-time flush taken as done: journald then writes straight to
    # /var/log/journal, one file per (non-system) user that the user may read (an ACL).
    mkdir "$root/run-log"
    mount --bind "$root/run-log" /run/log
    touch /run/systemd/journal/flushed
fi
mount --bind "$root/log" "$4"
if [ -e /etc/systemd/journald.conf ]; then
    mount --bind "$root/journald.conf" /etc/systemd/journald.conf
fi
mount --bind "$root/console.log" /dev/console || echo "console left as is" >&2
# The runtime directory as a shared mount point of its own, like /run/user/UID: systemd sets up
# a service's credentials (LoadCredential=) in a child mount namespace and moves the mount into
# place there, which reaches the manager only through propagation.
mount --bind "$root/run" "$root/run"
mount --make-shared "$root/run"
echo $$ > "$2/cgroup.procs"
exec "$3"
"""

# Runs under `nsenter --mount` into journald's namespace, then becomes the manager.
# $1 = the manager's cgroup directory; the rest is the command: systemd, or setpriv ... systemd
# for a non-root manager (it joins its cgroup as root, then drops to the account).
MANAGER_SCRIPT = r"""
set -eu
echo $$ > "$1/cgroup.procs"
shift
exec "$@"
"""

T = TypeVar("T")

TEST_ACCOUNT = "vigiltest"
"""The unprivileged account a non-root manager runs as (created if absent)."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test that cannot run here; under CI (VIGIL_REQUIRE_SYSTEMD set) fail it instead."""
    if os.environ.get("VIGIL_REQUIRE_SYSTEMD"):
        pytest.fail(f"{reason} (VIGIL_REQUIRE_SYSTEMD is set, so this is not skipped)")
    pytest.skip(reason)


class ManagerUnavailable(Exception):
    """The environment cannot host a private user manager, or it did not come up."""


def _mounts() -> dict[str, str]:
    """Mount point -> filesystem type, from /proc/self/mountinfo."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            mounts[fields[4]] = fields[fields.index("-") + 1]
    return mounts


def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup (unified) or .../unified."""
    mounts = _mounts()
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if mounts.get(candidate) == "cgroup2":
            return Path(candidate)
    return None


def cgroup_hierarchies(cgroup2: Path) -> list[Path]:
    """Where the manager creates its cgroups: the cgroup2 root, plus in hybrid mode the v1
    name=systemd hierarchy, which systemd keeps as a mirror of its tree."""
    hierarchies = [cgroup2]
    legacy = "/sys/fs/cgroup/systemd"
    if cgroup2 != Path("/sys/fs/cgroup") and _mounts().get(legacy) == "cgroup":
        hierarchies.append(Path(legacy))
    return hierarchies


def check_environment() -> Path:
    """Return the cgroup2 root, or raise ManagerUnavailable saying what is missing."""
    if os.geteuid() != 0:
        raise ManagerUnavailable("a private systemd user manager needs root")
    for binary in (SYSTEMD, JOURNALD):
        if not os.access(binary, os.X_OK):
            raise ManagerUnavailable(f"{binary} not available")
    for tool in ("unshare", "nsenter", "systemctl", "journalctl"):
        if not shutil.which(tool):
            raise ManagerUnavailable(f"{tool} not available")
    root = cgroup2_root()
    if root is None:
        raise ManagerUnavailable("no cgroup2 hierarchy mounted under /sys/fs/cgroup")
    return root


@dataclass(frozen=True)
class Account:
    """The user a manager runs as: root, or an unprivileged test account."""

    name: str
    uid: int
    gid: int

    @property
    def root(self) -> bool:
        return self.uid == 0

    def drop(self) -> list[str]:
        """Command prefix that runs the rest as this account (nothing for root)."""
        if self.root:
            return []
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--"]


ROOT_ACCOUNT = Account("root", 0, 0)


def unprivileged_account(name: str = TEST_ACCOUNT) -> Account:
    """The unprivileged test account, created if absent: a regular user (journald gives only
    those a journal file of their own), without login or home directory; its home is whatever
    the manager's environment says, a temporary directory per instance."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        for tool in ("useradd", "setpriv"):
            if not shutil.which(tool):
                raise ManagerUnavailable(f"{tool} not available") from None
        created = subprocess.run(
            [
                *("useradd", "--user-group", "--no-create-home"),
                *("--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # Another test process may have created it meanwhile: look it up again either way.
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ManagerUnavailable(f"could not create user {name}: {created.stderr}") from None
    if not shutil.which("setpriv"):
        raise ManagerUnavailable("setpriv not available")
    return Account(name, entry.pw_uid, entry.pw_gid)


@dataclass
class UserManager:
    """A running private user manager, and the helpers tests use to drive it."""

    root: Path
    env: dict[str, str]
    unit_dir: Path
    journal_dir: Path
    cgroup: Path
    pids: dict[str, int]
    logs: dict[str, Path]
    account: Account = ROOT_ACCOUNT
    baseline_units: frozenset[str] = field(default_factory=frozenset)

    # -- commands ---------------------------------------------------------------------------

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command with the manager's environment, output captured as text."""
        argv = [str(arg) for arg in args]
        result = subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def in_namespace(
        self, *args: str | Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the manager's mount namespace.

        There, plain ``journalctl`` reads the private journal and ``/run/systemd`` is the
        private one, so tools that use the default paths see this manager's world.
        """
        ns = f"--mount=/proc/{self.pids['journald']}/ns/mnt"
        return self.run("nsenter", ns, "--", *args, check=check)

    def as_user(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the manager's mount namespace as the manager's account, the way
        that user would in a session (``vigil apply`` for a non-root manager)."""
        name = self.account.name
        identity = ("env", f"USER={name}", f"LOGNAME={name}")
        return self.in_namespace(*self.account.drop(), *identity, *args, check=check)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``systemctl --user ARGS``."""
        if not self.account.root:
            # A user manager accepts bus clients of its own user only (root gets EPERM).
            return self.as_user("systemctl", "--user", "--no-pager", *args, check=check)
        return self.run("systemctl", "--user", "--no-pager", *args, check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl --user show UNIT -p PROP...`` as a dict (all properties if none given)."""
        args = [arg for prop in props for arg in ("-p", prop)]
        output = self.systemctl("show", unit, *args).stdout
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def journalctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``journalctl ARGS`` on the private journal."""
        return self.run(
            "journalctl", f"--directory={self.journal_dir}", "--no-pager", *args, check=check
        )

    def journal(self, unit: str, *args: str) -> str:
        """The journal of a user unit (``journalctl --user-unit UNIT -o cat`` plus ARGS).

        Asks journald to write out what it holds first; use wait_for_journal() for output a
        unit has just printed.
        """
        self.sync_journal()
        matches = [f"--user-unit={unit}"]
        if not self.account.root:
            # --user-unit matches the caller's uid (root's); ask for the account's: the
            # unit's own lines, and the manager's lines about it.
            uid = f"_UID={self.account.uid}"
            matches = [f"_SYSTEMD_USER_UNIT={unit}", uid, "+", f"USER_UNIT={unit}", uid]
        return self.journalctl(*matches, "--output=cat", *args).stdout

    def wait_for_journal(self, unit: str, text: str, timeout: float = 10.0) -> str:
        """Poll journal(unit) until it contains text; return it.

        journald reads a service's stdout stream asynchronously, and ``journalctl --sync`` does
        not wait for that, so what a unit printed may show up a little after the unit ended.
        journald also resolves the stream's unit (from /proc/PID) only when it reads the first
        line: a process that has already exited leaves lines without unit fields, which
        ``--user-unit`` never finds (1-2 % of bare ``echo`` runs; ``SyslogIdentifier=`` and
        ``journalctl -t`` still find them). Keep such a process alive for a moment; lines of
        vigil's services are also looked up by their identifier (every unit sets
        ``SyslogIdentifier=`` to its name), as ``vigil logs`` does.
        """
        identifier = unit.removesuffix(".service")

        def journal_with_text() -> str:
            journal = self.journal(unit)
            if text not in journal and "@" not in identifier:
                owner = [] if self.account.root else [f"_UID={self.account.uid}"]
                journal += self.journalctl("-t", identifier, *owner, "--output=cat").stdout
            return journal if text in journal else ""

        return self.wait_for(
            journal_with_text, timeout=timeout, what=f"{text!r} in the journal of {unit}"
        )

    def sync_journal(self) -> None:
        self.in_namespace("journalctl", "--sync", check=False)

    def write_unit(self, name: str, text: str) -> Path:
        """Write a unit file into unit_dir (call daemon-reload afterwards)."""
        path = self.unit_dir / name
        path.write_text(text, encoding="utf-8")
        return path

    @staticmethod
    def wait_for(
        predicate: Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.05,
        what: str = "condition",
    ) -> T:
        """Poll until predicate() returns something truthy and return it; fail on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}: {value!r}")
            time.sleep(interval)

    # -- state between tests ----------------------------------------------------------------

    def loaded_units(self) -> set[str]:
        output = self.systemctl("list-units", "--all", "--plain", "--no-legend", "--full").stdout
        return {line.split()[0] for line in output.splitlines() if line.strip()}

    def clean(self) -> None:
        """Stop units tests started, remove what they wrote into unit_dir, reset failures."""
        extra = self.loaded_units() - self.baseline_units
        if not extra and not any(self.unit_dir.iterdir()):
            return
        # Triggers first, so they cannot start their services again while those stop.
        triggers = sorted(u for u in extra if u.endswith((".timer", ".path", ".socket")))
        for group in (triggers, sorted(extra - set(triggers))):
            if group:
                self.systemctl("stop", *group, check=False)
        for entry in self.unit_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        self.systemctl("daemon-reload")
        self.systemctl("reset-failed", check=False)


# -- lifecycle ------------------------------------------------------------------------------


def _manager_env(root: Path, account: Account) -> dict[str, str]:
    home = root / "home"
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": "/bin/sh",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(root / "run"),
    }


def _hand_over(root: Path, account: Account) -> None:
    """The user's home and runtime directory belong to the user; log/ and the rest stay root's.
    The user must be able to read the instance directory, not only pass through: a path unit
    watches every directory on the way to its path, and inotify needs read access (systemd
    stops at the first one it cannot watch, and the inbox then never triggers)."""
    root.chmod(0o755)
    for path in (root / "home", root / "run"):
        for entry in (path, *path.rglob("*")):
            os.chown(entry, account.uid, account.gid)


def _delegate(cgroup: Path, account: Account) -> None:
    cgroup.mkdir(parents=True, exist_ok=True)
    for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "tasks"):
        if (cgroup / name).exists():
            os.chown(cgroup / name, account.uid, account.gid)


def interpreter_paths() -> list[Path]:
    """What this interpreter needs to run vigil and the runner: its installation, its venv
    and every directory on sys.path (site-packages, an editable checkout)."""
    candidates = [sys.base_prefix, sys.prefix, os.path.realpath(sys.executable), *sys.path]
    return [Path(p) for p in dict.fromkeys(candidates) if os.path.isabs(p) and os.path.exists(p)]


def _searchable(directory: Path, account: Account, groups: set[int]) -> bool:
    info = directory.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


# Runs inside the namespace as root: $1 = a root-only staging directory, $2 = a directory the
# user cannot search, then the entries in it to show.
OPEN_SCRIPT = r"""
set -eu
stage=$1 dir=$2
shift 2
mkdir -p "$stage"
mount --bind "$dir" "$stage"
mount -t tmpfs -o mode=0755 tmpfs "$dir"
for name; do
    if [ -d "$stage/$name" ]; then mkdir "$dir/$name"; else touch "$dir/$name"; fi
    mount --bind "$stage/$name" "$dir/$name"
done
"""


def _open_paths(nsenter: list[str], stage: Path, account: Account, paths: Sequence[Path]) -> None:
    """Make `paths` reachable for the account inside the namespace, at the same paths.

    The interpreter and packages the tests run (whose paths the generated units name) may sit
    below a directory the user cannot search, such as /root (mode 0700). Inside the private
    namespace such a directory is covered by a tmpfs that shows only the needed entries, bound
    from the original. Nothing changes outside the namespace.
    """
    groups = set(os.getgrouplist(account.name, account.gid))
    closed: dict[Path, set[str]] = {}
    for path in paths:
        for depth in range(1, len(path.parts)):
            directory = Path(*path.parts[:depth])
            if not _searchable(directory, account, groups):
                closed.setdefault(directory, set()).add(path.parts[depth])
    stage.mkdir(mode=0o700)
    # Outer directories first, so an inner one is covered inside the outer one's new view.
    for number, directory in enumerate(sorted(closed, key=lambda d: len(d.parts))):
        names = sorted(closed[directory])
        _in(nsenter, "sh", "-c", OPEN_SCRIPT, "sh", stage / str(number), directory, *names)


def _in(nsenter: list[str], *args: str | Path) -> None:
    """Run a set-up command as root inside the namespace; raise if it fails."""
    result = subprocess.run(
        [*nsenter, *map(str, args)], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    if result.returncode != 0:
        raise ManagerUnavailable(f"{' '.join(map(str, args))} failed: {result.stderr.strip()}")


def _client_env(manager_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("SYSTEMD_LOG_TARGET", "SYSTEMD_LOG_LEVEL", "JOURNAL_STREAM", "INVOCATION_ID"):
        env.pop(name, None)
    keys = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
    env.update({key: manager_env[key] for key in (*keys, "XDG_RUNTIME_DIR")})
    env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={manager_env['XDG_RUNTIME_DIR']}/bus"
    env["SYSTEMD_PAGER"] = "cat"
    env["SYSTEMD_COLORS"] = "0"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(missing)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _diagnostics(manager: UserManager) -> str:
    parts = [f"--- {name} ({path.name}) ---\n{_tail(path)}" for name, path in manager.logs.items()]
    journal = manager.journalctl("-n", "40", check=False)
    parts.append(f"--- journal ---\n{journal.stdout or journal.stderr or '(empty)'}")
    return "\n".join(parts)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, then SIGKILL: one process we started, by its pid."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _cgroup_pids(top: Path) -> list[int]:
    pids: list[int] = []
    for procs in top.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in procs.read_text().split()]
    return pids


def _remove_cgroups(tops: list[Path]) -> None:
    """Kill what the manager left behind in our cgroup subtrees, then remove the subtrees."""
    tops = [top for top in tops if top.exists()]
    for pid in {pid for top in tops for pid in _cgroup_pids(top)}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    for top in tops:
        while True:
            directories = sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            )
            try:
                for directory in [*directories, top]:
                    directory.rmdir()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)


def _wait_until_ready(manager: UserManager, process: subprocess.Popen[bytes]) -> None:
    """Wait until the manager answers on its bus, then until its start-up jobs are done."""

    def system_state() -> str:
        if process.poll() is not None:
            raise ManagerUnavailable(
                f"systemd --user exited with {process.returncode}\n{_diagnostics(manager)}"
            )
        result = manager.systemctl("show", "-p", "SystemState", "--value", check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    try:
        manager.wait_for(system_state, timeout=READY_TIMEOUT, what="the user manager's bus")
        manager.wait_for(
            lambda: system_state() not in ("initializing", "starting"),
            timeout=READY_TIMEOUT,
            what="the user manager to finish starting up",
        )
    except AssertionError as error:
        raise ManagerUnavailable(f"{error}\n{_diagnostics(manager)}") from None


def _wait_for_journald(journald: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the namespace script has exec'd journald and its sockets are bound."""
    proc = Path(f"/proc/{journald.pid}")
    sockets = [proc / "root/run/systemd/journal" / name for name in ("socket", "stdout")]

    def listening() -> bool:
        with contextlib.suppress(OSError):
            # Before the exec, /proc/PID/root may still show the host's /run/systemd.
            if (proc / "comm").read_text().strip() == "systemd-journal":
                return all(socket.exists() for socket in sockets)
        return False

    deadline = time.monotonic() + READY_TIMEOUT
    while not listening():
        if journald.poll() is not None or time.monotonic() >= deadline:
            raise ManagerUnavailable(f"systemd-journald did not come up\n{_tail(log)}")
        time.sleep(0.01)


def _start(
    root: Path,
    top: Path,
    processes: list[subprocess.Popen[bytes]],
    account: Account,
    expose: Sequence[Path],
) -> UserManager:
    """Lay out the instance directory and cgroups, start journald, then the manager."""
    if len(str(root / "run" / "systemd" / "private")) > SUN_PATH_MAX:
        raise ManagerUnavailable(f"temporary directory {root} is too long for a socket path")
    manager_env = _manager_env(root, account)
    unit_dir = Path(manager_env["XDG_CONFIG_HOME"]) / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (root / "run").mkdir(mode=0o700)
    (root / "log" / "journal").mkdir(parents=True)
    # The user's own journal file, as on a real system, needs persistent storage; root reads
    # everything, so its manager keeps the journal in memory.
    storage = "volatile" if account.root else "persistent"
    (root / "journald.conf").write_text(JOURNALD_CONF.format(storage=storage), encoding="utf-8")
    logs = {name: root / f"{name}.log" for name in ("journald", "manager", "console")}
    logs["console"].touch()
    journald_cgroup = top / "journald.scope"
    uid = account.uid
    manager_cgroup = top / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service"
    for directory in (journald_cgroup, manager_cgroup):
        directory.mkdir(parents=True)
    if not account.root:
        _hand_over(root, account)
        # Delegated like logind does: the user owns its manager's cgroup (and in hybrid mode
        # the mirror in name=systemd, which the manager keeps in step) and manages the subtree.
        relative = manager_cgroup.relative_to(top.parent)
        for hierarchy in cgroup_hierarchies(top.parent):
            _delegate(hierarchy / relative, account)

    with open(logs["journald"], "wb") as log:
        journald = subprocess.Popen(
            [
                *UNSHARE,
                "sh",
                "-c",
                JOURNALD_SCRIPT,
                "sh",
                str(root),
                str(journald_cgroup),
                JOURNALD,
                "/run/log" if account.root else "/var/log",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": manager_env["PATH"], "LANG": "C.UTF-8"},
            start_new_session=True,
        )
    processes.append(journald)
    _wait_for_journald(journald, logs["journald"])

    nsenter = ["nsenter", f"--mount=/proc/{journald.pid}/ns/mnt", "--"]
    if not account.root:
        _open_paths(nsenter, root / "closed", account, expose)
        # The runtime directory is a tmpfs, as /run/user/UID is: systemd removes a service's
        # credentials after it stops only from a memory file system. A non-root manager's
        # sandboxing looks for its inaccessible nodes (what ProtectKernelTunables= and the
        # like mount over the paths they hide) under /run/user/UID, not $XDG_RUNTIME_DIR.
        run, user_run = root / "run", f"/run/user/{account.uid}"
        owner = f"mode=0700,uid={account.uid},gid={account.gid}"
        _in(nsenter, "mount", "-t", "tmpfs", "-o", owner, "tmpfs", run)
        _in(nsenter, "mount", "--make-shared", run)
        _in(nsenter, "mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/user")
        _in(nsenter, "mkdir", user_run)
        _in(nsenter, "mount", "--bind", run, user_run)
    systemd = [*account.drop(), SYSTEMD, "--user", "--log-target=journal"]
    with open(logs["manager"], "wb") as log:
        manager_process = subprocess.Popen(
            [*nsenter, "sh", "-c", MANAGER_SCRIPT, "sh", str(manager_cgroup), *systemd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=manager_env,
            start_new_session=True,
        )
    processes.insert(0, manager_process)  # stopped first: it stops its units and logs that
    manager = UserManager(
        root=root,
        env=_client_env(manager_env),
        unit_dir=unit_dir,
        journal_dir=root / "log" / "journal",
        cgroup=top,
        pids={"manager": manager_process.pid, "journald": journald.pid},
        logs=logs,
        account=account,
    )
    _wait_until_ready(manager, manager_process)
    manager.baseline_units = frozenset(manager.loaded_units())
    return manager


@contextlib.contextmanager
def private_user_manager(
    account: Account = ROOT_ACCOUNT, expose: Sequence[Path] = ()
) -> Iterator[UserManager]:
    """Start journald and ``systemd --user`` in a private namespace; stop both on exit.

    The instance directory, and so the manager's home, is under /home where there is one: as
    in real life, ProtectHome= then covers the home and /tmp does not. With an unprivileged
    ``account`` the manager runs as that user, and the paths in ``expose`` plus this
    interpreter's are made reachable for it (see _open_paths).
    Raises ManagerUnavailable if the environment cannot host them or they do not come up.
    """
    cgroup_root = check_environment()
    base = "/home" if os.path.isdir("/home") and os.access("/home", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="vigil-sd-", dir=base))
    slice_name = f"vigil-{uuid.uuid4().hex[:12]}.slice"
    top = cgroup_root / slice_name
    processes: list[subprocess.Popen[bytes]] = []
    try:
        try:
            manager = _start(root, top, processes, account, [*interpreter_paths(), *expose])
        except OSError as error:
            raise ManagerUnavailable(f"could not set up the user manager: {error}") from error
        yield manager
    finally:
        for process in processes:
            _stop(process)
        _remove_cgroups([hierarchy / slice_name for hierarchy in cgroup_hierarchies(cgroup_root)])
        shutil.rmtree(root, ignore_errors=True)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def user_manager() -> Iterator[UserManager]:
    """A private systemd user manager shared by the session (see the module docstring)."""
    stack = contextlib.ExitStack()
    try:
        manager = stack.enter_context(private_user_manager())
    except ManagerUnavailable as error:
        skip_or_fail(f"no private systemd user manager: {error}")
    with stack:
        yield manager


@pytest.fixture
def clean_user_manager(
    user_manager: UserManager, request: pytest.FixtureRequest
) -> Iterator[UserManager]:
    """The session's user manager, with the units of other tests gone before and after."""
    if request.node.get_closest_marker("systemd") is None:
        pytest.fail("tests that use the user manager must be marked @pytest.mark.systemd")
    user_manager.clean()
    yield user_manager
    user_manager.clean()

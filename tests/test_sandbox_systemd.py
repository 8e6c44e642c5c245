"""Sandboxed units start and do their job under a real user manager, as root and as an
unprivileged user (the common case: `vigil apply` by a user, for their own manager).

One config has a job at every level: a standard detector reads a note in the home directory
(and cannot write there), a strict backup writes its `writable` directory (and cannot see the
note), an `off` job writes into the home directory, and a `network: false` job fails to open a
TCP connection that a standard job opens. A deadline watch finds the detector's run, the failure
unit reads the journal of the failed run and pauses the job (`pause_after: 1`: systemctl from
inside its sandbox), and the coordinator delivers everything, the pause alert included, to a
file channel in the home directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.systemd_manager import (
    ManagerUnavailable,
    UserManager,
    private_user_manager,
    skip_or_fail,
    unprivileged_account,
)

pytestmark = pytest.mark.systemd

NAME = "sbx"
NOTE = "water the plants"
PASSWORD = "correct horse"
BACKUP = "back up:1"  # what a unit's path lists split on: quoted in the unit
# TCP from a job to a port the test listens on: reached at standard, refused at network: false.
CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)"


def config(port: int) -> dict:
    finding = 'printf \'{"message": "%s"}\\n\''
    reader = (
        "note=$(cat ~/note.txt); touch ~/scribble 2>/dev/null && home=writable || home=read-only; "
        f'{sys.executable} -c "{CONNECT}" {port} && net=reached || net=unreachable; '
        f'{finding} "reader: $note, home $home, network $net"'
    )
    backup = (
        f'cat "$CREDENTIALS_DIRECTORY/password" > ~/"{BACKUP}/stamp"; '
        "[ -e ~/note.txt ] && note=visible || note=hidden; "
        f'{finding} "backup: stamp written, note $note"'
    )
    return {
        "name": NAME,
        "secrets": {"password": "~/password"},
        "jobs": {
            "reader": {"schedule": "@yearly", "run": reader},
            "backup": {
                "schedule": "@yearly",
                "run": backup,
                "secrets": ["password"],
                "sandbox": {"level": "strict", "writable": [f"~/{BACKUP}"]},
            },
            "free": {
                "schedule": "@yearly",
                "run": f'touch ~/free && {finding} "free: wrote the home directory"',
                "sandbox": {"level": "off"},
            },
            "offline": {
                "schedule": "@yearly",
                "run": [sys.executable, "-c", CONNECT, str(port)],
                "sandbox": {"network": False},
                "pause_after": 1,  # the failure unit stops its timer through the manager's bus
            },
        },
        "watches": {"read": {"deadline": {"job": "reader", "at": "03:00"}}},
        "channels": {"sink": {"file": "~/alerts/deliveries.jsonl"}},
        "coordinator": {"deliver_to": ["sink"]},
    }


@pytest.fixture(scope="module")
def unprivileged_manager() -> Iterator[UserManager]:
    """A private user manager run by an unprivileged account, for this module."""
    stack = contextlib.ExitStack()
    try:
        account = unprivileged_account()
        manager = stack.enter_context(private_user_manager(account, expose=[ROOT]))
    except ManagerUnavailable as error:
        skip_or_fail(f"no unprivileged systemd user manager: {error}")
    with stack:
        yield manager


@pytest.fixture(params=["root", "unprivileged"])
def manager(request: pytest.FixtureRequest) -> Iterator[UserManager]:
    if request.param == "root":
        yield request.getfixturevalue("clean_user_manager")
        return
    manager = request.getfixturevalue("unprivileged_manager")
    manager.clean()
    yield manager
    manager.clean()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    with server:
        yield server


def home_of(manager: UserManager) -> Path:
    return Path(manager.env["HOME"])


def write_as(manager: UserManager, path: Path, text: str | None = None) -> None:
    """Create a file (or with text None, a directory) owned by the manager's user."""
    if text is None:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.write_text(text)
    account = manager.account
    os.chown(path, account.uid, account.gid)


def vigil_as_user(manager: UserManager, *args: str | Path) -> None:
    """`vigil ARGS` run by the manager's user, with its environment, from its home."""
    manager.as_user(
        "env",
        "-C",
        home_of(manager),
        f"PYTHONPATH={ROOT}",
        sys.executable,
        "-c",
        "from compiler.cli.commands import main; main()",
        *map(str, args),
    )


def deliveries(home: Path) -> str:
    path = home / "alerts" / "deliveries.jsonl"
    return path.read_text() if path.exists() else ""


@pytest.fixture
def installed(manager: UserManager, listener: socket.socket) -> Iterator[UserManager]:
    home = home_of(manager)
    if not home.is_relative_to("/home"):
        skip_or_fail(f"the manager's home {home} is not below /home, where ProtectHome= applies")
    for leftover in ("note.txt", "password", "scribble", "free", BACKUP, "alerts", "sbx.yaml"):
        path = home / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for leftover in (f".local/share/vigil/{NAME}", f".local/state/vigil/{NAME}"):
        shutil.rmtree(home / leftover, ignore_errors=True)
    write_as(manager, home / "note.txt", NOTE + "\n")
    write_as(manager, home / "password", PASSWORD)
    write_as(manager, home / BACKUP)
    write_as(manager, home / "alerts")
    text = yaml.safe_dump(config(listener.getsockname()[1]), sort_keys=False)
    write_as(manager, home / "sbx.yaml", text)
    vigil_as_user(manager, "apply", home / "sbx.yaml", "--yes")
    yield manager
    vigil_as_user(manager, "uninstall", home / "sbx.yaml", "--yes")


def test_every_level_starts_and_does_its_job(installed: UserManager, listener) -> None:
    manager = installed
    home = home_of(manager)
    results = {}
    for job in ("reader", "backup", "free", "offline", "watch-read"):
        unit = f"{NAME}-{job}.service"
        manager.systemctl("start", unit, check=False)
        results[job] = manager.show(unit, "Result", "ExecMainStatus")
    assert results == {
        "reader": {"Result": "success", "ExecMainStatus": "0"},
        "backup": {"Result": "success", "ExecMainStatus": "0"},
        "free": {"Result": "success", "ExecMainStatus": "0"},
        "offline": {"Result": "exit-code", "ExecMainStatus": "1"},  # the runner's "failed"
        "watch-read": {"Result": "success", "ExecMainStatus": "0"},
    }
    manager.wait_for_journal(f"{NAME}-watch-read.service", "deadline met: reader succeeded")
    listener.accept()[0].close()  # the standard job's connection; the offline one never came

    # standard reads the home directory but cannot write it; strict sees only what it may.
    assert not (home / "scribble").exists()
    assert (home / BACKUP / "stamp").read_text() == PASSWORD  # LoadCredential= works there
    assert (home / "free").exists()
    # The failure unit (sandboxed too) read the failed run's journal for its alert.
    failure = f"{NAME}-failure@{NAME}-offline.service.service"
    logged = manager.wait_for_journal(failure, "vigil: alert: ")
    alert = json.loads(logged.split("vigil: alert: ", 1)[1].splitlines()[0])
    assert "OSError: [Errno 97] Address family not supported by protocol" in alert["journal"]

    expected = [
        f"reader: {NOTE}, home read-only, network reached",
        "backup: stamp written, note hidden",
        "free: wrote the home directory",
        "offline paused after 1 failure in a row: command exited with status 1; "
        "`vigil enable offline` resumes",
    ]
    manager.wait_for(
        lambda: all(text in deliveries(home) for text in expected),
        timeout=20,
        what=f"{expected} in the deliveries",
    )
    for line in deliveries(home).splitlines():
        assert json.loads(line)  # whole JSON lines, written by the sandboxed coordinator
    coordinator = manager.show(f"{NAME}-coordinator.service", "Result")
    assert coordinator == {"Result": "success"}
    assert manager.show(failure, "Result") == {"Result": "success"}
    paused = manager.show(f"{NAME}-offline.timer", "ActiveState", "UnitFileState")
    assert paused == {"ActiveState": "inactive", "UnitFileState": "disabled"}

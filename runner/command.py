"""Run a job's command: its own process group, a deadline, stderr straight to ours (the
journal), stdout captured for the output contract."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL for a command that ran past its timeout."""


class Stopped(BaseException):
    """The runner itself was told to stop (SIGTERM from systemd): kill the command, record."""


def raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


class CommandResult:
    def __init__(
        self, returncode: int | None, stdout: str, *, timed_out: bool = False, error: str = ""
    ) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.timed_out = timed_out
        self.error = error
        """Why the command could not start (empty when it started)."""


def run_command(argv: list[str], *, env: dict[str, str], cwd: str, timeout: float) -> CommandResult:
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,
            cwd=cwd,
            env=env,
            start_new_session=True,  # a process group of its own, killed as a whole
        )
    except OSError as error:
        where = f" (working directory {cwd})" if error.filename == cwd else ""
        return CommandResult(None, "", error=f"cannot start {argv[0]}: {error.strerror}{where}")
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = kill_group(process)
        return CommandResult(process.returncode, _text(out), timed_out=True)
    except BaseException:
        kill_group(process)
        raise
    return CommandResult(process.returncode, _text(out))


def kill_group(process: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM the whole group, SIGKILL after a grace period; returns what stdout held."""
    out = b""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            out, _ = process.communicate(timeout=KILL_GRACE)
            break
        except subprocess.TimeoutExpired:
            continue
    if process.returncode is None:
        # Something outside the group still holds stdout open: stop waiting for it.
        if process.stdout:
            process.stdout.close()
        process.wait()
    return out or b""


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")

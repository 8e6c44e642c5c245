"""Run a job's command: its own process group, a deadline, stderr straight to ours (the
journal) or, when there are credential values to keep out of it, through a filter line by line,
stdout captured for the output contract."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.redact import ByteStream

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL for a command that ran past its timeout."""
RELAY_WAIT = 2.0
"""Seconds to wait for the last stderr lines once the command ended (a background process
it left may hold stderr open for ever)."""
LINE_LIMIT = 64 * 1024


class Stopped(BaseException):
    """The runner itself was told to stop (SIGTERM from systemd): kill the command, record."""


def raise_stopped(signum: int, _frame: object) -> None:
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


def run_command(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    timeout: float,
    stderr_filter: ByteStream | None = None,
) -> CommandResult:
    relay = _Relay(stderr_filter) if stderr_filter is not None else None
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=relay.write_end if relay else None,
            cwd=cwd,
            env=env,
            start_new_session=True,  # a process group of its own, killed as a whole
        )
    except OSError as error:
        if relay:
            relay.abandon()
        where = f" (working directory {cwd})" if error.filename == cwd else ""
        return CommandResult(None, "", error=f"cannot start {argv[0]}: {error.strerror}{where}")
    if relay:
        relay.start()
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = kill_group(process)
        return CommandResult(process.returncode, _text(out), timed_out=True)
    except BaseException:
        kill_group(process)
        raise
    finally:
        if relay:
            relay.finish()
    return CommandResult(process.returncode, _text(out))


class _Relay:
    """The command's stderr, filtered line by line onto ours (fd 2: the journal)."""

    def __init__(self, line_filter: ByteStream) -> None:
        import threading  # only a job with credentials pays for it

        self.read_end, self.write_end = os.pipe()
        self.filter = line_filter
        self.thread = threading.Thread(target=self._pump, name="stderr-relay", daemon=True)

    def start(self) -> None:
        os.close(self.write_end)  # the command holds the only write end now
        self.thread.start()

    def abandon(self) -> None:
        os.close(self.write_end)
        os.close(self.read_end)

    def finish(self) -> None:
        self.thread.join(RELAY_WAIT)

    def _pump(self) -> None:
        # readline() returns a line as soon as the pipe has it: the journal stays live.
        with open(self.read_end, "rb") as stream:
            while line := stream.readline(LINE_LIMIT):
                self._write(self.filter.feed(line))
            self._write(self.filter.flush())

    @staticmethod
    def _write(data: bytes) -> None:
        while data:
            data = data[os.write(2, data) :]


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

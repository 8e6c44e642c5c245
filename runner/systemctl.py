"""The runner's calls to systemctl, in the manager of its own scope: stopping a paused job's
timers, starting the automatic rollback, asking the heartbeat's questions about timers. None is
on the finding path."""

from __future__ import annotations

import subprocess

from runner.fsatomic import describe

TIMEOUT = 30.0


def systemctl(scope: str, *args: str, timeout: float = TIMEOUT) -> tuple[str, str | None]:
    """(stdout, None) when systemctl succeeded, else ("", why) in one line: its last line of
    error output, or what kept it from running."""
    command = ["systemctl", "--system" if scope == "system" else "--user", "--no-ask-password"]
    try:
        result = subprocess.run(
            [*command, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "", f"systemctl did not answer within {timeout:g}s"
    except OSError as error:
        return "", describe(error)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return "", lines[-1] if lines else f"systemctl exited with status {result.returncode}"
    return result.stdout, None

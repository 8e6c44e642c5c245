"""Talking to systemd: a thin wrapper over `systemctl` and `journalctl` for one scope."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from compiler.errors import VigilError
from compiler.layout import Scope


class SystemdError(VigilError):
    """A systemctl call failed; the message carries its stderr."""


class Systemctl:
    def __init__(self, scope: Scope) -> None:
        if not scope.live:
            raise VigilError("internal: no systemctl for --root installs")
        if shutil.which("systemctl") is None:
            raise SystemdError("systemctl not found: vigil needs systemd (or use --root DIR)")
        self.scope = scope

    def run(
        self, *args: str, check: bool = True, timezone: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = ["systemctl", self.scope.flag, "--no-ask-password", "--no-pager", *args]
        # systemctl prints timestamps in $TZ: show them in the config's timezone when asked.
        env = dict(os.environ, TZ=timezone) if timezone else None
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise SystemdError(f"{' '.join(command)}: timed out") from None
        if check and result.returncode != 0:
            reason = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
            raise SystemdError(f"systemctl {' '.join(args)}: {reason}")
        return result

    def daemon_reload(self) -> None:
        self.run("daemon-reload")

    def enable_now(self, units: Sequence[str]) -> None:
        if units:
            self.run("enable", "--now", *units)

    def disable_now(self, units: Sequence[str]) -> None:
        if units:
            self.run("disable", "--now", *units, check=False)

    def stop(self, units: Sequence[str]) -> None:
        if units:
            self.run("stop", *units, check=False)

    def restart(self, units: Sequence[str]) -> None:
        if units:
            self.run("restart", *units)

    def reset_failed(self, units: Sequence[str]) -> None:
        if units:
            # Units that are not loaded or not failed make this fail; that is fine here.
            self.run("reset-failed", *units, check=False)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        result = self.run("show", unit, "--property=" + ",".join(properties), check=False)
        values = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition("=")
            values[key] = value
        return values

    def show_many(
        self, units: Sequence[str], *properties: str, timezone: str | None = None
    ) -> dict[str, dict[str, str]]:
        """One `systemctl show` for many units: unit -> property -> value."""
        if not units:
            return {}
        prop = "--property=" + ",".join(properties)
        result = self.run("show", *units, prop, check=False, timezone=timezone)
        blocks = result.stdout.split("\n\n")
        shown: dict[str, dict[str, str]] = {}
        for unit, block in zip(units, blocks, strict=False):
            values = {}
            for line in block.splitlines():
                key, _, value = line.partition("=")
                values[key] = value
            shown[unit] = values
        return shown

    def active_state(self, unit: str) -> str:
        return self.show(unit, "ActiveState").get("ActiveState", "unknown")

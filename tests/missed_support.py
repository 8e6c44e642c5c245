"""Helpers for the "did it run?" tests: what systemd says about the timers, and job runs.

The heartbeat asks `systemctl show` which timers run and since when; where no manager runs the
job's timers (the coordinator in-process, on a simulated clock), `FakeSystemd` puts a
`systemctl` on PATH that prints what the test says, in systemd's own format, and the real
coordinator parses it. Runs are written with the runner's own writer.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from runner.clock import parse_iso
from runner.history import RunRecord, append_line, runs

TIMERS_TARGET = "timers.target"


class FakeSystemd:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        directory = root / "fake-bin"
        directory.mkdir(parents=True, exist_ok=True)
        self.output = root / "systemctl-show.txt"
        script = directory / "systemctl"
        script.write_text(f'#!/bin/sh\nexec cat "{self.output}"\n')
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
        self.since: dict[str, datetime | None] = {}  # unit -> when it entered active; None: stopped
        self.enabled: set[str] = set()

    def boot(self, at: datetime) -> None:
        """The manager starts (boot, login): timers.target and every enabled timer with it."""
        self.since[TIMERS_TARGET] = at
        for unit in self.enabled:
            self.since[unit] = at
        self._write()

    def halt(self) -> None:
        """The manager stops: nobody answers."""
        self.output.unlink(missing_ok=True)

    def start(self, unit: str, at: datetime) -> None:
        """`vigil apply` or `vigil enable`: enabled and started now."""
        self.enabled.add(unit)
        self.since[unit] = at
        self._write()

    def stop(self, unit: str) -> None:
        """`vigil disable`, or a pause: stopped and disabled."""
        self.enabled.discard(unit)
        self.since[unit] = None
        self._write()

    def _write(self) -> None:
        blocks = []
        for unit, since in self.since.items():
            active = "active" if since is not None else "inactive"
            stamp = f"@{int(since.timestamp())}" if since is not None else ""
            blocks.append(
                f"Id={unit}\nLoadState=loaded\nActiveState={active}\nActiveEnterTimestamp={stamp}\n"
            )
        self.output.write_text("\n".join(blocks))


def record_run(state: Path, job: str, start: datetime, result: str = "ok") -> None:
    record = RunRecord(job=job, kind="job", config="test", started=start)
    line = record.as_json(result=result, exit_code=0, reason="", ended=start)
    append_line(str(state), line, 5 << 20)


def missed(state: Path, job: str | None = None) -> list[datetime]:
    """The firings recorded missed (of `job`), oldest first."""
    found = [
        parse_iso(record.get("start"))
        for record in runs(str(state))
        if record.get("result") == "missed" and job in (None, record.get("job"))
    ]
    return sorted(moment for moment in found if moment is not None)

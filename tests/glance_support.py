"""The reference workload with a month of run history, for the status page's tests: bruba
(examples/bruba.yaml) with its state directory in a test's folder, quiet hours and a
maintenance window added (so the calendar has shading), and a runs.jsonl of ok runs with
tokens and cost, a failed run with a reason, a skipped and a missed one. The clock is fixed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from compiler.glance.collect import collect
from compiler.glance.model import Glance
from compiler.language.validate import load_config
from compiler.operate.setup import ConfigView
from tests.conftest import ROOT

NOW = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
"""Monday 7 December 2026, 09:30 in New York."""
FAILED_REASON = "exit status 3: calendar API timed out"
FAILED_START = "2026-12-04T12:00:00.120Z"  # Friday 07:00 in New York: calendar-prep
MISSED_START = "2026-12-03T12:15:00Z"  # Thursday's morning briefing
SKIPPED_START = "2026-12-02T09:02:00Z"  # Wednesday's reset: its prep had failed
UNRECORDED_USD = 0.0125
"""What the spend ledger holds for reminder-check beyond the run history (a rotated file)."""
EXTRA = """\
  quiet_hours:
    start: "22:00"
    end: "07:00"
"""
MAINTENANCE = """\
maintenance:
  nightly-reset:
    match: {job: nightly-reset-execute}
    start: "03:30"
    end: "04:30"
    days: [sun]
"""


@dataclass(frozen=True)
class Bruba:
    config: Path
    state: Path

    def glance(self, now: datetime = NOW, days: int = 7, past: int = 30) -> Glance:
        setup = ConfigView.of_config(load_config(self.config).config)
        return collect(setup, now=now, days=days, past=past, warn=unexpected)

    def add_run(self, **record: Any) -> None:
        with (self.state / "runs.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_record(**record)) + "\n")


def unexpected(message: str) -> None:
    pytest.fail(f"unexpected warning: {message}")


def bruba_with_history(folder: Path) -> Bruba:
    """bruba.yaml written into `folder` with its state beside it, and its run history."""
    state = folder / "state"
    state.mkdir(parents=True)
    text = (ROOT / "examples" / "bruba.yaml").read_text(encoding="utf-8")
    text = text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state}\n", 1)
    text = text.replace(
        "coordinator:\n  heartbeat: 15m\n", "coordinator:\n  heartbeat: 15m\n" + EXTRA
    )
    text = text.replace("\nchannels:\n", "\n" + MAINTENANCE + "\nchannels:\n", 1)
    config = folder / "bruba.yaml"
    config.write_text(text, encoding="utf-8")
    bruba = Bruba(config, state)
    records = [*_history()]
    (state / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    _ledger(state, records)
    return bruba


def _record(job: str, start: str, result: str = "ok", **more: Any) -> dict[str, Any]:
    kind = "coordinator" if job == "coordinator" else "job"
    record = {"job": job, "kind": kind, "config": "bruba", "start": start, "result": result}
    record.update({"duration_s": 1.5, "exit_status": 0 if result == "ok" else None})
    return {**record, **more}


def _history() -> list[dict[str, Any]]:
    """Thirty days of the prompt jobs' runs (New York wall clock, as their schedules)."""
    records = []
    for back in range(30, 0, -1):
        day = NOW - timedelta(days=back)
        for hour in (14, 19, 23):  # 09:00, 14:00, 18:00 in New York
            size = 800 + (back * 37 + hour) % 400
            records.append(_spent("reminder-check", day, hour, 0, size, 0.0011 * size / 900))
        if day.weekday() < 5:
            records.append(_spent("calendar-prep", day, 12, 0, 1400, 0.0032))
            records.append(_spent("morning-briefing", day, 12, 15, 1900, 0.0104))
        if day.weekday() == 0:
            records.append(_spent("staleness-check", day, 15, 0, 900, 0.0009))
        for job, minute in (("nightly-reset-prep", 55), ("nightly-reset-execute", 2)):
            hour = 8 if minute == 55 else 9
            records.append(_record(job, _at(day, hour, minute), duration_s=12.0))
    records = [r for r in records if r["start"] not in (FAILED_START, MISSED_START, SKIPPED_START)]
    records.append(
        _record("calendar-prep", FAILED_START, "failed", exit_status=3, reason=FAILED_REASON)
    )
    records.append(_record("morning-briefing", MISSED_START, "missed", duration_s=None))
    records.append(
        _record("nightly-reset-execute", SKIPPED_START, "skipped-after", reason="prep failed")
    )
    return sorted(records, key=lambda record: record["start"])


def _at(day: datetime, hour: int, minute: int) -> str:
    moment = day.replace(hour=hour, minute=minute, second=0)
    return moment.isoformat().replace("+00:00", "Z")


def _spent(
    job: str, day: datetime, hour: int, minute: int, size: int, usd: float
) -> dict[str, Any]:
    start = _at(day, hour, minute)
    out = size // 4
    return _record(job, start, tokens_in=size, tokens_out=out, cost_usd=round(usd, 6))


def _ledger(state: Path, records: list[dict[str, Any]]) -> None:
    """December's ledger: the run history's spend, and UNRECORDED_USD more for one job."""
    jobs: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["start"] < "2026-12-01T05:00" or not record.get("cost_usd"):
            continue
        entry = jobs.setdefault(record["job"], {"tokens": 0, "usd": 0.0, "calls": 0})
        entry["tokens"] += record["tokens_in"] + record["tokens_out"]
        entry["usd"] += record["cost_usd"]
        entry["calls"] += 1
    jobs["reminder-check"]["usd"] += UNRECORDED_USD
    (state / "state").mkdir(exist_ok=True)
    ledger = {"month": "2026-12", "jobs": jobs, "reservations": {}}
    (state / "state" / "spend-2026-12.json").write_text(json.dumps(ledger))


@dataclass
class Served:
    """`vigil serve` running as a subprocess, and the URL it printed."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a person stops it: its exit status and what it wrote on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=20)
        return self.process.returncode, err


def start_serve(config: Path, *args: str) -> Served:
    """`vigil serve --config CONFIG --port 0 ARGS` at NOW, once it has said where it listens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "compiler.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            *args,
        ],
        cwd=ROOT,
        env={**os.environ, "VIGIL_NOW": NOW.isoformat()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(60, process.kill)  # a server that never says where: no hang
    timer.start()
    try:
        line = process.stdout.readline() if process.stdout else ""
    finally:
        timer.cancel()
    if not line.startswith("http://"):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"vigil serve did not start: {line!r} {err}")
    return Served(process, line.strip())


TWO_ZONES = """\
name: dst
timezone: America/New_York
jobs:
  ny-noon:
    schedule: "0 12 * * *"
    run: "echo hi"
  utc-five:
    schedule: "0 17 * * *"
    timezone: UTC
    run: "echo hi"
channels:
  sink:
    file: {folder}/deliveries.jsonl
coordinator:
  deliver_to: [sink]
"""
"""Two daily jobs, New York's noon and UTC's 17:00: the same instant in winter (EST), an hour
apart in summer; its state directory in the test's folder."""


def two_zones(folder: Path) -> ConfigView:
    config = folder / "vigil.yaml"
    config.write_text(TWO_ZONES.format(folder=folder), encoding="utf-8")
    setup = ConfigView.of_config(load_config(config).config)
    state = folder / "state"
    state.mkdir(exist_ok=True)
    return dataclasses.replace(setup, state_dir=str(state))


def write_two_zones_runs(setup: ConfigView, *records: dict[str, object]) -> None:
    lines = [json.dumps({"kind": "job", "config": "dst", **r}) for r in records]
    (Path(setup.state_dir) / "runs.jsonl").write_text("".join(f"{line}\n" for line in lines))


def two_zones_glance(setup: ConfigView, now: datetime, days: int = 7, past: int = 7) -> Glance:
    return collect(setup, now=now, days=days, past=past, warn=lambda _: None)

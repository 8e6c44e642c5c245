"""The coordinator under a real systemd user manager: the path unit starts it when a finding is
renamed into the inbox, and a burst of findings is delivered completely without the path unit
or the service hitting a start limit."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

NAME = "cs"
BURST = 1000
FLOOD = 5000  # delivered in well under a minute here, so CI runs the full size
WRITERS = 4
CONFIG = """\
name: cs
state_dir: {state}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
  sources:
    burst: {{external: true}}
    flood: {{external: true}}
    probe: {{external: true}}
"""


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path):
    return vigil_manager, apply_config(vigil, tmp_path, NAME, CONFIG)


def drop(state: Path, name: str, finding: dict) -> None:
    """Write a finding beside the inbox (same filesystem) and rename it in, as writers do."""
    outside = state / "writer"
    outside.mkdir(exist_ok=True)
    temp = outside / name
    temp.write_text(json.dumps(finding))
    os.rename(temp, state / "inbox" / name)


def finding(source: str, message: str) -> dict:
    return {"source": source, "timestamp": "2026-01-01T00:00:00Z", "message": message}


def delivered(state: Path) -> list[dict]:
    path = state / "deliveries.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def coordinator_runs(state: Path) -> list[dict]:
    path = state / "runs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [run for run in map(json.loads, lines) if run["kind"] == "coordinator"]


def leftovers(state: Path) -> list[str]:
    return sorted(
        f"{directory}/{entry.name}"
        for directory in ("inbox", "processing")
        if (state / directory).exists()
        for entry in (state / directory).iterdir()
    )


def journal_cursor(manager) -> str:
    """Where the journal ends now: read on from here with --after-cursor."""
    manager.sync_journal()
    output = manager.journalctl("-n", "0", "--show-cursor").stdout
    return output.split("-- cursor: ", 1)[1].strip()


def failed_units(manager) -> list[str]:
    output = manager.systemctl("list-units", "--all", "--failed", "--plain", "--no-legend").stdout
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def stop_lingering(manager) -> None:
    """Stop the coordinator's run if it still lingers for the next finding: it exits at once
    and cleanly (SIGTERM while it waits)."""
    unit = f"{NAME}-coordinator.service"
    manager.systemctl("stop", unit)
    assert manager.show(unit, "ActiveState", "Result") == {
        "ActiveState": "inactive",
        "Result": "success",
    }


def test_a_finding_renamed_into_the_inbox_is_delivered_through_the_path_unit(installed) -> None:
    manager, state = installed
    assert manager.show(f"{NAME}-coordinator.path", "ActiveState")["ActiveState"] == "active"
    drop(state, "probe-1.json", finding("probe", "the probe landed"))
    lines = manager.wait_for(lambda: delivered(state), timeout=15, what="the delivered line")
    assert len(lines) == 1
    assert lines[0]["channel"] == "sink"
    assert lines[0]["body"] == "• the probe landed [r1]"
    assert lines[0]["sources"] == ["probe"]
    assert lines[0]["title"] == f"{NAME}: 1 new"
    # The line is written before the run is recorded; wait for the record of that run.
    runs = manager.wait_for(lambda: coordinator_runs(state), timeout=10, what="a coordinator run")
    assert sum(run["findings"] for run in runs) == 1
    assert all(run["result"] == "ok" and run["tokens_in"] == 0 for run in runs)
    assert runs[0]["invocation_id"]  # started by systemd, not by hand
    assert leftovers(state) == []
    shown = manager.show(f"{NAME}-coordinator.path", "ActiveState", "Result")
    assert shown == {"ActiveState": "active", "Result": "success"}


def coded(line: str) -> tuple[str, int]:
    """A delivered line and the number of the code it ends in."""
    found = re.fullmatch(r"(.*) \[r(\d+)\]", line)
    assert found, f"no code at the end of {line!r}"
    return found.group(1), int(found.group(2))


START_LIMIT_INTERVAL = 10.0  # DefaultStartLimitIntervalSec


def test_a_burst_of_findings_is_delivered_completely(installed) -> None:
    manager, state = installed
    messages = [f"burst finding {number:04d}" for number in range(BURST)]
    started = time.monotonic()
    for number, message in enumerate(messages):
        drop(state, f"burst-{number:04d}.json", finding("burst", message))
        # Spread over one second, so the coordinator is started again and again meanwhile.
        time.sleep(max(0.0, started + (number + 1) / BURST - time.monotonic()))
    written = time.monotonic() - started
    # A burst that trips systemd's default start limit (5 starts in 10 s) unless the coordinator
    # has StartLimitIntervalSec=0: on a loaded machine writing it takes longer than a second.
    assert written < START_LIMIT_INTERVAL, f"writing the burst took {written:.2f} s"

    def all_recorded() -> int:
        path = manager.show(f"{NAME}-coordinator.path", "ActiveState", "Result")
        assert path["ActiveState"] != "failed", f"the path unit stopped watching: {path}"
        total = sum(run["findings"] for run in coordinator_runs(state))
        return total if total >= BURST else 0

    assert manager.wait_for(all_recorded, timeout=40, what=f"{BURST} findings recorded") == BURST
    stop_lingering(manager)
    lines = delivered(state)
    bodies = [line for record in lines for line in record["body"].splitlines()]
    # Written one after another, the findings are taken in that order: finding n is r(n+1).
    assert sorted(bodies) == sorted(
        f"• {message} [r{number + 1}]" for number, message in enumerate(messages)
    )
    assert sum(int(record["title"].split()[1]) for record in lines) == BURST
    runs = coordinator_runs(state)
    assert len(runs) >= 2, "the burst should take more than one coordinator run"
    assert all(run["result"] == "ok" for run in runs)
    assert leftovers(state) == []
    path = manager.show(f"{NAME}-coordinator.path", "ActiveState", "Result")
    assert path == {"ActiveState": "active", "Result": "success"}
    service = manager.show(f"{NAME}-coordinator.service", "Result")
    assert service == {"Result": "success"}
    assert "start-limit-hit" not in (path["Result"], service["Result"])
    assert [unit for unit in failed_units(manager) if unit.startswith(f"{NAME}-")] == []


def test_a_flood_of_findings_written_as_fast_as_possible_is_delivered(installed) -> None:
    """FLOOD findings from WRITERS threads with no pause at all: every one delivered exactly
    once, the path unit still watching, no start limit hit anywhere."""
    manager, state = installed
    (state / "writer").mkdir(exist_ok=True)
    messages = [f"flood finding {number:05d}" for number in range(FLOOD)]

    def write(first: int) -> None:
        for number in range(first, FLOOD, WRITERS):
            drop(state, f"flood-{number:05d}.json", finding("flood", messages[number]))

    def bodies() -> list[str]:
        return [line for record in delivered(state) for line in record["body"].splitlines()]

    def all_delivered() -> bool:
        path = manager.show(f"{NAME}-coordinator.path", "ActiveState", "Result")
        assert path["ActiveState"] != "failed", f"the path unit stopped watching: {path}"
        return len(bodies()) >= FLOOD

    cursor = journal_cursor(manager)
    started = time.monotonic()
    threads = [threading.Thread(target=write, args=(first,)) for first in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = time.monotonic() - started
    manager.wait_for(all_delivered, timeout=120, interval=0.2, what=f"{FLOOD} findings delivered")
    took = time.monotonic() - started
    stop_lingering(manager)
    # Codes go in the order the findings are taken, which the writers' race decides: each line
    # ends in a code of its own, and between them the lines have r1..rFLOOD.
    said = [coded(line) for line in bodies()]
    assert sorted(text for text, _ in said) == [f"• {message}" for message in messages]  # all once
    assert sorted(number for _, number in said) == list(range(1, FLOOD + 1))
    runs = coordinator_runs(state)
    assert sum(run["findings"] for run in runs) == FLOOD
    assert all(run["result"] == "ok" and run["invocation_id"] for run in runs)
    assert leftovers(state) == []
    path = manager.show(f"{NAME}-coordinator.path", "ActiveState", "Result")
    assert path == {"ActiveState": "active", "Result": "success"}
    service = manager.show(f"{NAME}-coordinator.service", "Result", "NRestarts")
    assert service == {"Result": "success", "NRestarts": "0"}
    assert [unit for unit in failed_units(manager) if unit.startswith(f"{NAME}-")] == []

    def journal() -> str:
        manager.sync_journal()
        return manager.journalctl("--output=cat", f"--after-cursor={cursor}").stdout

    # The manager's own lines are there to be searched: one start per service run, which
    # records one or more passes (a warm run handles the findings that land while it lingers).
    starts = f"Starting {NAME}-coordinator.service"
    started_runs = len({run["invocation_id"] for run in runs})
    text = manager.wait_for(
        lambda: (text := journal()).count(starts) == started_runs and text,
        timeout=10,
        what=f"{started_runs} coordinator starts in the journal",
    )
    assert "start-limit-hit" not in text
    assert "Start request repeated too quickly" not in text
    print(
        f"\nflood: {FLOOD} findings written in {written:.2f} s by {WRITERS} threads, all "
        f"delivered after {took:.2f} s in {len(runs)} coordinator runs "
        f"({len(delivered(state))} messages)"
    )

"""The acceptance test of `vigil export` and `vigil import`: a setup in use on one machine (a
private systemd user manager with its own home) moves to a fresh one, and carries on where it
was: the nag ladder at the next step, not the first; the month's spend; the run history."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd_manager import (
    ManagerUnavailable,
    UserManager,
    private_user_manager,
    skip_or_fail,
)

CONFIG = """\
name: mv
timezone: UTC
jobs:
  hello:
    schedule: "*-*-* 03:00:00"
    run: "echo hi"
channels:
  sink: {file: ~/.local/state/vigil/mv/sink.jsonl}
coordinator:
  deliver_to: [sink]
  sources:
    todo: {external: true}
nag:  # one rung that keeps nagging: the message says which nag it is
  todo: {source: todo, items: overdue, key: id,
         ladder: [{min_count: 1, message: "nag {count}: {id}"}]}
"""


class Machine:
    def __init__(self, manager: UserManager) -> None:
        self.manager = manager
        self.home = Path(manager.env["HOME"])
        self.state = self.home / ".local/state/vigil/mv"
        self.config = self.home / "agent/vigil.yaml"

    def vigil(self, *args: str | Path, check: bool = True) -> str:
        result = self.manager.run(
            "env", f"PYTHONPATH={ROOT}", sys.executable, "-c",
            "from compiler.cli.commands import main; main()", *map(str, args), check=check,
        )  # fmt: skip
        return result.stdout + result.stderr

    def vigil_json(self, *args: str | Path) -> list[dict[str, object]]:
        result = self.manager.run(
            "env", f"PYTHONPATH={ROOT}", sys.executable, "-c",
            "from compiler.cli.commands import main; main()", *map(str, args), "--json",
            check=False,
        )  # fmt: skip
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def delivered(self) -> list[str]:
        sink = self.state / "sink.jsonl"
        if not sink.exists():
            return []
        return [json.loads(line)["body"] for line in sink.read_text().splitlines() if line]

    def nag_due(self, count: int) -> list[str]:
        """Drop the overdue item and wait for the coordinator to deliver the nag."""
        finding = {"source": "todo", "timestamp": _now(), "overdue": [{"id": "rent"}]}
        inbox = self.state / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        temporary = self.state / f".finding-{count}.json"
        temporary.write_text(json.dumps(finding))
        temporary.rename(inbox / f"todo-{count}.json")
        return self.manager.wait_for(
            lambda: [b for b in self.delivered() if f"nag {count}: rent" in b],
            timeout=30,
            what=f"nag {count}",
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture
def two_machines() -> Iterator[tuple[Machine, Machine]]:
    with contextlib.ExitStack() as stack:
        machines = []
        for _ in range(2):
            try:
                machines.append(Machine(stack.enter_context(private_user_manager())))
            except ManagerUnavailable as error:
                skip_or_fail(f"no private systemd user manager: {error}")
        yield machines[0], machines[1]


def test_a_setup_moved_to_a_fresh_machine_continues_where_it_was(two_machines, tmp_path) -> None:
    old, new = two_machines
    old.config.parent.mkdir(parents=True)
    old.config.write_text(CONFIG)
    old.vigil("apply", old.config, "--yes")
    old.vigil("run", "hello", "--wait", "--config", old.config)
    old.nag_due(1)
    old.nag_due(2)
    month = datetime.now(UTC).strftime("%Y-%m")
    ledger = {
        "version": 1,
        "month": month,
        "jobs": {"hello": {"tokens": 123_456, "usd": 1.2345, "calls": 3}},
        "reservations": {},
    }  # what a month of model calls booked (the job itself calls no model)
    (old.state / f"state/spend-{month}.json").write_text(json.dumps(ledger))
    cost = old.vigil_json("cost", old.config)
    hello = next(row for row in cost if row.get("job") == "hello")
    assert (hello["spent_usd"], hello["spent_tokens"]) == (1.2345, 123_456)
    status = old.vigil_json("status", "--config", old.config)

    archive = tmp_path / "mv.tar.gz"
    summary = old.vigil("export", "--out", archive, "--config", old.config)
    assert "generations: 1 (current: 1)" in summary, summary
    imported = new.vigil("import", archive, "--yes")
    assert "mv: generation 2" in imported, imported
    assert new.config.read_text() == CONFIG
    stamp = "systemd/timers/stamp-mv-hello.timer"  # the timer's last trigger came along
    assert (new.home / ".local/share" / stamp).stat().st_mtime == pytest.approx(
        (old.home / ".local/share" / stamp).stat().st_mtime
    )

    earlier = len(new.delivered())  # the sink is in the state directory: restored too
    new.nag_due(3)
    since = new.delivered()[earlier:]
    assert any("nag 3: rent" in body for body in since), since
    assert not any("nag 1" in body or "nag 2" in body for body in since), since
    assert new.vigil_json("cost", new.config) == cost
    shown = {row["name"]: row for row in new.vigil_json("status", "--config", new.config)}
    before = {row["name"]: row for row in status}
    for field in ("last_run", "result", "duration_s", "tokens_month", "cost_month"):
        assert shown["hello"][field] == before["hello"][field], field
    history = new.vigil("history", "--name", "mv")
    assert "import from mv.tar.gz" in history, history

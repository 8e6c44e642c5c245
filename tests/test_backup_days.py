"""Moving to a new machine changes nothing the person is told: the real coordinator runs through
seven weeks in New York (the clock change of 1 November, the ends of October and November,
quiet hours) on one machine, and again on a machine that is exported and imported into another
home part way; what both send, and the state they end with, are the same.

Each machine is a home directory (`--root`, HOME pointing at it while it runs): `vigil apply`
installs there, the coordinator runs in-process on the installed spec at simulated times, and
`vigil export` / `vigil import` move it, as a person would between two passes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.coordinator import load_spec, run
from runner.spectypes import CoordinatorSpecJSON
from tests import test_backup as machine
from tests.conftest import require_systemd_analyze
from tests.coordinator_support import drop

ZONE = ZoneInfo("America/New_York")
FIRST, LAST = date(2026, 10, 20), date(2026, 12, 8)
PASSES = (time(9, 0), time(13, 0), time(21, 0), time(23, 30))

CONFIG = """\
name: mv
timezone: America/New_York
channels:
  sink: {file: ~/sink.jsonl}
coordinator:
  deliver_to: [sink]
  quiet_hours: {start: "22:00", end: "07:00"}
  sources:
    todo: {external: true}
    stale: {external: true}
    mail: {external: true}
nag:
  todo: {source: todo, items: overdue, key: id, days_field: days, min_interval: 20h,
         stop_after: 3, ladder: [{min_count: 1, message: "nag 1: {id}"},
                                 {min_count: 2, message: "nag 2: {id}"},
                                 {min_count: 3, message: "nag 3: {id}"}]}
  weekly: {source: stale, items: projects, key: name, once_per: 7d, message: "{name} is stale"}
watches:
  urgent:
    match: {source: mail, items: messages, key: id, any: [{field: subject, regex: urgent}]}
    message: "Urgent: {key}"
    repeat: 1d
"""

MOVES = {
    "the night the clocks go back": datetime(2026, 10, 31, 23, 45, tzinfo=ZONE),
    "the last evening of November": datetime(2026, 11, 30, 22, 0, tzinfo=ZONE),
}


class Machine(machine.Machine):
    name = "mv"

    def spec(self) -> CoordinatorSpecJSON:
        """The installed spec as the coordinator's unit reads it (`~` is this home)."""
        return load_spec(str(self.data / "current/specs/coordinator.json"))

    def told(self) -> list[str]:
        """Every message the sink got: title and body (ids and times are the machine's)."""
        path = self.home / "sink.jsonl"
        if not path.exists():
            return []
        messages = map(json.loads, path.read_text().splitlines())
        return [f"{message['title']}\n{message['body']}" for message in messages]

    def nag_items(self) -> dict[str, Any]:
        """Each nag rule's items: counts, steps, when last nagged (a pass's claim id aside)."""
        return {
            path.name: json.loads(path.read_text())["items"]
            for path in sorted((self.state / "state").glob("nag-*.json"))
        }


def timeline() -> Iterator[tuple[datetime, list[dict[str, Any]]]]:
    """Each pass: when, and the findings dropped just before it. A chore is overdue for ten
    days from every third day on; two projects are stale on Mondays and Thursdays; every
    ninth day an urgent mail arrives late in the evening (in quiet hours)."""
    day = FIRST
    while day <= LAST:
        n = (day - FIRST).days
        for at in PASSES:
            moment = datetime.combine(day, at, ZONE)
            found: list[dict[str, Any]] = []
            if at == time(9, 0):
                chores = [{"id": f"T{k}", "days": n - 3 * k} for k in range(n // 3 + 1)]
                open_chores = [c for c in chores if c["days"] < 10]
                found.append({"source": "todo", "timestamp": "x", "overdue": open_chores})
                if day.weekday() in (0, 3):
                    projects = [{"name": "alpha"}, {"name": "beta"}]
                    found.append({"source": "stale", "timestamp": "x", "projects": projects})
            if at == time(23, 30) and n % 9 == 4:
                mail = [{"id": f"m{n}", "subject": "urgent: the roof"}]
                found.append({"source": "mail", "timestamp": "x", "messages": mail})
            yield moment, found
        day += timedelta(days=1)


def apply(vigil, machine: Machine) -> None:
    config = machine.home / "agent/vigil.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG)
    result = vigil("apply", config, "--root", machine.home, "--yes")
    assert result.exit_code == 0, result.stderr


def live(machine: Machine, passes: list[tuple[datetime, list[dict[str, Any]]]]) -> None:
    machine.enter()
    spec = machine.spec()
    for moment, findings in passes:
        for finding in findings:
            drop(machine.state, finding)
        run(spec, moment.astimezone(ZoneInfo("UTC")))


@pytest.mark.parametrize("move", list(MOVES), ids=list(MOVES))
def test_a_setup_moved_part_way_tells_what_it_would_have_told(
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, move: str
) -> None:
    require_systemd_analyze()  # apply verifies the units
    passes = list(timeline())
    before = [p for p in passes if p[0] < MOVES[move]]
    after = passes[len(before) :]

    stayed = Machine(tmp_path / "stayed", monkeypatch).enter()
    apply(vigil, stayed)
    live(stayed, passes)

    old = Machine(tmp_path / "old", monkeypatch).enter()
    apply(vigil, old)
    live(old, before)
    archive = tmp_path / "mv.tar.gz"
    result = vigil("export", "--out", archive, "--name", "mv", "--root", old.home)
    assert result.exit_code == 0, result.stderr
    new = Machine(tmp_path / "new", monkeypatch).enter()
    result = vigil("import", archive, "--root", new.home, "--yes")
    assert result.exit_code == 0, result.stderr
    live(new, after)

    told = stayed.told()
    assert len(told) > 40  # nags, weekly mentions, urgent mails and their repeats
    assert old.told() + new.told() == told
    assert new.told(), "nothing was said after the move"
    assert new.nag_items() == stayed.nag_items()
    ladder = [line for message in told for line in message.splitlines() if "nag 3:" in line]
    assert len(ladder) == (LAST - FIRST).days // 3  # every chore climbed the whole ladder

"""The fleet coordinator's state over simulated days: the single machine's pass, its state
directory mirrored to a real JetStream KV bucket and loaded anew by a "successor" every few
days, must tell the person exactly what the same pass on a plain state directory tells them,
through 263 days in New York (both clock changes, nine month ends), with nag ladders, weekly
periods, caps and quiet hours, and a delivery ledger kept to the size a NATS message takes."""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from runner import fsatomic
from runner.coordinator import run
from runner.fleet.client import Connection
from runner.fleet.jetstream import JetStream
from runner.fleet.mirror import Mirror
from tests.coordinator_support import delivered, drop
from tests.fleet_support import set_up
from tests.nats_cluster import NatsCluster, nats_cluster  # noqa: F401 (the fixture)
from tests.test_nag_days import finding, local, spec_in

ZONE = "America/New_York"
DAYS = 263  # 2026-02-25 .. 2026-11-15: spring forward (03-08), fall back (11-01)
STEPS = ((8, 0), (15, 30), (23, 30))  # local times; 23:30 is in quiet hours


def day_findings(rng: random.Random, day: int) -> list[dict[str, Any]]:
    overdue = [k for k in "ABCDEFG" if rng.random() < 0.5]
    found = [finding("todo", "overdue", *overdue, days=day % 9)]
    found.append(finding("stale", "projects", *[p for p in ("x", "y") if rng.random() < 0.6]))
    found.append(finding("seen", "items", *[k for k in "PQ" if rng.random() < 0.7]))
    if rng.random() < 0.2:
        found.append({"source": "keep", "timestamp": "x", "items": [{"id": "K"}]})
    return found


def said(sink_state: Path) -> list[tuple[str, str]]:
    return [(m["title"], m["body"]) for m in delivered(sink_state, "sink")]


def test_a_coordinator_that_changes_hands_tells_what_one_machine_would(
    vigil,  # type: ignore[no-untyped-def]
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = spec_in(vigil, tmp_path, ZONE)
    spec["coordinator"]["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": None}
    local_state, fleet_sink, work = tmp_path / "state", tmp_path / "fleet-sink", tmp_path / "work"
    fleet_sink.mkdir()
    fleet_spec = copy.deepcopy(spec)
    fleet_spec["state_dir"] = str(work)
    fleet_spec["channels"]["sink"]["file"] = str(fleet_sink / "sink.jsonl")
    rng = random.Random(18)
    start = local(ZONE, 2026, 2, 25)
    handovers = 0
    with Connection(nats_cluster.urls) as connection:
        set_up(connection)
        stream = JetStream(connection)

        def take_office() -> Mirror:
            mirror = Mirror(stream, "vigil-demo-state", str(work), lambda: True)
            mirror.load()
            mirror.attach()
            return mirror

        mirror = take_office()
        try:
            for day in range(DAYS):
                findings = day_findings(rng, day)
                for step, (hour, minute) in enumerate(STEPS):
                    now = (start + timedelta(days=day)).replace(hour=hour, minute=minute)
                    if step == 0:
                        for item in findings:
                            drop(local_state, item)
                            drop(work, item)
                    run(spec, now)
                    run(fleet_spec, now)
                    mirror.removed()
                if day % 5 == 4:  # the machine dies between passes: another takes over
                    mirror.detach()
                    for leftover in ("inbox", "tmp"):
                        assert not list((work / leftover).glob("[!.]*"))
                    mirror = take_office()
                    handovers += 1
        finally:
            mirror.detach()
    told, fleet_told = said(local_state), said(fleet_sink)
    assert len(told) > DAYS // 2  # said on most days: the comparison means something
    assert fleet_told == told
    assert handovers == DAYS // 5
    assert fsatomic.mirror is None and fsatomic.durable

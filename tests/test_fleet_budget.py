"""Budgets are fleet-wide: two "hosts" (state directories of their own) book their model calls
in one spend ledger in the real three-node cluster's KV, with real runner processes against the
loopback Messages API (the real `anthropic` SDK)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runner.clock import iso
from tests.fleet_support import fleet_json
from tests.nats_cluster import NatsCluster, free_ports, nats_cluster  # noqa: F401 (the fixture)
from tests.runner_support import (
    FakeMessagesAPI,
    credentials,
    fake_api,
    inbox,
    llm_spec,
    run_runner,
    runner_env,
    runs,
    write_spec,
)
from tests.test_runner_spend import CALL, call_in_flight, start_runner, worst_tokens

__all__ = ["fake_api"]

HOSTS = ["a", "b"]
FEBRUARY = datetime(2026, 2, 20, 14, 0, tzinfo=UTC)
KEY = "spend-2026-02"  # the month of FEBRUARY in the spec's zone (America/New_York)


def host_spec(
    tmp_path: Path, api: FakeMessagesAPI, servers: list[str], host: str, monthly_tokens: int
) -> Path:
    """The compiled reminder-check spec as a prompt job of fleet host `host`, with a global
    token budget; its state directory is the host's own."""
    spec = llm_spec(tmp_path, api, "echo 'r1 Pay rent 3 days'", max_tokens=300)
    spec.update(
        state_dir=str(tmp_path / host / "state"),
        host=host,
        fleet=fleet_json(servers, host, HOSTS, ["a"]),
        budgets=[{"scope": "global", "monthly_tokens": monthly_tokens, "monthly_usd": None}],
    )
    (tmp_path / host).mkdir(exist_ok=True)
    return write_spec(tmp_path / host, spec, f"{spec['job']}.json")


def env(tmp_path: Path, now: datetime = FEBRUARY) -> dict[str, str]:
    return runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)), VIGIL_NOW=iso(now))


def fleet_ledger(servers: list[str], key: str = KEY) -> dict[str, Any]:
    from runner.fleet.client import Connection
    from runner.fleet.jetstream import JetStream
    from runner.fleet.names import spend_bucket

    with Connection(servers) as connection:
        entry = JetStream(connection).get(spend_bucket("bruba"), key)
    assert entry is not None and entry.value is not None
    data: dict[str, Any] = json.loads(entry.value)
    return data


def one_call_fits(tmp_path: Path, api: FakeMessagesAPI, servers: list[str]) -> int:
    """A budget with room for one call and the worst case of the next, less one token."""
    spec = json.loads(host_spec(tmp_path, api, servers, "a", 1).read_text())
    return CALL + worst_tokens(spec) - 1


def test_a_host_with_no_spend_of_its_own_is_refused_once_the_fleet_used_the_budget(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    servers = nats_cluster.urls
    budget = one_call_fits(tmp_path, fake_api, servers)
    on_a = host_spec(tmp_path, fake_api, servers, "a", budget)
    on_b = host_spec(tmp_path, fake_api, servers, "b", budget)

    first = run_runner("job", on_a, env=env(tmp_path))
    assert first.returncode == 0, first.stderr
    assert fake_api.calls == 1
    booked = fleet_ledger(servers)
    assert booked["jobs"] == {"reminder-check": {"tokens": CALL, "usd": 0.002, "calls": 1}}
    assert booked["reservations"] == {}

    refused = run_runner("job", on_b, env=env(tmp_path))
    assert refused.returncode == 7, refused.stderr
    assert fake_api.calls == 1
    state_b = tmp_path / "b" / "state"
    [run] = runs(state_b)
    assert run["result"] == "budget"
    assert f"{CALL} of {budget} tokens used" in run["reason"]
    assert not list((state_b / "state").glob("spend-*")), "b booked in a file of its own"
    [alert] = inbox(state_b)
    assert alert["kind"] == "budget" and alert["budget"] == "global"


def test_a_month_without_a_ledger_in_nats_starts_from_zero(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    """A host's runs.jsonl holds only its own runs: it is no count of the fleet's month."""
    from tests.test_runner_budget import seed_usage

    on_b = host_spec(tmp_path, fake_api, nats_cluster.urls, "b", 1500)
    seed_usage(tmp_path / "b" / "state", "reminder-check", 10_000_000, 50.0, FEBRUARY)
    result = run_runner("job", on_b, env=env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 1
    assert fleet_ledger(nats_cluster.urls)["jobs"]["reminder-check"]["tokens"] == CALL


def test_runs_on_both_hosts_at_once_never_overbook(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    """Three runs on each host start together against a budget that holds one call's worst
    case and not two: one calls the model, every other sees its reservation (or its spend)."""
    servers = nats_cluster.urls
    fake_api.default = "hang"  # every call takes a second: the runs overlap
    fake_api.hang_seconds = 1.0
    spec = json.loads(host_spec(tmp_path, fake_api, servers, "a", 1).read_text())
    assert worst_tokens(spec) <= 1500 < 2 * worst_tokens(spec)
    processes = []
    for host in HOSTS:
        path = host_spec(tmp_path, fake_api, servers, host, 1500)
        for job in ("reminder-check", "calendar-prep", "morning-briefing"):
            spec = {**json.loads(path.read_text()), "job": job}
            processes.append(start_runner(write_spec(tmp_path / host, spec, f"{job}.json"),
                                          env(tmp_path)))  # fmt: skip
    codes = sorted(process.wait(timeout=120) for process in processes)
    assert codes == [0, 7, 7, 7, 7, 7], [p.stderr.read() for p in processes if p.stderr]
    assert fake_api.calls == 1
    booked = fleet_ledger(servers)
    assert booked["reservations"] == {}
    assert sum(job["tokens"] for job in booked["jobs"].values()) == CALL


def test_concurrent_bookings_from_two_hosts_lose_no_update(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The compare-and-set loop on its own: two hosts, three writers each, 15 bookings per
    writer, all at once; every one of them is in the ledger."""
    from runner.fleet.spendstore import KvStore
    from runner.history import Usage
    from runner.spend import book

    fleets = {host: fleet_json(nats_cluster.urls, host, HOSTS, ["a"]) for host in HOSTS}
    for host in HOSTS:
        (tmp_path / host / "state").mkdir(parents=True)
    errors: list[BaseException] = []

    def writer(host: str, job: str) -> None:
        store = KvStore(str(tmp_path / host), "bruba", "UTC", fleets[host])
        try:
            for _ in range(15):
                book(store, FEBRUARY, FEBRUARY, lambda ledger: ledger.settle("k", job, Usage(1)))
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=writer, args=(host, f"{host}{n}")) for host in HOSTS for n in "123"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    booked = fleet_ledger(nats_cluster.urls, "spend-2026-02")
    assert {job: figures["tokens"] for job, figures in booked["jobs"].items()} == {
        f"{host}{n}": 15 for host in HOSTS for n in "123"
    }


def test_a_run_killed_on_one_host_holds_its_reservation_on_the_other_until_its_time(
    nats_cluster: NatsCluster,  # noqa: F811
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
) -> None:
    """Host b cannot tell whether a's process lives: a's reservation stands until its `until`
    (not released the moment b looks), and is booked as spent after it, saying whose it was:
    what a's call may have cost still counts against b's next one."""
    servers = nats_cluster.urls
    fake_api.default = "hang"
    fake_api.hang_seconds = 30.0
    on_a = host_spec(tmp_path, fake_api, servers, "a", 1500)
    on_b = host_spec(tmp_path, fake_api, servers, "b", 1500)
    worst = worst_tokens(json.loads(on_a.read_text()))
    killed = call_in_flight(on_a, env(tmp_path), fake_api)
    killed.kill()
    killed.wait()
    [held] = fleet_ledger(servers)["reservations"].values()
    assert (held["host"], held["pid"], held["tokens"]) == ("a", killed.pid, worst)
    until = datetime.fromisoformat(held["until"])

    before = run_runner("job", on_b, env=env(tmp_path, until - timedelta(seconds=5)))
    assert before.returncode == 7, before.stderr
    assert f"{worst} of 1500 tokens used ({worst} reserved by runs in progress)" in before.stderr
    assert list(fleet_ledger(servers)["reservations"].values()) == [held]
    assert fake_api.calls == 1

    after = run_runner("job", on_b, env=env(tmp_path, until + timedelta(seconds=1)))
    assert after.returncode == 7, after.stderr
    assert f"{worst} of 1500 tokens used, the next call" in after.stderr  # spent, not reserved
    assert fake_api.calls == 1
    booked = fleet_ledger(servers)
    assert booked["reservations"] == {}
    entry = booked["jobs"]["reminder-check"]
    assert (entry["tokens"], entry["calls"]) == (worst, 1)
    [note] = entry["notes"]
    assert f"a run on a (pid {killed.pid}) ended without booking its calls" in note


def test_without_nats_the_model_is_not_called(tmp_path: Path, fake_api: FakeMessagesAPI) -> None:
    [port] = free_ports(1)
    on_a = host_spec(tmp_path, fake_api, [f"nats://127.0.0.1:{port}"], "a", 1_000_000)
    result = run_runner("job", on_a, env=env(tmp_path))
    assert result.returncode == 7, result.stderr
    assert fake_api.calls == 0
    state = tmp_path / "a" / "state"
    [run] = runs(state)
    assert run["result"] == "budget"
    assert run["reason"].startswith(
        "model not called: the fleet's spend ledger (NATS bucket vigil-bruba-spend) cannot be "
        "used: no NATS server answered"
    )
    [alert] = inbox(state)
    assert "NATS" in alert["message"] and "the model is not called" in alert["message"]
    again = run_runner("job", on_a, env=env(tmp_path))
    assert again.returncode == 7
    assert len(inbox(state)) == 1, "one alert a day"
    assert fake_api.calls == 0

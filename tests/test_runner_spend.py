"""The spend ledger: what budgets count survives runs.jsonl's rotation, runs started together
cannot spend the same remainder, a dead run's reservation lapses, and months follow the config's
timezone. Real runner processes against the loopback Messages API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.clock import iso
from runner.llm_reply import expected_input_tokens
from tests.runner_support import (
    ROOT,
    FakeMessagesAPI,
    RunnerCall,
    credentials,
    fake_api,
    inbox,
    llm_spec,
    run_runner,
    runner_env,
    runner_in_process,
    runs,
    shell_spec,
    write_spec,
)

__all__ = ["fake_api", "runner_in_process"]

OUTPUT = "r1 Pay rent 3 days"
CALL = 1000 + 200  # tokens the fake API reports for each call


def spend_spec(tmp_path: Path, api: FakeMessagesAPI, **budget: Any) -> dict[str, Any]:
    spec = llm_spec(tmp_path, api, f"echo '{OUTPUT}'")
    spec["budgets"] = [{"scope": "global", **budget}]
    return spec


def worst_tokens(spec: dict[str, Any]) -> int:
    return expected_input_tokens(spec["llm"]["prompt"], OUTPUT + "\n") + spec["llm"]["max_tokens"]


def ledger(state: Path, month: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state / "state" / f"spend-{month}.json").read_text())
    return data


def this_month() -> str:
    from runner.spend import month_start

    return month_start(datetime.now(UTC), "America/New_York")[1]


def test_spend_survives_the_rotation_of_runs_jsonl(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    spec = spend_spec(tmp_path, fake_api)
    spec["budgets"][0]["monthly_tokens"] = CALL + worst_tokens(spec) - 1  # room for one call
    path = write_spec(tmp_path, spec)
    creds = str(credentials(tmp_path))
    assert runner_in_process("job", path, CREDENTIALS_DIRECTORY=creds).returncode == 0
    assert fake_api.calls == 1

    # A busy job rotates the model's run out of runs.jsonl and runs.jsonl.1.
    busy = write_spec(tmp_path, shell_spec(tmp_path, "true", history_max_bytes=600), "busy.json")
    for _ in range(4):
        assert runner_in_process("job", busy).returncode == 0
    kept = runs(state) + [json.loads(line) for line in (state / "runs.jsonl.1").read_text().split()]
    assert not any(run["tokens_in"] for run in kept), "the model's run is still in the history"

    blocked = runner_in_process("job", path, CREDENTIALS_DIRECTORY=creds)
    assert blocked.returncode == 7, blocked.stderr
    assert f"{CALL} of {CALL + worst_tokens(spec) - 1} tokens used" in blocked.stderr
    assert fake_api.calls == 1
    assert ledger(state, this_month())["jobs"] == {
        "reminder-check": {"tokens": CALL, "usd": 0.002, "calls": 1}
    }


def start_runner(spec: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`python -m runner job SPEC` in the background, its stderr kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "job", str(spec)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runs_started_together_cannot_spend_the_same_remainder(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    """A Persistent= catch-up starts three detectors at once against a 1,500-token budget:
    one calls the model, the others see its reservation and stop."""
    state = tmp_path / "state"
    fake_api.default = "hang"  # every call takes a second: the runs overlap
    fake_api.hang_seconds = 1.0
    spec = spend_spec(tmp_path, fake_api, monthly_tokens=1500)
    spec["llm"]["max_tokens"] = 300
    assert worst_tokens(spec) <= 1500 < 2 * worst_tokens(spec)
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)))
    processes = []
    for job in ("reminder-check", "calendar-prep", "morning-briefing"):
        path = write_spec(tmp_path, {**spec, "job": job}, f"{job}.json")
        processes.append(start_runner(path, env))
    codes = sorted(process.wait(timeout=60) for process in processes)
    assert codes == [0, 7, 7], [p.stderr.read() for p in processes if p.stderr]
    assert fake_api.calls == 1
    booked = ledger(state, this_month())
    assert booked["reservations"] == {}
    assert sum(job["tokens"] for job in booked["jobs"].values()) == CALL <= 1500


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    ("owner", "minutes_left", "blocked"),
    [("dead", 30, True), ("alive", -1, False), ("alive", 30, True)],
)
def test_a_reservation_is_booked_when_its_run_died_and_lapses_when_its_time_is_up(
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
    runner_in_process: RunnerCall,
    owner: str,
    minutes_left: int,
    blocked: bool,
) -> None:
    state = tmp_path / "state"
    (state / "state").mkdir(parents=True)
    now = datetime.now(UTC).replace(microsecond=0)
    until = (now + timedelta(minutes=minutes_left)).isoformat().replace("+00:00", "Z")
    month = this_month()
    (state / "state" / f"spend-{month}.json").write_text(
        json.dumps(
            {
                "version": 1,
                "month": month,
                "jobs": {},
                "reservations": {
                    "calendar-prep-1": {
                        "job": "calendar-prep",
                        "tokens": 9000,
                        "usd": 0.5,
                        "pid": _dead_pid() if owner == "dead" else os.getpid(),
                        "until": until,
                    }
                },
            }
        )
    )
    spec = spend_spec(tmp_path, fake_api, monthly_tokens=10_000)
    creds = str(credentials(tmp_path))
    result = runner_in_process("job", write_spec(tmp_path, spec), CREDENTIALS_DIRECTORY=creds)
    if owner == "dead":  # booked as spent: its call may have completed before it died
        assert result.returncode == 7
        assert "9000 of 10000 tokens used, the next call" in result.stderr
        booked = ledger(state, month)
        assert booked["reservations"] == {}
        assert booked["jobs"]["calendar-prep"]["tokens"] == 9000
        [note] = booked["jobs"]["calendar-prep"]["notes"]
        assert "booked as spent (it may have used less)" in note
    elif blocked:
        assert result.returncode == 7
        assert "9000 of 10000 tokens used (9000 reserved by runs in progress)" in result.stderr
        assert list(ledger(state, month)["reservations"]) == ["calendar-prep-1"]
    else:
        assert result.returncode == 0, result.stderr
        assert ledger(state, month)["reservations"] == {}
        assert ledger(state, month)["jobs"]["reminder-check"]["tokens"] == CALL


def test_the_month_turns_at_midnight_in_the_configs_timezone(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    """New York: 04:30 UTC on 1 March is still February; 05:30 UTC is March."""
    state = tmp_path / "state"
    spec = spend_spec(tmp_path, fake_api)
    spec["budgets"][0]["monthly_tokens"] = CALL + worst_tokens(spec) - 1  # one call a month
    path = write_spec(tmp_path, spec)
    creds = str(credentials(tmp_path))
    results = [
        runner_in_process("job", path, CREDENTIALS_DIRECTORY=creds, VIGIL_NOW=moment).returncode
        for moment in (
            "2026-02-27T12:00:00Z",
            "2026-03-01T04:30:00Z",
            "2026-03-01T05:30:00Z",
            "2026-03-31T23:00:00Z",
        )
    ]
    assert results == [0, 7, 0, 7]
    assert fake_api.calls == 2
    assert ledger(state, "2026-02")["jobs"]["reminder-check"]["tokens"] == CALL
    assert ledger(state, "2026-03")["jobs"]["reminder-check"]["tokens"] == CALL
    assert [run["start"][:16] for run in runs(state)] == [
        "2026-02-27T12:00",
        "2026-03-01T04:30",
        "2026-03-01T05:30",
        "2026-03-31T23:00",
    ]


FEBRUARY = "2026-02-20T14:00:00Z"


def earlier_call(state: Path) -> None:
    """A model run of this month that runs.jsonl still holds."""
    state.mkdir(parents=True, exist_ok=True)
    record = {
        "job": "reminder-check",
        "kind": "job",
        "config": "bruba",
        "start": "2026-02-10T14:00:00.000Z",
        "result": "ok",
        "tokens_in": 1000,
        "tokens_out": 200,
        "cost_usd": 0.002,
    }
    (state / "runs.jsonl").write_text(json.dumps(record) + "\n")


BOOKED = {"version": 1, "month": "2026-02", "reservations": {}}
OTHER_SHAPES = {
    "version 2": json.dumps({**BOOKED, "version": 2, "jobs": {"reminder-check": {"tokens": 1}}}),
    "torn": json.dumps({**BOOKED, "jobs": {"reminder-check": {"tokens": 99000}}})[:60],
    "a job's entry": json.dumps({**BOOKED, "jobs": {"reminder-check": {"tokens": "99000"}}}),
    "a reservation": json.dumps({**BOOKED, "jobs": {}, "reservations": {"x": {"tokens": 1}}}),
}


@pytest.mark.parametrize("variant", sorted(OTHER_SHAPES))
def test_a_ledger_of_another_shape_is_set_aside_and_the_month_counted_again(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall, variant: str
) -> None:
    state = tmp_path / "state"
    earlier_call(state)
    (state / "state").mkdir()
    (state / "state" / "spend-2026-02.json").write_text(OTHER_SHAPES[variant])
    spec = spend_spec(tmp_path, fake_api, monthly_tokens=100_000)
    creds = str(credentials(tmp_path))
    path = write_spec(tmp_path, spec)
    result = runner_in_process("job", path, CREDENTIALS_DIRECTORY=creds, VIGIL_NOW=FEBRUARY)
    assert result.returncode == 0, result.stderr
    [aside] = [p for p in (state / "state" / "rejected").iterdir() if p.suffix != ".reason"]
    assert aside.name.startswith("spend-2026-02.json-")
    assert aside.read_text() == OTHER_SHAPES[variant]
    [alert] = [f for f in inbox(state) if f.get("kind") == "state-rejected"]
    assert "state/spend-2026-02.json" in alert["message"]
    assert "spend may be undercounted" in alert["message"]
    # runs.jsonl's earlier call, and this one.
    assert ledger(state, "2026-02")["jobs"]["reminder-check"]["tokens"] == 2 * CALL
    assert fake_api.calls == 1


def test_a_ledger_it_cannot_read_stops_the_model_and_is_never_overwritten(
    fake_api: FakeMessagesAPI,
) -> None:
    """After an accidental `sudo` run: a root-owned 0600 ledger, the detector as `nobody`."""
    from tests.private_fs import private_mounts

    with private_mounts() as fs:
        state = fs.base / "state"
        earlier_call(state)
        (state / "state").mkdir()
        book = state / "state" / "spend-2026-02.json"
        text = json.dumps({**BOOKED, "jobs": {"reminder-check": {"tokens": 99000, "usd": 9.9}}})
        book.write_text(text)
        spec = spend_spec(fs.base, fake_api, monthly_tokens=100_000)
        creds = credentials(fs.base)
        fs.must("chown", "-R", "nobody:nogroup", state, creds)
        os.chown(book, 0, 0)
        book.chmod(0o600)
        path = write_spec(fs.base, spec)
        path.chmod(0o644)
        env = {"CREDENTIALS_DIRECTORY": str(creds), "VIGIL_NOW": FEBRUARY}
        result = fs.runner("job", path, nobody=True, **env)
        assert result.returncode == 7, result.stderr
        assert fake_api.calls == 0
        reason = "state/spend-2026-02.json cannot be read (Permission denied)"
        assert runs(state)[-1]["result"] == "budget"
        assert reason in runs(state)[-1]["reason"]
        assert book.read_text() == text and book.stat().st_uid == 0
        assert [f for f in inbox(state) if reason in f.get("message", "")]


def call_in_flight(spec: Path, env: dict[str, str], api: FakeMessagesAPI) -> subprocess.Popen[str]:
    """A runner process of `spec` whose model call the fake API is holding (hang)."""
    process = start_runner(spec, env)
    deadline = time.monotonic() + 30
    while api.calls == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    if api.calls != 1:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"no model call in flight: {err}")
    return process


def test_a_reservation_holds_from_when_it_is_made_not_from_the_runs_start(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    """A detector whose command took a while reserves a call that holds for the call's full
    time from then: a run starting while the call is in flight sees it and stops."""
    state = tmp_path / "state"
    fake_api.default = "hang"
    fake_api.hang_seconds = 4.0
    spec = spend_spec(tmp_path, fake_api, monthly_tokens=1500)
    spec["llm"]["max_tokens"] = 300
    spec["command"] = {"shell": f"sleep 3; echo '{OUTPUT}'"}
    lasts = spec["llm"]["timeout"] * 2 + 60  # one attempt and its retry, plus the margin
    assert worst_tokens(spec) <= 1500 < 2 * worst_tokens(spec)
    start = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)), VIGIL_NOW=iso(start))
    first = call_in_flight(write_spec(tmp_path, spec), env, fake_api)
    try:
        [held] = ledger(state, "2026-02")["reservations"].values()
        until = datetime.fromisoformat(held["until"])
        assert until >= start + timedelta(seconds=3 + lasts), held
        # A run starting on the first's clock just past start + lasts + 2 s: the call
        # reserved after the 3 s command is still in flight.
        later = start + timedelta(seconds=lasts + 2)
        second_spec = write_spec(
            tmp_path,
            {**spec, "job": "calendar-prep", "command": {"shell": f"echo '{OUTPUT}'"}},
            "second.json",
        )
        second = run_runner("job", second_spec, env={**env, "VIGIL_NOW": iso(later)}, timeout=30)
        assert second.returncode == 7, second.stderr
        assert "reserved by runs in progress" in second.stderr
    finally:
        assert first.wait(timeout=60) == 0
    assert fake_api.calls == 1


def test_a_run_killed_during_its_call_is_booked_at_its_worst_case(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    """SIGKILL while the call is in flight (it may complete for the API all the same): the
    reservation is booked as spent, `vigil cost` counts it at once, and the next run's
    budget check sees it."""
    from compiler.operate.cost import month_to_date

    state = tmp_path / "state"
    fake_api.default = "hang"
    fake_api.hang_seconds = 30.0
    spec = spend_spec(tmp_path, fake_api, monthly_tokens=1500)
    spec["llm"]["max_tokens"] = 300
    worst = worst_tokens(spec)
    assert worst <= 1500 < 2 * worst
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)), VIGIL_NOW=FEBRUARY)
    killed = call_in_flight(write_spec(tmp_path, spec), env, fake_api)
    killed.kill()
    killed.wait()
    month_now = datetime(2026, 2, 20, 15, tzinfo=UTC)
    [(job, (usd, tokens, calls))] = month_to_date(
        state, "bruba", "America/New_York", month_now, warn=pytest.fail
    ).items()
    assert (job, tokens, calls) == ("reminder-check", worst, 1)
    assert usd == pytest.approx(worst_usd(spec))
    fake_api.default = "finding"
    other = write_spec(tmp_path, {**spec, "job": "calendar-prep"}, "other.json")
    blocked = run_runner("job", other, env=env)
    assert blocked.returncode == 7, blocked.stderr
    assert f"{worst} of 1500 tokens used, the next call" in blocked.stderr
    assert fake_api.calls == 1
    booked = ledger(state, "2026-02")
    assert booked["reservations"] == {}
    entry = booked["jobs"]["reminder-check"]
    assert (entry["tokens"], entry["calls"]) == (worst, 1)
    [note] = entry["notes"]
    assert f"pid {killed.pid}" in note and "booked as spent" in note
    spent = month_to_date(state, "bruba", "America/New_York", month_now, warn=pytest.fail)
    assert spent["reminder-check"][1:] == (
        worst,
        1,
    )


def worst_usd(spec: dict[str, Any]) -> float:
    price = spec["llm"]["price_per_mtok"]
    tokens_in = expected_input_tokens(spec["llm"]["prompt"], OUTPUT + "\n")
    return float(tokens_in * price["input"] + spec["llm"]["max_tokens"] * price["output"]) / 1e6


# The ledger's bookkeeping, one piece at a time (no runner process).

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def test_reservations_count_for_their_own_job_only() -> None:
    from runner.history import Usage
    from runner.spend import SpendLedger

    book = SpendLedger("2027-03", {})
    book.reserve("a-1", "alpha", Usage(100, 0.5, 1), NOW + timedelta(minutes=5))
    book.reserve("b-1", "beta", Usage(10, 0.05, 1), NOW + timedelta(minutes=5))
    assert book.spent("alpha").tokens == 100
    assert book.spent("beta").tokens == 10
    assert book.spent().tokens == 110
    assert book.spent("alpha", reserved=False).tokens == 0


def test_a_dead_runs_reservation_is_booked_with_a_note_and_a_lapsed_one_released() -> None:
    from runner.history import Usage
    from runner.spend import SpendLedger

    book = SpendLedger("2027-03", {})
    book.reserve("dead", "alpha", Usage(100, 0.5, 1), NOW + timedelta(minutes=5))
    book.reservations["dead"]["pid"] = _dead_pid()
    book.reserve("live", "alpha", Usage(7, 0.01, 1), NOW + timedelta(minutes=5))
    book.reserve("lapsed", "alpha", Usage(9, 0.01, 1), NOW)  # its time is up at NOW
    assert sorted(book.release_abandoned(NOW)) == ["dead", "lapsed"]
    assert list(book.reservations) == ["live"]
    assert book.spent("alpha", reserved=False).tokens == 100
    [note] = book.notes["alpha"]
    assert note.startswith("2027-03-10T12:00:00")
    assert "ended without booking its calls" in note and "100 tokens, 0.5000 USD" in note
    written = book.as_json()
    assert (written["version"], written["month"]) == (1, "2027-03")
    again = SpendLedger("2027-03", json.loads(json.dumps(written)))
    assert again.notes == book.notes  # the note `vigil cost` shows survives the file
    assert again.as_json() == written


def test_a_ledger_is_written_only_when_a_booking_changed_it(tmp_path: Path) -> None:
    from runner.history import Usage
    from runner.spend import Booking, ledger_name

    state = str(tmp_path)
    written = tmp_path / "state" / ledger_name("2027-03")
    with Booking(state, "bruba", "UTC", NOW, NOW):
        pass
    assert not written.exists()  # nothing booked: nothing written
    with pytest.raises(RuntimeError), Booking(state, "bruba", "UTC", NOW, NOW) as book:
        book.settle("k", "alpha", Usage(5, 0.01, 1))
        raise RuntimeError("the run failed before its booking was complete")
    assert not written.exists()
    with Booking(state, "bruba", "UTC", NOW, NOW) as book:
        book.settle("k", "alpha", Usage(5, 0.01, 1))
    first = written.stat().st_ino
    with Booking(state, "bruba", "UTC", NOW, NOW):
        pass
    assert written.stat().st_ino == first  # not rewritten (a write replaces the file)
    assert json.loads(written.read_text())["jobs"]["alpha"]["tokens"] == 5


def test_a_month_counted_again_from_runs_jsonl_ends_where_the_next_one_begins(
    tmp_path: Path,
) -> None:
    """Berlin: 31 March 23:59 is March, 1 April 00:00 (local) is April."""
    from runner.spend import read_ledger
    from tests.test_runner_budget import seed_usage

    berlin = "Europe/Berlin"
    seed_usage(tmp_path, "alpha", 100, 0.1, datetime(2027, 3, 31, 21, 59, tzinfo=UTC))
    seed_usage(tmp_path, "alpha", 30, 0.1, datetime(2027, 3, 31, 22, 0, tzinfo=UTC))
    march = read_ledger(str(tmp_path), "bruba", berlin, NOW)
    april = read_ledger(str(tmp_path), "bruba", berlin, datetime(2027, 4, 2, tzinfo=UTC))
    assert (march.spent("alpha").tokens, april.spent("alpha").tokens) == (100, 30)
    assert march.problem is None and march.notes == {}


def test_a_ledger_that_cannot_be_read_is_shown_from_runs_jsonl_saying_why(
    tmp_path: Path,
) -> None:
    from runner.spend import ledger_name, read_ledger
    from tests.test_runner_budget import seed_usage

    seed_usage(tmp_path, "alpha", 100, 0.1, NOW - timedelta(days=1))
    (tmp_path / "state" / ledger_name("2027-03")).mkdir(parents=True)  # open() fails
    shown = read_ledger(str(tmp_path), "bruba", "UTC", NOW)
    assert shown.spent("alpha").tokens == 100
    assert shown.problem == (
        "state/spend-2027-03.json cannot be read (Is a directory): "
        "the model is not called until it can be read"
    )

"""Monthly budgets: checked before the model call, one alert per job, budget and month."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.llm_reply import expected_input_tokens
from runner.spend import month_start
from tests.runner_support import (
    FakeMessagesAPI,
    RunnerCall,
    credentials,
    fake_api,
    inbox,
    llm_spec,
    run_job,
    run_runner,
    runner_env,
    runner_in_process,
    runs,
    write_spec,
)

__all__ = ["fake_api", "runner_in_process"]


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def seed_usage(state: Path, job: str, tokens: int, usd: float, when: datetime) -> None:
    state.mkdir(parents=True, exist_ok=True)
    record = {
        "job": job,
        "kind": "job",
        "config": "bruba",
        "start": iso(when),
        "result": "ok",
        "tokens_in": tokens - tokens // 5,
        "tokens_out": tokens // 5,
        "cost_usd": usd,
        "model": "claude-haiku-4-5",
    }
    with (state / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def this_month(timezone: str = "America/New_York") -> datetime:
    """A moment safely inside the current month of the spec's timezone (and not in the
    future), so seeded usage counts as month-to-date."""
    now = datetime.now(UTC)
    start, _ = month_start(now, timezone)
    return max(start.astimezone(UTC) + timedelta(minutes=1), now - timedelta(hours=1))


def last_month() -> datetime:
    start, _ = month_start(datetime.now(UTC), "America/New_York")
    return start.astimezone(UTC) - timedelta(hours=1)


def budget_spec(
    tmp_path: Path, api: FakeMessagesAPI, budgets: list[dict[str, Any]]
) -> dict[str, Any]:
    spec = llm_spec(tmp_path, api, "echo 'r1 Pay rent 3 days'")
    spec["budgets"] = budgets
    return spec


def test_a_job_budget_used_up_mid_month_stops_calls_and_alerts_once(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    state = tmp_path / "state"
    seed_usage(state, "reminder-check", 10_000_000, 50.0, last_month())  # never counts
    seed_usage(state, "reminder-check", 99_500, 0.2, this_month())
    spec = budget_spec(
        tmp_path, fake_api, [{"scope": "job", "monthly_tokens": 100_000, "monthly_usd": None}]
    )
    path = write_spec(tmp_path, spec)
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)))

    first = run_runner("job", path, env=env)
    assert first.returncode == 7, first.stderr
    assert fake_api.calls == 0
    assert "99500 of 100000 tokens used" in first.stderr
    [alert] = inbox(state)
    _, month = month_start(datetime.now(UTC), "America/New_York")
    assert alert["source"] == "vigil"
    assert alert["kind"] == "budget"
    assert alert["id"] == f"budget-bruba-reminder-check-job-{month}"
    assert alert["priority"] >= 100
    assert alert["urgent"] is False
    assert "reminder-check" in alert["message"]
    assert month in alert["message"]
    assert "own budget" in alert["message"]
    assert runs(state)[-1]["result"] == "budget"
    assert runs(state)[-1]["exit_status"] == 7
    assert runs(state)[-1]["tokens_in"] == 0

    second = run_runner("job", path, env=env)
    assert second.returncode == 7
    assert fake_api.calls == 0
    assert len(inbox(state)) == 1, "a second alert in the same month"
    assert json.loads((state / "state" / "budget-alerts.json").read_text()) == {
        alert["id"]: alert["timestamp"]
    }


def test_last_months_usage_does_not_count(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    seed_usage(state, "reminder-check", 10_000_000, 50.0, last_month())
    spec = budget_spec(
        tmp_path, fake_api, [{"scope": "job", "monthly_tokens": 100_000, "monthly_usd": 1.0}]
    )
    result = run_job(runner_in_process, tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 1
    assert runs(state)[-1]["tokens_in"] == 1000


def test_a_global_usd_budget_counts_every_job_of_the_config(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    state = tmp_path / "state"
    seed_usage(state, "calendar-prep", 1000, 6.0, this_month())
    seed_usage(state, "morning-briefing", 1000, 4.0, this_month())
    spec = budget_spec(
        tmp_path, fake_api, [{"scope": "global", "monthly_tokens": None, "monthly_usd": 10.0}]
    )
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)))
    result = run_runner("job", write_spec(tmp_path, spec), env=env)
    assert result.returncode == 7, result.stderr
    assert fake_api.calls == 0
    [alert] = inbox(state)
    assert alert["budget"] == "global"
    assert "bruba global budget" in alert["message"]
    assert "10.00 of 10.00 USD used" in result.stderr


def test_nothing_found_never_touches_the_budget(tmp_path: Path, fake_api: FakeMessagesAPI) -> None:
    state = tmp_path / "state"
    seed_usage(state, "reminder-check", 1_000_000, 99.0, this_month())
    spec = budget_spec(tmp_path, fake_api, [{"scope": "job", "monthly_tokens": 10}])
    spec["command"] = {"shell": "echo '[]'"}
    result = run_runner("job", write_spec(tmp_path, spec))
    assert result.returncode == 0
    assert not (state / "inbox").exists()


def test_worst_case_output_and_expected_input_must_fit(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    """max_tokens is 1024 plus the request's expected input: 99,000 used of 100,000 leaves too
    little for a worst-case call."""
    state = tmp_path / "state"
    seed_usage(state, "reminder-check", 99_000, 0.0, this_month())
    spec = budget_spec(tmp_path, fake_api, [{"scope": "job", "monthly_tokens": 100_000}])
    env = runner_env(CREDENTIALS_DIRECTORY=str(credentials(tmp_path)))
    result = run_runner("job", write_spec(tmp_path, spec), env=env)
    assert result.returncode == 7
    worst = 1024 + expected_input_tokens(spec["llm"]["prompt"], "r1 Pay rent 3 days\n")
    assert f"the next call may use up to {worst}" in result.stderr


def test_the_month_is_the_config_timezones_month() -> None:
    # 03:00 UTC on 1 March is still February in New York.
    now = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    start, label = month_start(now, "America/New_York")
    assert label == "2026-02"
    assert start.astimezone(UTC) == datetime(2026, 2, 1, 5, 0, tzinfo=UTC)
    assert month_start(now, "UTC")[1] == "2026-03"
    # A zone this machine does not know (the spec came from another): the moment's own, UTC.
    for unknown in ("Mars/Olympus_Mons", "../etc"):
        assert month_start(now, unknown) == (datetime(2026, 3, 1, tzinfo=UTC), "2026-03")


OUTPUT = "r1 Pay rent 3 days\n"  # what budget_spec's command prints


def worst_case(spec: dict[str, Any]) -> tuple[int, float]:
    """The tokens and USD reserved for the spec's next call: expected input plus max_tokens."""
    tokens_in = expected_input_tokens(spec["llm"]["prompt"], OUTPUT)
    price = spec["llm"]["price_per_mtok"]
    max_tokens = spec["llm"]["max_tokens"]
    usd = (tokens_in * price["input"] + max_tokens * price["output"]) / 1e6
    return tokens_in + max_tokens, usd


@pytest.mark.parametrize("room", [0, -1])
def test_a_call_landing_exactly_on_the_token_budget_is_made(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall, room: int
) -> None:
    seed_usage(tmp_path / "state", "reminder-check", 10_000, 0.0, this_month())
    spec = budget_spec(tmp_path, fake_api, [])
    tokens, _ = worst_case(spec)
    spec["budgets"] = [{"scope": "job", "monthly_tokens": 10_000 + tokens + room}]
    result = run_job(runner_in_process, tmp_path, spec)
    assert (result.returncode, fake_api.calls) == ((0, 1) if room == 0 else (7, 0)), result.stderr


@pytest.mark.parametrize("room", [0.0, -0.000001])
def test_a_call_landing_exactly_on_the_usd_budget_is_made(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall, room: float
) -> None:
    seed_usage(tmp_path / "state", "reminder-check", 1000, 1.1, this_month())
    spec = budget_spec(tmp_path, fake_api, [])
    _, usd = worst_case(spec)
    spec["budgets"] = [{"scope": "global", "monthly_usd": round(1.1 + usd + room, 6)}]
    result = run_job(runner_in_process, tmp_path, spec)
    assert (result.returncode, fake_api.calls) == ((0, 1) if room == 0 else (7, 0)), result.stderr


def test_a_job_budget_counts_only_its_own_job(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    seed_usage(state, "calendar-prep", 5_000_000, 30.0, this_month())
    spec = budget_spec(tmp_path, fake_api, [])
    tokens, usd = worst_case(spec)
    spec["budgets"] = [
        {"scope": "job", "monthly_tokens": tokens, "monthly_usd": usd},
        {"scope": "global", "monthly_tokens": 10_000_000, "monthly_usd": 100.0},
    ]
    result = run_job(runner_in_process, tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 1


def test_the_alert_names_the_budget_the_spend_and_the_next_calls_cost(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    when = this_month()
    seed_usage(state, "reminder-check", 2_000, 4.5, when)
    seed_usage(state, "calendar-prep", 3_000, 0.25, when)
    spec = budget_spec(tmp_path, fake_api, [])
    tokens, usd = worst_case(spec)
    spec["budgets"] = [
        {"scope": "job", "monthly_tokens": 2_000 + tokens, "monthly_usd": 4.5},
        {"scope": "global", "monthly_tokens": 5_000, "monthly_usd": None},
    ]
    result = run_job(runner_in_process, tmp_path, spec)
    assert result.returncode == 7
    assert fake_api.calls == 0
    _, month = month_start(when, "America/New_York")
    job_alert, global_alert = sorted(inbox(state), key=lambda alert: alert["budget"] != "job")
    assert {k: v for k, v in job_alert.items() if k != "timestamp"} == {
        "source": "vigil",
        "kind": "budget",
        "id": f"budget-bruba-reminder-check-job-{month}",
        "job": "reminder-check",
        "budget": "job",
        "month": month,
        "monthly_tokens": 2_000 + tokens,
        "monthly_usd": 4.5,
        "message": (
            f"reminder-check: its own budget for {month} is used up (4.50 of 4.50 USD used, "
            f"the next call may cost up to {usd:.4f}); the model is not called until next "
            "month or a higher budget"
        ),
        "priority": 100,
        "urgent": False,
    }
    assert global_alert["id"] == f"budget-bruba-reminder-check-global-{month}"
    assert global_alert["message"] == (
        f"reminder-check: the bruba global budget for {month} is used up (5000 of 5000 tokens "
        f"used, the next call may use up to {tokens}); the model is not called until next "
        "month or a higher budget"
    )
    assert runs(state)[-1]["reason"] == (
        f"model not called (job budget: 4.50 of 4.50 USD used, the next call may cost up to "
        f"{usd:.4f}; global budget: 5000 of 5000 tokens used, the next call may use up to "
        f"{tokens})"
    )


def test_the_retry_after_a_malformed_reply_is_not_made_past_the_budget(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    """The first call fits; the retry would resend it with the reply and up to max_tokens
    more, which does not: no second call, the budget's alert, and the first call's spend
    booked."""
    state = tmp_path / "state"
    fake_api.script = ["malformed", "finding"]
    spec = budget_spec(tmp_path, fake_api, [])
    tokens, _ = worst_case(spec)
    spec["budgets"] = [{"scope": "job", "monthly_tokens": tokens + 10}]
    result = run_job(runner_in_process, tmp_path, spec)
    assert (result.returncode, fake_api.calls) == (7, 1), result.stderr
    [alert] = inbox(state)
    assert (alert["kind"], alert["budget"]) == ("budget", "job")
    assert "the next call may use up to" in alert["message"]
    [run] = runs(state)
    assert run["result"] == "budget" and run["reason"].startswith("model not called (job budget")
    assert (run["tokens_in"], run["tokens_out"]) == (1000, 200)  # the one call made


def test_a_calls_worst_case_is_priced_per_million_tokens_and_free_without_a_price(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    from runner.budget import call_worst_case
    from runner.spec import load_job_spec

    spec = budget_spec(tmp_path, fake_api, [])
    spec["llm"].update(max_tokens=1000, price_per_mtok={"input": 3.0, "output": 15.0})
    priced = load_job_spec(str(write_spec(tmp_path, spec)))
    worst = call_worst_case(priced, 1000)
    assert (worst.tokens, worst.usd) == (2000, (1000 * 3.0 + 1000 * 15.0) / 1e6)
    spec["llm"]["price_per_mtok"] = None
    free = call_worst_case(load_job_spec(str(write_spec(tmp_path, spec))), 1000)
    assert (free.tokens, free.usd) == (2000, 0.0)


def test_a_budget_broken_in_tokens_and_dollars_says_both(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    state = tmp_path / "state"
    seed_usage(state, "reminder-check", 2_000, 4.5, this_month())
    spec = budget_spec(tmp_path, fake_api, [])
    tokens, usd = worst_case(spec)
    spec["budgets"] = [{"scope": "job", "monthly_tokens": 2_000 + tokens - 1, "monthly_usd": 4.5}]
    result = run_job(runner_in_process, tmp_path, spec)
    assert (result.returncode, fake_api.calls) == (7, 0)
    assert runs(state)[-1]["reason"] == (
        f"model not called (job budget: 2000 of {2_000 + tokens - 1} tokens used, the next call "
        f"may use up to {tokens}; 4.50 of 4.50 USD used, the next call may cost up to {usd:.4f})"
    )


def test_one_alert_per_job_budget_and_month_whatever_was_sent_before(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    """send_alerts on its own: a budget already alerted this month is passed over (not the
    ones after it), last month's records are dropped, and it says how many it wrote."""
    from runner.budget import ALERTS_STATE, Exhausted, alert_id, send_alerts
    from runner.spec import load_job_spec

    spec = budget_spec(tmp_path, fake_api, [{"scope": "job"}, {"scope": "global"}])
    job = load_job_spec(str(write_spec(tmp_path, spec)))
    now = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    own, shared = (Exhausted(budget, "2027-03", "used up") for budget in job.budgets)
    assert send_alerts(job, [], now) == 0
    state_file = tmp_path / "state" / "state" / ALERTS_STATE
    state_file.parent.mkdir(parents=True, exist_ok=True)
    old = {"version": 1, "budget-bruba-reminder-check-job-2027-02": "2027-02-27T00:00:00Z"}
    state_file.write_text(json.dumps({**old, alert_id(job, own): "2027-03-01T00:00:00Z"}))
    assert send_alerts(job, [own, shared], now) == 1  # the job's was sent on the 1st
    assert [a["id"] for a in inbox(tmp_path / "state")] == [alert_id(job, shared)]
    kept = json.loads(state_file.read_text())
    assert set(kept) - {"version"} == {alert_id(job, own), alert_id(job, shared)}
    assert send_alerts(job, [own, shared], now + timedelta(hours=1)) == 0
    assert len(inbox(tmp_path / "state")) == 1
    april = [Exhausted(budget, "2027-04", "used up") for budget in job.budgets]
    assert send_alerts(job, april, now + timedelta(days=30)) == 2  # a new month: both again
    assert len(inbox(tmp_path / "state")) == 3


def test_a_reservation_holds_for_every_call_the_sdk_may_make_and_a_minute(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    from runner.budget import RESERVATION_MARGIN, Reservation
    from runner.spec import load_job_spec

    spec = budget_spec(tmp_path, fake_api, [])
    spec["llm"].update(max_retries=2, timeout=10)
    job = load_job_spec(str(write_spec(tmp_path, spec)))
    reservation = Reservation(job, datetime(2027, 3, 10, tzinfo=UTC))
    # 3 tries of the SDK for each of the two attempts (the retry after a malformed reply)
    assert reservation.lasts == timedelta(seconds=10 * 3 * 2 + RESERVATION_MARGIN)

"""Monthly budgets for LLM detectors: checked before every model call, never after.

A call is made only if month-to-date usage plus the call's worst-case output (`max_tokens`,
priced at the output rate) stays within every budget; so a budget is overshot by at most one
call's input. "Month" is the calendar month in the config's timezone. `global` budgets count
every job of the config that records into the same runs.jsonl. A blocked run alerts once per
job, budget and month: the alert's `id` is stable and `state/budget-alerts.json` remembers it.
"""

from __future__ import annotations

from datetime import datetime

from runner.clock import iso
from runner.findings import ALERT_PRIORITY
from runner.fsatomic import locked, read_state, state_path, write_finding, write_state
from runner.history import Usage, usage_since
from runner.spec import Budget, JobSpec

ALERTS_STATE = "budget-alerts.json"


class Exhausted:
    """A budget the next call would break, with the figures that show why."""

    def __init__(self, budget: Budget, month: str, detail: str) -> None:
        self.budget = budget
        self.month = month
        self.detail = detail


def month_start(now: datetime, timezone: str) -> tuple[datetime, str]:
    """The start of the current calendar month in `timezone`, and its label (2026-02)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        local = now.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        local = now
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, start.strftime("%Y-%m")


def exhausted_budgets(spec: JobSpec, now: datetime) -> list[Exhausted]:
    if not spec.budgets or spec.llm is None:
        return []
    since, month = month_start(now, spec.timezone)
    per_job, overall = usage_since(spec.state_dir, spec.config, since)
    next_tokens = spec.llm.max_tokens
    next_usd = next_tokens * (spec.llm.price_per_mtok or (0.0, 0.0))[1] / 1e6
    found = []
    for budget in spec.budgets:
        used = per_job.get(spec.job, Usage()) if budget.scope == "job" else overall
        problems = []
        if budget.monthly_tokens is not None and used.tokens + next_tokens > budget.monthly_tokens:
            problems.append(
                f"{used.tokens} of {budget.monthly_tokens} tokens used, "
                f"the next call may use up to {next_tokens}"
            )
        if budget.monthly_usd is not None and used.usd + next_usd > budget.monthly_usd:
            problems.append(
                f"{used.usd:.2f} of {budget.monthly_usd:.2f} USD used, "
                f"the next call may cost up to {next_usd:.4f}"
            )
        if problems:
            found.append(Exhausted(budget, month, "; ".join(problems)))
    return found


def alert_id(spec: JobSpec, exhausted: Exhausted) -> str:
    return f"budget-{spec.config}-{spec.job}-{exhausted.budget.scope}-{exhausted.month}"


def budget_alert(spec: JobSpec, exhausted: Exhausted, now: datetime) -> dict[str, object]:
    scope = exhausted.budget.scope
    which = "its own budget" if scope == "job" else f"the {spec.config} global budget"
    return {
        "source": "vigil",
        "timestamp": iso(now),
        "kind": "budget",
        "id": alert_id(spec, exhausted),
        "job": spec.job,
        "budget": scope,
        "month": exhausted.month,
        "monthly_tokens": exhausted.budget.monthly_tokens,
        "monthly_usd": exhausted.budget.monthly_usd,
        "message": (
            f"{spec.job}: {which} for {exhausted.month} is used up ({exhausted.detail}); "
            "the model is not called until next month or a higher budget"
        ),
        "priority": ALERT_PRIORITY,
        "urgent": False,
    }


def send_alerts(spec: JobSpec, exhausted: list[Exhausted], now: datetime) -> int:
    """Write one alert per job, budget and month; returns how many were written now."""
    written = 0
    with locked(state_path(spec.state_dir, ALERTS_STATE) + ".lock"):
        sent = read_state(spec.state_dir, ALERTS_STATE)
        month = exhausted[0].month if exhausted else ""
        # Only this month's ids matter: older ones can never repeat.
        sent = {key: value for key, value in sent.items() if key.endswith(month)}
        for item in exhausted:
            key = alert_id(spec, item)
            if key in sent:
                continue
            write_finding(spec.state_dir, budget_alert(spec, item, now), now)
            sent[key] = iso(now)
            written += 1
        if written:
            write_state(spec.state_dir, ALERTS_STATE, sent)
    return written

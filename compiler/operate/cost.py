"""`vigil cost`: the estimated monthly cost of each job beside what it has spent this month.

Estimate = firings per month x expected tokens per call x price. A detector only calls the model
when its command found something, so the estimate is an upper bound. The coordinator is rules,
not a model: it costs nothing, however often it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from compiler.errors import Warn
from compiler.language import cron
from compiler.language.schedule import next_elapses, parse_schedule
from compiler.operate.setup import ConfigView
from runner.fsatomic import describe
from runner.history import Usage
from runner.spend import read_ledger

DAYS_PER_MONTH = 365.2425 / 12
# Calendar expressions are counted by systemd over this many firings at most.
CALENDAR_SAMPLE = 5000
BASE = datetime(2027, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class JobCost:
    job: str
    model: str | None
    firings_per_month: float
    tokens_per_call: tuple[int, int] | None  # (input, output), from expected_tokens
    price: tuple[float, float] | None  # USD per million tokens
    spent_usd: float
    spent_tokens: int
    calls: int
    median_tokens: int | None = None
    """Tokens per model run, the median of the job's last runs (runs.jsonl); None: none yet."""

    @property
    def estimate_usd(self) -> float | None:
        if self.model is None:
            return 0.0
        if self.tokens_per_call is None or self.price is None:
            return None
        per_call = sum(t * p for t, p in zip(self.tokens_per_call, self.price, strict=True)) / 1e6
        return per_call * self.firings_per_month


def firings_per_month(schedule: Sequence[str], zone: str) -> float:
    return sum(_schedule_firings(expression, zone) for expression in schedule)


def _schedule_firings(expression: str, zone: str) -> float:
    timing = parse_schedule(expression)
    if timing.kind == "reboot":
        return 0.0
    if timing.kind == "cron":
        return _cron_firings(cron.parse_cron(" ".join(expression.split())))
    moments = next_elapses(timing.on_calendar, zone, CALENDAR_SAMPLE, base=BASE)
    if len(moments) < 2:
        return 0.0
    year = BASE + timedelta(days=365)
    within = [m for m in moments if m < year]
    if len(within) < len(moments):
        return len(within) / 12
    span_days = (moments[-1] - moments[0]).total_seconds() / 86400
    return (len(moments) - 1) / span_days * DAYS_PER_MONTH


def _cron_firings(spec: cron.CronSpec) -> float:
    """Exact for cron: matching days in a non-leap year times firings per day, per month."""
    day = date(2027, 1, 1)
    matching = 0
    while day.year == 2027:
        weekday = day.isoweekday() % 7  # cron: 0 = Sunday
        in_days, in_weekdays = day.day in spec.days, weekday in spec.weekdays
        fits = {
            "any": True,
            "dom": in_days,
            "dow": in_weekdays,
            "or": in_days or in_weekdays,
        }[spec.rule]
        matching += day.month in spec.months and fits
        day += timedelta(days=1)
    return matching * len(spec.hours) * len(spec.minutes) / 12


def estimate(config: ConfigView, *, now: datetime | None = None, warn: Warn) -> list[JobCost]:
    state = config.state
    spent = month_to_date(state, config.name, config.timezone, now, warn=warn)
    medians = _medians(state, config.name, warn)
    rows = []
    for name, job in config.jobs.items():
        usd, used, calls = spent.get(name, (0.0, 0, 0))
        rows.append(
            JobCost(
                job=name,
                model=job.model,
                firings_per_month=firings_per_month(job.schedule, job.timezone),
                tokens_per_call=job.expected_tokens,
                price=job.price,
                spent_usd=usd,
                spent_tokens=used,
                calls=calls,
                median_tokens=medians[name][0] if name in medians else None,
            )
        )
    return rows


def _medians(state: Path, config: str, warn: Warn) -> dict[str, tuple[int, int]]:
    from runner.spike import trailing_medians

    try:
        return trailing_medians(str(state), config)
    except OSError as error:
        warn(f"runs.jsonl cannot be read ({describe(error)}): no medians shown")
        return {}


def month_to_date(
    directory: Path,
    config: str,
    timezone: str,
    now: datetime | None = None,
    *,
    warn: Warn,
    history: dict[str, Usage] | None = None,
) -> dict[str, tuple[float, int, int]]:
    """job -> (USD, tokens, model calls) this calendar month in `timezone`: the spend ledger
    the budgets count (runs.jsonl for a month from before the ledger; `history`: the month's
    usage per job already read from it)."""
    ledger = read_ledger(str(directory), config, timezone, now or datetime.now(UTC), history)
    if ledger.problem:
        warn(f"{ledger.problem} (shown from runs.jsonl)")
    return {job: (used.usd, used.tokens, used.calls) for job, used in ledger.jobs.items()}


def heartbeats_per_month(config: ConfigView) -> float:
    return DAYS_PER_MONTH * 86400 / config.heartbeat


def plan_estimate(config: ConfigView, *, warn: Warn) -> list[JobCost] | None:
    """The rows `vigil plan` sums up in one line, or None when no job uses a model (then
    nothing is read)."""
    if not any(job.model is not None for job in config.jobs.values()):
        return None
    return estimate(config, warn=warn)

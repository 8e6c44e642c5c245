"""Monthly budgets for LLM detectors: checked before every model call, never after.

A call is made only if the month's spend, plus what runs in progress have reserved, plus the
call's worst case (`max_tokens` of output and the expected input, see llm_reply) stays within
every budget. The check and the reservation happen together under the spend ledger's lock
(runner.spend), so runs started at once never spend the same remainder; after the call the
reservation becomes what it used. A budget is overshot by at most one call's input beyond its
estimate. "Month" is the calendar month in the config's timezone. `global` budgets count every
job of the config that books into the same ledger: the state directory's, or on a fleet host
(a spec with `fleet`) the fleet's, in NATS (runner.fleet.spendstore), so several machines
share every budget. A blocked run alerts once per job,
budget and month: the alert's `id` is stable and `state/budget-alerts.json` remembers it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from runner.clock import iso
from runner.findings import ALERT_PRIORITY
from runner.fsatomic import locked, read_state, state_path, write_finding, write_state
from runner.history import Usage
from runner.spec import BudgetSpec, JobSpec
from runner.spend import FileStore, SpendLedger, book

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from runner.spend import LedgerStore

ALERTS_STATE = "budget-alerts.json"
RESERVATION_MARGIN = 60.0
"""Seconds a reservation outlives the longest its calls may take (timeouts times retries)."""


class Exhausted:
    """A budget the next call would break, with the figures that show why."""

    def __init__(self, budget: BudgetSpec, month: str, detail: str) -> None:
        self.budget = budget
        self.month = month
        self.detail = detail


class OverBudget(Exception):
    """A further call of this run (the retry after a malformed reply) would break a budget."""

    def __init__(self, exhausted: list[Exhausted]) -> None:
        super().__init__("; ".join(item.detail for item in exhausted))
        self.exhausted = exhausted


def call_worst_case(spec: JobSpec, input_tokens: int) -> Usage:
    """The most one call may use: `input_tokens` in and `max_tokens` out, priced."""
    assert spec.llm is not None
    price_in, price_out = spec.llm.price_per_mtok or (0.0, 0.0)
    output = spec.llm.max_tokens
    return Usage(input_tokens + output, (input_tokens * price_in + output * price_out) / 1e6, 1)


def exhausted_budgets(spec: JobSpec, ledger: SpendLedger, worst: Usage) -> list[Exhausted]:
    """The budgets that `worst` on top of the ledger's spend and reservations would break."""
    found = []
    for budget in spec.budgets:
        job = spec.job if budget.scope == "job" else None
        used = ledger.spent(job)
        held = used.tokens - ledger.spent(job, reserved=False).tokens
        in_flight = f" ({held} reserved by runs in progress)" if held else ""
        problems = []
        if budget.monthly_tokens is not None and used.tokens + worst.tokens > budget.monthly_tokens:
            problems.append(
                f"{used.tokens} of {budget.monthly_tokens} tokens used{in_flight}, "
                f"the next call may use up to {worst.tokens}"
            )
        # Whole micro-dollars: a call landing exactly on the budget is within it.
        if budget.monthly_usd is not None and round(used.usd + worst.usd, 6) > budget.monthly_usd:
            problems.append(
                f"{used.usd:.2f} of {budget.monthly_usd:.2f} USD used, "
                f"the next call may cost up to {worst.usd:.4f}"
            )
        if problems:
            found.append(Exhausted(budget, ledger.month, "; ".join(problems)))
    return found


class Reservation:
    """A run's booking in the spend ledger, from before its first call to after its last."""

    def __init__(self, spec: JobSpec, started: datetime) -> None:
        self.spec = spec
        self.started = started  # the month the run started in is the month it is booked in
        self.key = f"{spec.job}-{os.getpid()}-{os.urandom(4).hex()}"
        self.reserved = Usage()
        assert spec.llm is not None
        calls = (spec.llm.max_retries + 1) * 2  # SDK retries, for each of two attempts
        self.lasts = timedelta(seconds=spec.llm.timeout * calls + RESERVATION_MARGIN)
        """How long a reservation holds from the moment it is made: a command or a chain's
        wait before it does not shorten the calls' time."""
        self.store = ledger_store(spec)

    def add(self, worst: Usage, now: datetime) -> list[Exhausted]:
        """Reserve `worst` more at `now` (the run's clock), or return the budgets it would
        break (reserving nothing)."""
        total = Usage()
        total.merge(self.reserved)
        total.merge(worst)

        def reserve(ledger: SpendLedger) -> list[Exhausted]:
            # The ledger counts this run's earlier reservation (a retry's check) like any other.
            exhausted = exhausted_budgets(self.spec, ledger, worst)
            if not exhausted:
                ledger.reserve(self.key, self.spec.job, total, now + self.lasts)
            return exhausted

        exhausted = book(self.store, self.started, now, reserve)
        if not exhausted:
            self.reserved = total
        return exhausted

    def settle(self, used: Usage, now: datetime) -> None:
        """Replace the reservation with what the calls used (the run's tokens and cost)."""
        job = self.spec.job
        book(self.store, self.started, now, lambda ledger: ledger.settle(self.key, job, used))


def ledger_store(spec: JobSpec) -> LedgerStore:
    """Where the job's spend is booked: the state directory, or the fleet's bucket."""
    if spec.fleet is None:
        return FileStore(spec.state_dir, spec.config, spec.timezone)
    from runner.fleet.spendstore import KvStore

    return KvStore(spec.state_dir, spec.config, spec.timezone, spec.fleet)


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

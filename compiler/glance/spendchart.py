"""The status page's spend charts: this month's model spend per day, stacked by job, with what
the ledger holds beyond the run history as a bar of its own (so the bars add up to the ledger's
month to date, `vigil cost`'s), and one bar per budget, spent against its limit."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup

from compiler.glance.model import BudgetUse, Spend
from compiler.glance.svg import WIDTH, figure, line, rect, text, title
from compiler.glance.words import usd

LEFT = 64
TOP = 12
PLOT = 180
"""The bars' height in units."""
BASE = TOP + PLOT
BUDGET_WIDTH = 460
"""The budgets' bars share a half-width column with the table per job."""
EARLIER = "earlier (not in the run history)"


def month_days(spend: Spend, today: date) -> list[date]:
    """The month's days to `today` (or to the month's last day with spend, if later)."""
    year, month = (int(part) for part in spend.month.split("-"))
    first = date(year, month, 1)
    last = max(
        [first, *spend.by_day, today if (today.year, today.month) == (year, month) else first]
    )
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def by_day_chart(spend: Spend, colours: dict[str, str], today: date) -> Markup:
    days = month_days(spend, today)
    columns = len(days) + (1 if spend.unrecorded else 0)
    step = (WIDTH - LEFT - 8) / max(columns, 1)
    top = max([sum(jobs.values()) for jobs in spend.by_day.values()] + [0.0])
    top = _rounded_up(max(top, sum(spend.unrecorded.values()), 0.01))
    bars = Bars(step, top, colours)
    parts = [*_grid(top)]
    for n, current in enumerate(days):
        x = LEFT + n * step
        jobs = spend.by_day.get(current, {})
        label = f"{current:%a} {current.day} {current:%b}"
        parts += bars.stack(jobs, x, label)
        if len(days) <= 16 or n % 2 == 0:
            parts.append(text(x + step / 2, BASE + 14, str(current.day), class_="axis mid"))
    if spend.unrecorded:
        x = LEFT + len(days) * step
        parts += bars.stack(spend.unrecorded, x, EARLIER, hatched=True)
        parts.append(text(x + step / 2, BASE + 14, "earlier", class_="axis mid"))
    words = f"Model spend per day in {spend.month}, stacked by job: {usd(spend.total_usd)} in all"
    return figure(words, BASE + 22, *parts)


def _rounded_up(amount: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, so its labels read as round sums (a cent
    for an amount that is not a positive finite number)."""
    if not (math.isfinite(amount) and amount > 0):
        return 0.01
    scale = 10.0 ** math.floor(math.log10(amount))
    return next(step * scale for step in (1, 2, 5, 10) if step * scale >= amount)


def _grid(top: float) -> Iterator[Markup]:
    for fraction in (0.0, 0.5, 1.0):
        y = BASE - fraction * PLOT
        yield line(LEFT, y, WIDTH - 8, y, class_="grid")
        yield text(LEFT - 6, y + 4, usd(top * fraction), class_="axis end")


@dataclass(frozen=True)
class Bars:
    """The day bars' common measures: their width, the axis' top and the jobs' colours."""

    step: float
    top: float
    colours: dict[str, str]

    def stack(
        self, jobs: dict[str, float], x: float, label: str, hatched: bool = False
    ) -> Iterator[Markup]:
        """One bar: a segment per job, the largest at the bottom."""
        y: float = BASE
        total = sum(jobs.values())
        for job, amount in sorted(jobs.items(), key=lambda item: -item[1]):
            height = amount / self.top * PLOT
            y -= height
            words = f"{label}: {job} {usd(amount)} (the day: {usd(total)})"
            yield rect(
                x + self.step * 0.15,
                y,
                self.step * 0.7,
                max(height, 0.5),
                title(words),
                fill=self.colours.get(job, "#777"),
                class_="segment hatched" if hatched else "segment",
                data_job=job,
                data_usd=f"{amount:.6f}",
            )


def budget_chart(budgets: tuple[BudgetUse, ...]) -> Markup:
    """A bar per limit (a budget may limit dollars, tokens or both): spent against it."""
    rows = [*_limits(budgets)]
    parts = []
    for n, (name, spent, limit, words) in enumerate(rows):
        y = 6 + n * 44
        share = spent / limit if limit else 1.0
        over = "over" if share > 1 else "under"
        parts.append(text(0, y + 12, name, class_="lane"))
        parts.append(text(BUDGET_WIDTH, y + 12, words.partition(": ")[2], class_="axis end"))
        parts.append(rect(0, y + 18, BUDGET_WIDTH, 16, title(words), class_="limit"))
        filled = max(min(share, 1.0) * BUDGET_WIDTH, 1.5)
        parts.append(
            rect(0, y + 18, filled, 16, title(words), class_=f"spent {over}", data_scope=name)
        )
    label = "Budgets: this month's spend against each monthly limit"
    return figure(label, 44 * len(rows) + 4, *parts, width=BUDGET_WIDTH)


def _limits(budgets: tuple[BudgetUse, ...]) -> Iterator[tuple[str, float, float, str]]:
    spent: float
    limit: float
    for budget in budgets:
        if budget.monthly_usd is not None:
            spent, limit = budget.spent_usd, budget.monthly_usd
            share = f"{spent / limit:.0%}" if limit else "-"
            words = f"{usd(spent)} of {usd(limit)} ({share})"
            yield budget.scope, spent, limit, f"{budget.scope} budget: {words}"
        if budget.monthly_tokens is not None:
            tokens, most = budget.spent_tokens, budget.monthly_tokens
            share = f"{tokens / most:.0%}" if most else "-"
            words = f"{tokens:,} of {most:,} tokens ({share})"
            yield f"{budget.scope} tokens", tokens, most, f"{budget.scope} budget: {words}"

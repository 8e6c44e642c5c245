"""How the status page says a moment, an amount and a run: one wording for the charts' tooltips
and the page's tables, so that what a mark says on hover is what a table row says."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from compiler.glance.model import Mark, Run


def moment(when: datetime, where: tzinfo) -> str:
    """`Mon 7 Dec 14:00` in the page's zone (the page names its zone once, at the top)."""
    local = when.astimezone(where)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def day(when: datetime, where: tzinfo) -> str:
    local = when.astimezone(where)
    return f"{local:%a} {local.day} {local:%b}"


def usd(amount: float) -> str:
    """Cents for sums a person compares with a budget; fractions of a cent where that is all."""
    if 0 < abs(amount) < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def seconds(duration: float | None) -> str:
    if duration is None:
        return "-"
    if duration < 60:
        return f"{duration:.1f} s"
    if duration < 3600:
        return f"{duration / 60:.1f} min"
    return f"{duration / 3600:.1f} h"


def run_result(run: Run) -> str:
    """`failed (timeout, exit status 3)`: the mark, and the runner's word when it says more."""
    word = run.mark.value
    details = [run.result] if run.result != word else []
    if run.exit_status not in (None, 0):
        details.append(f"exit status {run.exit_status}")
    return f"{word} ({', '.join(details)})" if details else word


def run_tooltip(lane: str, run: Run, where: tzinfo) -> str:
    """What hovering a run's mark says: when, how long, the result and why."""
    text = f"{lane} · {moment(run.start, where)} · {seconds(run.duration_s)} · {run_result(run)}"
    if run.tokens:
        text += f" · {run.tokens:,} tokens, {usd(run.cost_usd)}"
    return text + (f"\n{run.reason}" if run.reason else "")


def tally(runs: Sequence[Run]) -> str:
    """`240 runs: 238 ok, 2 failed`: a day's runs drawn as one mark."""
    counts = ", ".join(
        f"{sum(run.mark is mark for run in runs)} {mark.value}"
        for mark in Mark
        if any(run.mark is mark for run in runs)
    )
    return f"{len(runs)} runs: {counts}"

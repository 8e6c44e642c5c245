"""What the inspecting commands print: tables (or JSON) on stdout, the generations list, the
cost table. Stdlib only: these commands answer without loading the model (cli/main.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.operate.cost import JobCost


def show_table(rows: list[dict[str, Any]], columns: list[str], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print(empty, file=sys.stderr)
        return
    cells = [[str(row.get(c) if row.get(c) is not None else "-") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def show_history(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        marker = "*" if row["current"] else " "
        revision = (row["revision"] or "-")[:12] + ("+dirty" if row["dirty"] else "")
        changes = ", ".join(f"{n} {a}d" for a, n in row["changes"].items() if n) or "-"
        number, reason = row["generation"], row["reason"]
        when = str(row["created"] or "?").replace(".", "+", 1).partition("+")[0]
        print(f"{marker} {number:>4}  {when}  {revision:<18} {reason}: {changes}")


def show_costs(rows: list[JobCost], heartbeats_per_month: float, as_json: bool) -> None:
    if as_json:
        data = [{**row.__dict__, "estimate_usd": row.estimate_usd} for row in rows]
        print(json.dumps(data, indent=2))
    else:
        print(cost_table(rows, heartbeats_per_month), end="")


def cost_line(rows: list[JobCost]) -> str:
    """`vigil plan`'s one line about model cost."""
    known = [row.estimate_usd for row in rows if row.estimate_usd is not None]
    spent = sum(row.spent_usd for row in rows)
    text = f"model cost: about ${sum(known):,.2f}/month at most, ${spent:,.2f} spent this month"
    missing = sum(row.estimate_usd is None for row in rows)
    if missing:
        text += f" ({missing} job{'s' * (missing > 1)} without expected_tokens)"
    return text + "; the coordinator spends none (`vigil cost` for the table)"


def cost_table(rows: list[JobCost], heartbeat_per_month: float) -> str:
    """`vigil cost`: per job, runs a month, the estimate and this month's spend."""
    header = (
        f"{'job':<24} {'model':<20} {'runs/month':>10} {'estimate':>10} {'tokens/run':>10} "
        f"{'this month':>11}"
    )
    lines = [header, "-" * len(header)]
    total_estimate, total_spent, unknown = 0.0, 0.0, []
    for row in rows:
        est = row.estimate_usd
        shown = "?" if est is None else f"${est:,.2f}"
        if est is None:
            unknown.append(row.job)
        else:
            total_estimate += est
        total_spent += row.spent_usd
        median = "-" if row.median_tokens is None else format(row.median_tokens, ",")
        lines.append(
            f"{row.job:<24} {row.model or '-':<20} {row.firings_per_month:>10,.0f} "
            f"{shown:>10} {median:>10} {'$' + format(row.spent_usd, ',.2f'):>11}"
        )
    lines.append(
        f"{'coordinator heartbeat':<24} {'- (rules)':<20} {heartbeat_per_month:>10,.0f} "
        f"{'$0.00':>10} {'-':>10} {'$0.00':>11}"
    )
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<24} {'':<20} {'':>10} {'$' + format(total_estimate, ',.2f'):>10} "
        f"{'':>10} {'$' + format(total_spent, ',.2f'):>11}"
    )
    notes = [
        "Estimates assume every run finds something: detectors skip the model when not.",
        "tokens/run: the median of each job's last model runs; a run above 3x what its job"
        " usually takes raises an alert.",
    ]
    if unknown:
        notes.append(
            "No estimate without expected_tokens (and a known price): " + ", ".join(unknown)
        )
    return "\n".join([*lines, "", *notes]) + "\n"

"""What the inspecting commands print: tables (or JSON) on stdout, the generations list, the
cost table. Stdlib only: these commands answer without loading the model (cli/main.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.operate.cost import JobCost
    from compiler.operate.fleetstatus import FleetStatus, HostRow


def show_table(rows: list[dict[str, Any]], columns: list[str], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print(empty, file=sys.stderr)
        return
    for line in table_lines(rows, columns):
        print(line)


def table_lines(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """A header of the columns' names in capitals, then a line per row; `-` for nothing.
    Cells come from findings, replies and comments: a control character (a line break, a
    terminal's escape sequence) is shown as `?`, so a row stays one line and the terminal
    stays as it was."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return lines


def _cell(value: object) -> str:
    return printable(str(value) if value is not None else "-")


def printable(text: str) -> str:
    """`text` with each control character (a line break, a terminal's escape sequence) shown as
    `?`: what vigil prints from findings, state and replies cannot reach the terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


FLEET_COLUMNS = ["job", "last_run", "result", "next_run", "failures_in_row", "note"]


def show_fleet(fleet: FleetStatus, timezone: str, as_json: bool) -> None:
    """`vigil status --fleet`: a line per host, then its jobs, indented."""
    if as_json:
        print(json.dumps(fleet.as_json(), indent=2, default=str))
        return
    print(fleet_summary(fleet, timezone))
    for host in fleet.hosts:
        print()
        print(host_line(host, fleet, timezone))
        if host.reported is None:
            continue
        if not host.jobs:
            print("  no jobs")
            continue
        rows = [
            {
                **job.__dict__,
                "last_run": _local(job.last_run, timezone),
                "next_run": _local(job.next_run, timezone),
            }
            for job in host.jobs
        ]
        for line in table_lines(rows, FLEET_COLUMNS):
            print(f"  {line}")


def fleet_summary(fleet: FleetStatus, timezone: str) -> str:
    """fleet: 3 hosts, this config fe69a64f on 2 of them, coordinator active on vps."""
    from compiler.operate.fleetstatus import HASH_SHOWN

    listed = [host for host in fleet.hosts if host.in_config]
    same = sum(host.config_hash == fleet.config_hash for host in fleet.hosts)
    words = [
        f"{len(listed)} hosts",
        f"this config {fleet.config_hash[:HASH_SHOWN]} on {same} of them",
    ]
    if fleet.lease:
        since = _local(fleet.lease.get("since"), timezone) or "?"
        words.append(f"coordinator active on {fleet.lease['host']} since {since}")
    else:
        words.append("no coordinator active")
    return f"{fleet.config}: " + ", ".join(words)


def host_line(host: HostRow, fleet: FleetStatus, timezone: str) -> str:
    """vps: generation 3, config 0b1c2d3e (differs: ...), reported 5m ago, coordinator: active"""
    from compiler.operate.fleetstatus import HASH_SHOWN, age

    words = []
    if host.reported is None:
        words.append("never reported")
    else:
        words.append(f"generation {host.generation if host.generation is not None else '?'}")
        config = f"config {(host.config_hash or '?')[:HASH_SHOWN]}"
        if host.drift:
            most = fleet.majority_hash() == host.config_hash and fleet.reporting() > 1
            config += (
                " (drift: not this config, but most hosts')"
                if most
                else (" (drift: differs from this config)")
            )
        words.append(config)
        when = _local(host.reported, timezone)
        words.append(f"reported {age(host.age_s or 0)} ago ({when})")
        if host.silent:
            words.append(f"silent (heartbeat {age(host.heartbeat or 0)})")
        if host.waiting:
            words.append(f"{host.waiting} finding(s) waiting in outgoing/")
    if host.coordinator is not None:
        words.append(f"coordinator: {host.coordinator}")
    if not host.in_config:
        words.append("not one of this config's hosts")
    return f"{host.host}: " + ", ".join(words)


def _local(text: str | None, timezone: str) -> str | None:
    from compiler.operate.fleetstatus import local_time

    return local_time(text, timezone)


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

"""The status page: one self-contained HTML file drawn from a Glance (`vigil report --html`,
`vigil serve`). Its CSS is inline and its charts are SVG drawn here, so it fetches nothing and
needs no JavaScript; jinja2 escapes every value (job names and reasons come from users and
commands), and the charts are built from escaped markup (svg.py)."""

from __future__ import annotations

import functools
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2

from compiler.fsutil import atomic_write
from compiler.glance.lanes import lane_colours, past_days, week_ahead
from compiler.glance.model import Glance, InstalledGeneration, Lane, Mark, Spend
from compiler.glance.spendchart import EARLIER, budget_chart, by_day_chart
from compiler.glance.words import moment, run_result, seconds, usd
from runner.clock import zone

RECENT_TROUBLE = 25
"""The failed, missed and skipped runs listed under the past days' chart, newest first."""


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.glance", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = usd
    return env.get_template("page.html.j2")


def render_page(glance: Glance) -> str:
    return _template().render(page(glance))


def write_page(glance: Glance, path: Path) -> None:
    """Written beside `path` and renamed over it: a reader never sees half a page."""
    atomic_write(path, render_page(glance))


def page(glance: Glance) -> dict[str, Any]:
    """What the template shows, every moment already in the config's timezone."""
    where = zone(glance.timezone)
    return {
        "glance": glance,
        "drawn": moment(glance.now, where),
        "week": week_ahead(glance),
        "past": past_days(glance),
        "lanes": [_lane_row(lane, glance.now, where) for lane in glance.lanes],
        "trouble": _trouble(glance, where),
        "runs": sum(len(lane.runs) for lane in glance.lanes),
        "spend": _spend(glance.spend, lane_colours(glance)) if glance.spend else None,
        "generation": _generation(glance.generation),
    }


def _lane_row(lane: Lane, now: datetime, where: tzinfo) -> dict[str, Any]:
    coming = next((firing for firing in lane.firings if firing >= now), None)
    last = lane.runs[-1] if lane.runs else None
    return {
        "lane": lane,
        "next_iso": coming.isoformat() if coming else "",
        "next": moment(coming, where) if coming else "-",
        "count": f"{len(lane.firings)}+" if lane.cut else str(len(lane.firings)),
        "last": f"{moment(last.start, where)}, {run_result(last)}" if last else "-",
        "failed": sum(run.mark is Mark.FAILED for run in lane.runs),
    }


def _trouble(glance: Glance, where: tzinfo) -> list[dict[str, str]]:
    rows = [
        {
            "when": moment(run.start, where),
            "at": run.start.isoformat(),
            "lane": lane.name,
            "result": run_result(run),
            "mark": run.mark.value,
            "duration": seconds(run.duration_s),
            "reason": run.reason or "",
        }
        for lane in glance.lanes
        for run in lane.runs
        if run.mark is not Mark.OK
    ]
    rows.sort(key=lambda row: row["at"], reverse=True)
    return rows[:RECENT_TROUBLE]


def _spend(spend: Spend, colours: dict[str, str]) -> dict[str, Any]:
    jobs = [
        {"job": job, "usd": used, "tokens": tokens, "calls": calls, "colour": colours.get(job)}
        for job, (used, tokens, calls) in sorted(spend.by_job.items(), key=lambda i: -i[1][0])
    ]
    return {
        "month": spend.month,
        "total": spend.total_usd,
        "tokens": sum(tokens for _, tokens, _ in spend.by_job.values()),
        "jobs": jobs,
        "unrecorded": spend.unrecorded,
        "earlier": EARLIER,
        "chart": by_day_chart(spend, colours),
        "budgets": budget_chart(spend.budgets) if spend.budgets else None,
    }


def _generation(found: InstalledGeneration | None) -> dict[str, Any] | None:
    if found is None:
        return None
    git = found.git or {}
    revision = str(git.get("revision") or git.get("commit") or "")[:12]
    return {
        "number": found.generation,
        "file": found.config_file or "-",
        "sha256": (found.config_sha256 or "-")[:12],
        "git": (revision + (" (dirty)" if git.get("dirty") else "")) if revision else "-",
        "applied": found.applied or "-",
        "drift": found.drift,
        "config_changed": found.config_changed,
    }

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
from compiler.glance.lanes import lane_colours, past_runs, week_ahead
from compiler.glance.model import Glance, InstalledGeneration, Lane, Mark, Spend
from compiler.glance.spendchart import EARLIER, budget_chart, by_day_chart
from compiler.glance.words import moment, run_result, seconds, usd
from runner.clock import zone

RECENT_TROUBLE = 50
"""The failed, missed and skipped runs listed under the past days' chart, newest first (how
many more there are is said)."""
PRIVATE = 0o600
"""The page shows what the state holds (reasons, nag titles, spend): as private as it is."""


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
    """Written beside `path` and renamed over it: a reader never sees half a page. Readable by
    its owner only, as the state it shows."""
    atomic_write(path, render_page(glance), mode=PRIVATE)


def page(glance: Glance) -> dict[str, Any]:
    """What the template shows, every moment already in the config's timezone."""
    where = zone(glance.timezone)
    past = (glance.now.astimezone(where).date() - glance.since.astimezone(where).date()).days
    trouble, more = _trouble(glance, where)
    return {
        "glance": glance,
        "drawn": moment(glance.now, where),
        "week": week_ahead(glance),
        "past_days": past,
        "past": past_runs(glance) if past else None,
        "lanes": [_lane_row(lane, glance.now, where) for lane in glance.lanes],
        "trouble": trouble,
        "trouble_more": more,
        "runs": sum(len(lane.runs) for lane in glance.lanes),
        "spend": _spend(glance, glance.spend, where) if glance.spend else None,
        "generation": _generation(glance.generation),
    }


def _lane_row(lane: Lane, now: datetime, where: tzinfo) -> dict[str, Any]:
    coming = lane.next_firing(now)
    last = lane.runs[-1] if lane.runs else None
    return {
        "lane": lane,
        "next_iso": coming.isoformat() if coming else "",
        "next": moment(coming, where) if coming else "-",
        "count": f"{len(lane.firings)}+" if lane.cut else str(len(lane.firings)),
        "last": f"{moment(last.start, where)}, {run_result(last)}" if last else "-",
        "failed": lane.failed,
    }


def _trouble(glance: Glance, where: tzinfo) -> tuple[list[dict[str, str]], int]:
    """The latest RECENT_TROUBLE runs that did not succeed, newest first (by instant: ISO texts
    of two offsets do not sort as their moments), and how many more there are."""
    troubled = sorted(
        ((run, lane.name) for lane in glance.lanes for run in lane.runs if run.mark is not Mark.OK),
        key=lambda pair: pair[0].start.timestamp(),
        reverse=True,
    )
    rows = [
        {
            "when": moment(run.start, where),
            "at": run.start.isoformat(),
            "lane": name,
            "result": run_result(run),
            "mark": run.mark.value,
            "duration": seconds(run.duration_s),
            "reason": run.reason or "",
        }
        for run, name in troubled[:RECENT_TROUBLE]
    ]
    return rows, max(len(troubled) - RECENT_TROUBLE, 0)


def _spend(glance: Glance, spend: Spend, where: tzinfo) -> dict[str, Any]:
    colours = lane_colours(glance)
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
        "chart": by_day_chart(spend, colours, glance.now.astimezone(where).date()),
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

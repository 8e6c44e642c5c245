"""Job specs: the JSON each runner invocation reads. Everything the runner needs, nothing it must
compute from YAML; paths keep `~` so the runner expands them for the user it runs as."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from compiler.language.model import Config, Job, NagRule
from compiler.language.model.types import is_calendar
from compiler.language.prices import price_of
from compiler.language.schedule import next_elapses, parse_schedule
from compiler.layout import default_state_dir
from runner.contract import SPEC_VERSION, coordinator_unit, job_unit, service, watch_unit

# A fixed start for computing schedule gaps keeps the output the same on every run.
CHAIN_BASE = datetime(2026, 1, 5, tzinfo=UTC)


def state_dir(config: Config, system: bool) -> str:
    return config.state_dir or default_state_dir(system, config.name)


def _base(config: Config, kind: str, system: bool) -> dict[str, Any]:
    return {
        "spec": SPEC_VERSION,
        "kind": kind,
        "config": config.name,
        "scope": "system" if system else "user",
        "state_dir": state_dir(config, system),
        "timezone": config.timezone,
    }


def job_spec(config: Config, name: str, job: Job, system: bool) -> dict[str, Any]:
    spec = _base(config, "job", system)
    command: dict[str, Any] | None = None
    if isinstance(job.run, str):
        command = {"shell": job.run}
    elif job.run is not None:
        command = {"argv": job.run}
    spec.update(
        job=name,
        unit=service(job_unit(config.name, name)),
        command=command,
        timeout=job.timeout,
        environment=dict(job.environment),
        working_directory=job.working_directory,
        secrets=list(job.secrets),
        output=job.output,
        after=_after(config, name, job),
        llm=_llm(config, job),
        budgets=_budgets(config, job),
    )
    return spec


# `name` is unused: left as it is while another change reworks _after (drop the noqa then).
def _after(config: Config, name: str, job: Job) -> dict[str, Any] | None:  # noqa: ARG001
    """The predecessor must have succeeded in its own current cycle: since its latest
    scheduled firing (`calendar`, computed by the runner). `window` (this job's shortest gap
    between firings) is the fallback for a schedule the runner cannot read."""
    if job.after is None:
        return None
    lines = _calendar_lines(job)
    predecessor = config.jobs[job.after]
    return {
        "job": job.after,
        "unit": service(job_unit(config.name, job.after)),
        "window": _shortest_gap(lines, job.timezone or config.timezone),
        "timeout": predecessor.timeout,
        "calendar": _calendar(
            _calendar_lines(predecessor), predecessor.timezone or config.timezone
        ),
    }


def _calendar_lines(job: Job) -> tuple[str, ...]:
    return tuple(line for e in job.schedule for line in parse_schedule(e).on_calendar)


def _calendar(lines: tuple[str, ...], zone: str) -> dict[str, Any] | None:
    """A timer's OnCalendar= lines and zone, for the runner to find its previous firing."""
    return {"on_calendar": list(lines), "timezone": zone} if lines else None


def _llm(config: Config, job: Job) -> dict[str, Any] | None:
    if job.prompt is None:
        return None
    model = job.model or config.llm.model
    overrides = {name: (p.input, p.output) for name, p in config.llm.prices.items()}
    price = price_of(model, overrides)
    return {
        "prompt": job.prompt,
        "model": model,
        "max_tokens": job.max_tokens or config.llm.max_tokens,
        "api_key_credential": config.llm.api_key,
        "base_url": config.llm.base_url,
        "timeout": config.llm.timeout,
        "price_per_mtok": {"input": price[0], "output": price[1]} if price else None,
    }


def _budgets(config: Config, job: Job) -> list[dict[str, Any]]:
    budgets = []
    for scope, budget in (("job", job.budget), ("global", config.budget)):
        if budget is not None and job.prompt is not None:
            budgets.append(
                {
                    "scope": scope,
                    "monthly_tokens": budget.monthly_tokens,
                    "monthly_usd": budget.monthly_usd,
                }
            )
    return budgets


def _calendar_periods(rule: NagRule) -> dict[str, bool]:
    """Which of the rule's periods were written in days or weeks: the runner counts those in
    calendar days of the config's timezone, the others in elapsed time."""
    return {
        "once_per_calendar": is_calendar(rule.once_per),
        "min_interval_calendar": is_calendar(rule.min_interval),
    }


def nag_specs(config: Config) -> dict[str, dict[str, Any]]:
    """The coordinator spec's `nag:`: each rule as the runner reads it."""
    dump = config.model_dump(mode="json", by_alias=True, include={"nag"})
    return {
        name: {**rule, **_calendar_periods(config.nag[name])} for name, rule in dump["nag"].items()
    }


def coordinator_spec(config: Config, system: bool) -> dict[str, Any]:
    spec = _base(config, "coordinator", system)
    dump = config.model_dump(mode="json", by_alias=True)
    spec.update(
        unit=service(coordinator_unit(config.name)),
        # The sandbox is the unit's business (the runner never sees it).
        coordinator={k: v for k, v in dump["coordinator"].items() if k != "sandbox"},
        channels=dump["channels"],
        nag=nag_specs(config),
        watches=dump["watches"],
        jobs=sorted(config.jobs),
    )
    return spec


def watch_spec(config: Config, name: str, system: bool) -> dict[str, Any]:
    spec = _base(config, "watch", system)
    model = config.watches[name]
    watch = model.model_dump(mode="json", by_alias=True)
    spec.update(watch_name=name, unit=service(watch_unit(config.name, name)), watch=watch)
    if model.deadline is not None:
        zone = model.timezone or config.timezone
        lines = parse_schedule(model.deadline.at).on_calendar
        spec["window"] = _shortest_gap(lines, zone)  # for a calendar the runner cannot read
        spec["calendar"] = _calendar(lines, zone)
    return spec


def _shortest_gap(lines: tuple[str, ...], zone: str) -> int | None:
    """The shortest time between two firings: evidence counts from the previous deadline."""
    firings = next_elapses(lines, zone, 50, base=CHAIN_BASE) if lines else []
    gaps = [(b - a).total_seconds() for a, b in pairwise(firings)]
    return int(min(gaps)) if gaps else None


def failure_spec(config: Config, system: bool) -> dict[str, Any]:
    spec = _base(config, "failure", system)
    spec.update(journal_lines=20)
    return spec

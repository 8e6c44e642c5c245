"""Job specs: the JSON each runner invocation reads. Everything the runner needs, nothing it must
compute from YAML; paths keep `~` so the runner expands them for the user it runs as."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal, TypedDict

from compiler.language.model import Config, Job
from compiler.language.model.gating import WEEKDAYS, Matcher
from compiler.language.model.llm import Budget
from compiler.language.model.types import is_calendar
from compiler.language.prices import price_of
from compiler.language.schedule import next_elapses, parse_schedule
from compiler.layout import default_state_dir
from runner.contract import (
    SPEC_VERSION,
    coordinator_unit,
    forward_unit,
    job_unit,
    preflight_unit,
    reply_unit,
    service,
    timer,
    watch_unit,
)
from runner.findings import VIGIL_SOURCE
from runner.spectypes import (
    AfterJSON,
    ArgvCommandJSON,
    BudgetJSON,
    BudgetScope,
    CalendarJSON,
    CoordinatorSpecJSON,
    DeadlineTimerJSON,
    FailureSpecJSON,
    FleetCoordinatorJSON,
    FleetHostJSON,
    FleetJSON,
    ForwardJobJSON,
    ForwardSpecJSON,
    InhibitJSON,
    JobSpecJSON,
    JobTimerJSON,
    LlmJSON,
    MaintenanceJSON,
    NagRuleJSON,
    PauseJSON,
    ReplyJSON,
    ReplySourceJSON,
    ReplySpecJSON,
    ShellCommandJSON,
    SpecJSON,
    SpecKind,
    WatchSpecJSON,
)

# A fixed start for computing schedule gaps keeps the output the same on every run.
CHAIN_BASE = datetime(2026, 1, 5, tzinfo=UTC)


def state_dir(config: Config, system: bool) -> str:
    return config.state_dir or default_state_dir(system, config.name)


def _base(config: Config, kind: SpecKind, system: bool) -> SpecJSON:
    return {
        "spec": SPEC_VERSION,
        "kind": kind,
        "config": config.name,
        "scope": "system" if system else "user",
        "state_dir": state_dir(config, system),
        "timezone": config.timezone,
    }


def _command(command: str | list[str] | None) -> ShellCommandJSON | ArgvCommandJSON | None:
    if isinstance(command, str):
        return {"shell": command}
    if command is not None:
        return {"argv": command}
    return None


def job_spec(
    config: Config, name: str, job: Job, system: bool, fleet: FleetJSON | None = None
) -> JobSpecJSON:
    """`fleet`: the fleet as the host it is compiled for sees it (None: one machine). A prompt
    job of a fleet host gets it whole: it books its model calls in the fleet's spend ledger."""
    fleet_host: FleetHostJSON = {}
    if fleet is not None:
        fleet_host["host"] = fleet["host"]
        if job.prompt is not None:
            fleet_host["fleet"] = fleet
    return {
        **_base(config, "job", system),
        "job": name,
        "unit": service(job_unit(config.name, name)),
        "command": _command(job.run),
        "check": _command(job.check),
        "preflight": job.preflight,
        "timeout": job.timeout,
        "environment": dict(job.environment),
        "working_directory": job.working_directory,
        "secrets": list(job.secrets),
        "output": job.output,
        "after": _after(config, job),
        "llm": _llm(config, job),
        "budgets": _budgets(config, job),
        "notify_recovered": notify_recovered(config, name),
        **fleet_host,
    }


def notify_recovered(config: Config, job: str) -> bool:
    """Whether the coordinator hears when the job runs fine after failing (runner.recovery):
    when that is announced (its source's `notify_recovered`, a job's findings come from the
    source of its name, else the coordinator's), and when an inhibit rule waits on its
    failures (what it holds goes out once the job recovers)."""
    policy = config.coordinator.sources.get(job)
    if policy is not None and policy.notify_recovered is not None:
        announced = policy.notify_recovered
    else:
        announced = config.coordinator.notify_recovered
    rules = config.inhibit.values()
    return announced or any(_waits_on_failures(rule.while_, job) for rule in rules)


def _waits_on_failures(condition: Matcher, job: str) -> bool:
    """Whether the failure alerts of `job` (source vigil, kind failure) can match."""
    from fnmatch import fnmatchcase

    facts = {"source": VIGIL_SOURCE, "job": job, "kind": "failure"}
    for field, value in facts.items():
        globs = getattr(condition, field)
        if globs is not None and not any(fnmatchcase(value, glob) for glob in globs):
            return False
    return condition.watch is None


def _after(config: Config, job: Job) -> AfterJSON | None:
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


def _calendar(lines: tuple[str, ...], zone: str) -> CalendarJSON | None:
    """A timer's OnCalendar= lines and zone, for the runner to find its previous firing."""
    return {"on_calendar": list(lines), "timezone": zone} if lines else None


def _llm(config: Config, job: Job) -> LlmJSON | None:
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
        "expected_tokens": (
            job.expected_tokens.input + job.expected_tokens.output if job.expected_tokens else None
        ),
    }


def _budgets(config: Config, job: Job) -> list[BudgetJSON]:
    budgets: list[BudgetJSON] = []
    scopes: tuple[tuple[BudgetScope, Budget | None], ...] = (
        ("job", job.budget),
        ("global", config.budget),
    )
    for scope, budget in scopes:
        if budget is not None and job.prompt is not None:
            budgets.append(
                {
                    "scope": scope,
                    "monthly_tokens": budget.monthly_tokens,
                    "monthly_usd": budget.monthly_usd,
                }
            )
    return budgets


def nag_specs(config: Config) -> dict[str, NagRuleJSON]:
    """The coordinator spec's `nag:`: each rule as the runner reads it."""
    dump = config.model_dump(mode="json", by_alias=True, include={"nag"})
    rules: dict[str, NagRuleJSON] = dump["nag"]
    for name, rule in rules.items():
        # Which periods were written in days or weeks: the runner counts those in calendar
        # days of the config's timezone, the others in elapsed time.
        rule["once_per_calendar"] = is_calendar(config.nag[name].once_per)
        rule["min_interval_calendar"] = is_calendar(config.nag[name].min_interval)
    return rules


def coordinator_spec(
    config: Config, system: bool, fleet: FleetJSON | None = None
) -> CoordinatorSpecJSON:
    # The sandbox is the unit's business (the runner never sees it); the hosts are the fleet's.
    dump = config.model_dump(
        mode="json",
        by_alias=True,
        include={"coordinator", "channels", "watches"},  # nag: nag_specs
        exclude={"coordinator": {"sandbox", "hosts"}},
    )
    fleet_part: FleetCoordinatorJSON = {} if fleet is None else {"fleet": fleet}
    return {
        **_base(config, "coordinator", system),
        "unit": service(coordinator_unit(config.name)),
        "coordinator": dump["coordinator"],
        "channels": dump["channels"],
        "nag": nag_specs(config),
        "watches": dump["watches"],
        "jobs": sorted(config.jobs),
        "timers": _job_timers(config),
        "replies": _replies(config),
        "inhibit": inhibit_specs(config),
        "maintenance": maintenance_specs(config),
        **fleet_part,
    }


def _matcher(matcher: Matcher) -> dict[str, list[str]]:
    """Only the fields given, each a list of globs."""
    dumped: dict[str, list[str]] = matcher.model_dump(mode="json", exclude_none=True)
    return dumped


def inhibit_specs(config: Config) -> dict[str, InhibitJSON]:
    return {
        name: {"while": _matcher(rule.while_), "hold": _matcher(rule.hold), "drop": rule.drop}
        for name, rule in config.inhibit.items()
    }


def maintenance_specs(config: Config) -> dict[str, MaintenanceJSON]:
    return {
        name: {
            "match": _matcher(window.match),
            "start": window.start,
            "end": window.end,
            "days": None if window.days is None else [WEEKDAYS.index(d) for d in window.days],
            "timezone": window.timezone,
            "drop": window.drop,
        }
        for name, window in config.maintenance.items()
    }


def _replies(config: Config) -> dict[str, ReplyJSON]:
    deliver_to = list(config.coordinator.deliver_to)
    return {
        name: {"kind": source.kind, "answer_to": list(source.answer_to or deliver_to)}
        for name, source in config.replies.items()
    }


SIGNAL_RPC = "/api/v1/rpc"
"""The JSON-RPC endpoint of `signal-cli daemon --http`; its events are beside it."""


def reply_spec(config: Config, name: str, system: bool) -> ReplySpecJSON:
    """What a reply source's service reads: where to listen and whom to accept."""
    source = config.replies[name]
    settings: ReplySourceJSON = {}
    if source.telegram is not None:
        settings["telegram"] = {
            "credential": source.telegram.token,
            "chats": [str(chat) for chat in source.telegram.chats],
            "api": source.telegram.api.rstrip("/"),
        }
    if source.signal is not None:
        url = source.signal.url
        if url is not None:
            url = url.rstrip("/").removesuffix(SIGNAL_RPC)
        settings["signal"] = {
            "url": url,
            "socket": source.signal.socket,
            "account": source.signal.account,
            "numbers": list(source.signal.numbers),
        }
    if source.command is not None:
        settings["command"] = list(source.command)
    return {
        **_base(config, "reply", system),
        "unit": service(reply_unit(config.name, name)),
        "source": name,
        "source_kind": source.kind,
        **settings,
    }


def fleet_json(config: Config, host: str, config_hash: str) -> FleetJSON:
    """The fleet as `host` is compiled: `config_hash` is the config file's sha256."""
    from compiler.generate.fleet import coordinator_hosts

    assert config.fleet is not None and config.hosts is not None
    return {
        "servers": list(config.fleet.servers),
        "credential": config.fleet.credentials,
        "host": host,
        "hosts": list(config.hosts),
        "coordinator_hosts": coordinator_hosts(config),
        "lease": config.fleet.lease,
        "config_hash": config_hash,
        "tls_ca": config.fleet.tls_ca,
    }


def forward_spec(local: Config, fleet: FleetJSON, system: bool) -> ForwardSpecJSON:
    """The forwarder of a fleet host; `local` holds only the jobs that host runs."""
    jobs: dict[str, ForwardJobJSON] = {}
    for name in local.jobs:
        stem = job_unit(local.name, name)
        jobs[name] = {"unit": service(stem), "timer": timer(stem)}
    return {
        **_base(local, "forward", system),
        "unit": service(forward_unit(local.name)),
        "fleet": fleet,
        "heartbeat": local.coordinator.heartbeat,
        "linger": local.coordinator.linger,
        "jobs": jobs,
        "timers": _job_timers(local),
    }


MISSED_GRACE = 300
"""Seconds a run may start after its firing's accuracy and delay and still be its run."""


def _job_timers(config: Config) -> dict[str, JobTimerJSON]:
    """Each job's timer, for the heartbeat's "did it run?" (jobs with a calendar only)."""
    timers: dict[str, JobTimerJSON] = {}
    for name, job in sorted(config.jobs.items()):
        lines = _calendar_lines(job)
        zone = job.timezone or config.timezone
        calendar = _calendar(lines, zone)
        if calendar is None:
            continue
        gap = _time_of_day_gap(lines)
        if gap is False:  # a calendar the runner's reader does not know: ask systemd
            gap = _shortest_gap(lines, zone)
        waits = config.jobs[job.after].timeout if job.after else 0
        timers[name] = {
            "unit": timer(job_unit(config.name, name)),
            "calendar": calendar,
            "late": job.accuracy + job.randomized_delay + waits,
            "grace": max(1, min(MISSED_GRACE, gap // 2)) if gap else MISSED_GRACE,
            "catch_up": job.catch_up,
        }
    return timers


def watch_spec(config: Config, name: str, system: bool) -> WatchSpecJSON:
    model = config.watches[name]
    timer: DeadlineTimerJSON = {}
    if model.deadline is not None:
        zone = model.timezone or config.timezone
        lines = parse_schedule(model.deadline.at).on_calendar
        timer["window"] = _shortest_gap(lines, zone)  # for a calendar the runner cannot read
        timer["calendar"] = _calendar(lines, zone)
    dump = config.model_dump(mode="json", by_alias=True, include={"watches": {name}})
    return {
        **_base(config, "watch", system),
        "watch_name": name,
        "unit": service(watch_unit(config.name, name)),
        "watch": dump["watches"][name],
        **timer,
    }


@functools.lru_cache(maxsize=4096)
def _time_of_day_gap(lines: tuple[str, ...]) -> int | Literal[False] | None:
    """The shortest time between two firing times of day (the grace only cares whether it is
    under a few minutes), read in-process: asking systemd costs a process per job, which a
    compile of a thousand jobs cannot afford. None: at most one time a day; False: a calendar
    this reader does not know. Once per schedule: jobs share schedules (every 15 minutes)."""
    from runner.calendar import CalendarError, Expression

    try:
        times = sorted(
            {t.hour * 3600 + t.minute * 60 + t.second
             for line in lines for t in Expression(line).times_descending()}
        )  # fmt: skip
    except CalendarError:
        return False
    if len(times) < 2:
        return None
    return min(b - a for a, b in pairwise([*times, times[0] + 86400]))


def _shortest_gap(lines: tuple[str, ...], zone: str) -> int | None:
    """The shortest time between two firings: evidence counts from the previous deadline."""
    firings = next_elapses(lines, zone, 50, base=CHAIN_BASE) if lines else []
    gaps = [(b - a).total_seconds() for a, b in pairwise(firings)]
    return int(min(gaps)) if gaps else None


class TokensJSON(TypedDict):
    input: int
    output: int


class InventoryJobJSON(TypedDict):
    name: str
    schedule: list[str]
    """The expressions as written (a cost estimate counts cron firings exactly)."""
    timezone: str
    """The job's own, else the config's."""
    expected_tokens: TokensJSON | None


class InventoryJSON(TypedDict):
    """The manifest's `inventory`: what vigil's inspecting commands (status, cost...) read of an
    installed config besides its specs, so that they never parse its YAML: its jobs and
    watches in the config's order (specs are keyed by name) and a cost estimate's inputs."""

    jobs: list[InventoryJobJSON]
    watches: list[str]


def inventory(config: Config) -> InventoryJSON:
    return {
        "jobs": [
            {
                "name": name,
                "schedule": list(job.schedule),
                "timezone": job.timezone or config.timezone,
                "expected_tokens": (
                    {"input": job.expected_tokens.input, "output": job.expected_tokens.output}
                    if job.expected_tokens
                    else None
                ),
            }
            for name, job in config.jobs.items()
        ],
        "watches": list(config.watches),
    }


def failure_spec(config: Config, system: bool) -> FailureSpecJSON:
    pause_after: dict[str, PauseJSON] = {}
    for name, job in config.jobs.items():
        count = job.pause_after or config.release.pause_after
        if count is not None:
            # A paused job's preflight would warn about runs that will not happen.
            stems = [job_unit(config.name, name)]
            stems += [preflight_unit(config.name, name)] if job.preflight is not None else []
            pause_after[name] = {"after": count, "timers": [timer(stem) for stem in stems]}
    return {
        **_base(config, "failure", system),
        "journal_lines": 20,
        "auto_rollback": config.release.auto_rollback,
        "pause_after": pause_after,
        "notify_recovered": [name for name in config.jobs if notify_recovered(config, name)],
    }

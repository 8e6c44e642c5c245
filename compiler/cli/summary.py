"""What `vigil validate` prints for a valid config: each job with its next runs in plain words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from compiler.language.model import Config, Watch
from compiler.language.model.types import format_duration
from compiler.language.schedule import (
    CalendarCheckUnavailable,
    describe,
    next_elapses,
    parse_schedule,
)

NAME_WIDTH = 24


def summarize(config: Config, filename: str, *, next_runs: int = 2) -> str:
    counts = [
        _count(len(config.jobs), "job"),
        _count(len(config.watches), "watch"),
        _count(len(config.nag), "nag rule"),
        _count(len(config.channels), "channel"),
    ]
    lines = [f"{filename}: valid: {config.name!r} ({config.timezone}): {', '.join(counts)}"]
    sections = [
        ("jobs", list(_jobs(config, next_runs))),
        ("watches", [_row(name, _watch(watch)) for name, watch in config.watches.items()]),
        ("nag rules", [_row(name, line) for name, line in _nag_rules(config)]),
        ("channels", [_row(name, _channel(config, name)) for name in config.channels]),
        ("coordinator", ["  " + _coordinator(config)]),
    ]
    for title, rows in sections:
        if rows:
            lines += ["", title, *rows]
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    plural = "watches" if noun == "watch" else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _row(name: str, text: str) -> str:
    return f"  {name:<{NAME_WIDTH}} {text}"


def _jobs(config: Config, next_runs: int) -> Iterator[str]:
    for name, job in config.jobs.items():
        zone = job.timezone or config.timezone
        timings = [parse_schedule(expression) for expression in job.schedule]
        words = "; ".join(describe(timing) for timing in timings)
        if job.timezone:
            words += f" ({zone})"
        flags = [flag for flag, on in (("disabled", not job.enabled), ("LLM", job.prompt)) if on]
        if job.after:
            flags.append(f"after {job.after}")
        yield _row(name, words + (f"  [{', '.join(flags)}]" if flags else ""))
        calendar = [line for timing in timings for line in timing.on_calendar]
        if calendar and next_runs:
            yield _row("", "next: " + _next(calendar, zone, next_runs))


def _next(calendar: list[str], zone: str, count: int) -> str:
    try:
        times = next_elapses(calendar, zone, count)
    except CalendarCheckUnavailable:
        return "(systemd-analyze not available)"
    return ", ".join(_when(t) for t in times) if times else "never"


def _when(moment: datetime) -> str:
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")


def _watch(watch: Watch) -> str:
    if watch.deadline:
        target = watch.deadline
        what = (
            f"job {target.job} succeeds"
            if target.job
            else f"a finding from {target.source} arrives"
            if target.source
            else f"{target.file} changes"
        )
        return f"deadline: {what} by {describe(parse_schedule(target.at))}"
    if watch.match:
        count = len(watch.match.all) + len(watch.match.any)
        return f"match: findings from {watch.match.source} ({count} condition{'s' * (count > 1)})"
    if watch.file:
        armed = watch.file.armed_by
        how = (
            "armed by `vigil watch arm`"
            if armed is None
            else f"armed by findings from {armed.source}"
            if armed.source
            else f"armed {describe(parse_schedule(armed.schedule or ''))}"
        )
        return f"file: {watch.file.path} within {format_duration(watch.file.within)}, {how}"
    assert watch.absence is not None
    silence = format_duration(watch.absence.for_)
    return f"absence: no finding from {watch.absence.source} for {silence}"


def _nag_rules(config: Config) -> Iterator[tuple[str, str]]:
    for name, rule in config.nag.items():
        if rule.ladder is not None:
            text = f"{len(rule.ladder)}-step ladder"
            if rule.stop_after:
                text += f", stop after {rule.stop_after}"
        else:
            text = f"at most once per {format_duration(rule.once_per or 0)} per item"
        if rule.min_interval:
            text += f", at most every {format_duration(rule.min_interval)}"
        yield name, f"{rule.source}: {text}"


def _channel(config: Config, name: str) -> str:
    channel = config.channels[name]
    if channel.apprise_secret:
        return f"apprise (URL from secret {channel.apprise_secret})"
    if channel.apprise:
        scheme = channel.apprise.split("://", 1)[0]
        return f"apprise ({scheme}://…)"
    if channel.command:
        return "command: " + " ".join(channel.command)
    return f"file: {channel.file}"


def _coordinator(config: Config) -> str:
    coordinator = config.coordinator
    parts = [
        f"delivers to {', '.join(coordinator.deliver_to)}",
        f"heartbeat every {format_duration(coordinator.heartbeat)}",
    ]
    caps = [f"{source} {p.cap}" for source, p in coordinator.sources.items() if p.cap is not None]
    if coordinator.total_cap:
        caps.insert(0, f"{coordinator.total_cap} in total")
    if caps:
        parts.append("caps: " + ", ".join(caps))
    if coordinator.quiet_hours:
        quiet = coordinator.quiet_hours
        parts.append(f"quiet {quiet.start}-{quiet.end} {quiet.timezone or config.timezone}")
    return "; ".join(parts)

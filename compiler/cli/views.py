"""What the CLI shows: plans and what apply did, a valid config in plain words, tables.

A plan is a fixed label per file and progress on stderr, unified diffs on stdout; tables and
JSON go to stdout, what a command did to stderr.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from compiler.language.model import Config, Watch
from compiler.language.model.gating import Inhibit, Maintenance, Matcher
from compiler.language.model.types import format_duration
from compiler.language.schedule import (
    CalendarCheckUnavailable,
    describe,
    first_elapses,
    next_elapses,
    parse_schedule,
)

if TYPE_CHECKING:  # the inspection commands never load the renderer and jinja2
    from compiler.generate.render import Tree
    from compiler.install.apply import ApplyOutcome
    from compiler.install.plan import Change, Plan
    from compiler.operate.doctor import Check

# --- plans, and what apply, compile and history show ----------------------------------------------

LABEL_WIDTH = 9
COLOURS = {"create": "32", "update": "33", "delete": "31", "+": "32", "-": "31", "@": "36"}


def _paint(text: str, key: str, colour: bool) -> str:
    return f"\x1b[{COLOURS[key]}m{text}\x1b[0m" if colour and key in COLOURS else text


def show_plan(
    plan: Plan,
    new: Tree | None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    verbose: bool = False,
) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    installed = f"generation {plan.current}" if plan.current is not None else "nothing installed"
    print(f"{plan.name}: {installed}", file=err)
    _show_changes(plan, out, err, verbose)
    _show_drift_and_conflicts(plan, err)
    if new is not None:
        _next_runs(new, err)
    _show_plan_summary(plan, err)


def _show_changes(plan: Plan, out: TextIO, err: TextIO, verbose: bool) -> None:
    """A label per file on `err` (unchanged ones only counted unless verbose), diffs on `out`."""
    colour_out, colour_err = out.isatty(), err.isatty()
    for change in plan.changes:
        if change.action == "unchanged" and not verbose:
            continue
        label = _paint(f"{change.action:<{LABEL_WIDTH}}", change.action, colour_err)
        print(f"  {label} {change.path}", file=err)
        if change.action == "update":
            _diff(change, out, colour_out)
    unchanged = plan.count("unchanged")
    if unchanged and not verbose:
        print(f"  {'unchanged':<{LABEL_WIDTH}} {unchanged} files", file=err)


def _show_drift_and_conflicts(plan: Plan, err: TextIO) -> None:
    for path in plan.drift:
        print(
            f"drift: {path} was changed by hand since it was installed; apply replaces it", file=err
        )
    for unit in plan.disabled:
        print(
            f"drift: {unit} was disabled by hand; apply enables it again "
            "(set `enabled: false` in the config to keep it off)",
            file=err,
        )
    for path in plan.foreign:
        print(f"conflict: {path} exists but vigil did not write it; apply refuses", file=err)
    for pause in plan.paused:
        print(f"{pause.job}: stays paused ({pause.words()}); `{pause.resume}` resumes", file=err)


def _show_plan_summary(plan: Plan, err: TextIO) -> None:
    counts = plan.summary()
    if plan.has_changes:
        words = ", ".join(f"{n} to {action}" for action, n in counts.items())
        if plan.disabled:
            words += f", {len(plan.disabled)} to enable again"
        print(f"Plan: {words}.", file=err)
    else:
        print("No changes.", file=err)


def _diff(change: Change, out: TextIO, colour: bool) -> None:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = (change.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, f"installed/{change.path}", f"new/{change.path}")
    for line in lines:
        text = line if line.endswith("\n") else line + "\n"
        out.write(_paint(text, line[:1], colour) if not line.startswith(("---", "+++")) else text)


def timer_calendars(tree: Tree) -> dict[str, tuple[list[str], str]]:
    """timer unit -> (OnCalendar expressions, timezone) read back from the rendered units."""
    timers = {}
    for path, generated in sorted(tree.items()):
        if not (path.startswith("units/") and path.endswith(".timer")):
            continue
        lines = [
            line.removeprefix("OnCalendar=")
            for line in generated.content.decode().splitlines()
            if line.startswith("OnCalendar=")
        ]
        if lines:
            zone = lines[0].rsplit(" ", 1)[1]
            timers[path.removeprefix("units/")] = ([x.rsplit(" ", 1)[0] for x in lines], zone)
    return timers


def next_runs(tree: Tree) -> dict[str, datetime | None]:
    timers = timer_calendars(tree)
    return dict(zip(timers, first_elapses(list(timers.values())), strict=True))


def _next_runs(tree: Tree, err: TextIO) -> None:
    try:
        runs = next_runs(tree)
    except CalendarCheckUnavailable as exc:
        print(f"next runs: unavailable ({exc})", file=err)
        return
    if runs:
        print("next runs:", file=err)
        width = max(len(unit) for unit in runs)
        for unit, moment in runs.items():
            when = _when(moment) if moment else "never"
            print(f"  {unit:<{width}}  {when}", file=err)


def show_applied(name: str, outcome: ApplyOutcome) -> None:
    where = f"generation {outcome.generation}" if outcome.generation else "removed"
    print(f"{name}: {where}", file=sys.stderr)
    for verb, units in (
        ("started", outcome.started),
        ("restarted", outcome.restarted),
        ("stopped", outcome.stopped),
    ):
        if units:
            print(f"  {verb}: {', '.join(units)}", file=sys.stderr)


def show_written(config: str, out: str, total: int, written: int, removed: list[str]) -> None:
    """What `vigil compile` wrote into `out`, of a tree of `total` files."""
    unchanged = total - written
    print(
        f"{config}: wrote {written} files to {out}"
        + (f" ({unchanged} unchanged)" if unchanged else ""),
        file=sys.stderr,
    )
    for relative in removed:
        print(f"  removed {relative}", file=sys.stderr)


# --- a valid config (`vigil validate`) ------------------------------------------------------------

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
        ("replies", [_row(name, _reply(config, name)) for name in config.replies]),
        ("inhibit", [_row(name, _inhibit(rule)) for name, rule in config.inhibit.items()]),
        ("maintenance", [_row(name, _window(w)) for name, w in config.maintenance.items()]),
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


def _reply(config: Config, name: str) -> str:
    source = config.replies[name]
    if source.telegram:
        heard = f"telegram chats {', '.join(map(str, source.telegram.chats))}"
    elif source.signal:
        heard = f"signal from {', '.join(source.signal.numbers)}"
    else:
        heard = "command: " + " ".join(source.command or [])
    answers = ", ".join(source.answer_to or config.coordinator.deliver_to)
    return f"{heard}; answers to {answers}"


def _matched(matcher: Matcher) -> str:
    from runner.talk.matchers import describe as described

    return described(matcher.model_dump(exclude_none=True))


def _inhibit(rule: Inhibit) -> str:
    verb = "drop" if rule.drop else "hold"
    return f"while {_matched(rule.while_)}: {verb} {_matched(rule.hold)}"


def _window(window: Maintenance) -> str:
    days = f" {','.join(window.days)}" if window.days else ""
    verb = "drop" if window.drop else "hold"
    return f"{window.start}-{window.end}{days}: {verb} {_matched(window.match)}"


def _coordinator(config: Config) -> str:
    coordinator = config.coordinator
    parts = [
        f"delivers to {', '.join(coordinator.deliver_to)}",
        f"heartbeat every {format_duration(coordinator.heartbeat)}",
    ]
    if coordinator.linger:
        parts.append(f"stays {format_duration(coordinator.linger)} after a finding")
    caps = [f"{source} {p.cap}" for source, p in coordinator.sources.items() if p.cap is not None]
    if coordinator.total_cap:
        caps.insert(0, f"{coordinator.total_cap} in total")
    if caps:
        parts.append("caps: " + ", ".join(caps))
    if coordinator.quiet_hours:
        quiet = coordinator.quiet_hours
        parts.append(f"quiet {quiet.start}-{quiet.end} {quiet.timezone or config.timezone}")
    if coordinator.notify_recovered:
        parts.append("says when a failing job recovers")
    return "; ".join(parts)


# --- tables ---------------------------------------------------------------------------------------


def show_checks(checks: list[Check], as_json: bool) -> None:
    """`vigil doctor`: a line per check, and the fix under each that is not ok."""
    from compiler.operate.doctor import CheckResult

    if as_json:
        print(json.dumps([vars(c) for c in checks], indent=2, default=str))
        return
    for check in checks:
        print(f"{check.status:<5} {check.name:<12} {check.detail}")
        if check.fix and check.status != CheckResult.OK:
            print(f"{'':<5} {'':<12} fix: {check.fix}")

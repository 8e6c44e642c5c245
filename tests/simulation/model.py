"""The reference model: from the generated findings, the config's parameters and the inputs the
world produced (model answers, job outcomes), what the person should have been told and when;
then every invariant checked against the file channel's lines. Independent of the coordinator:
it reads only the sink file, the agent's log and the driver's record of inputs."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from tests.simulation.driver import Observed
from tests.simulation.localtime import Quiet, local_date, month_label
from tests.simulation.scenario import (
    ABSENCE_DAYS,
    FILE_WITHIN_MIN,
    HEARTBEAT_SECONDS,
    LADDER_DAYS,
    ONCE_PER_DAYS,
    TOKENS_PER_CALL,
    World,
    utc,
)

FAMILIES = (
    "delivery", "quiet_hours", "nag_named", "periods", "budget", "own_alerts", "watches",
    "resilience",
)  # fmt: skip
SLACK = timedelta(seconds=2 * HEARTBEAT_SECONDS + 600)
"""Latest delivery after an alert may go out: the next heartbeat, and one more after a crash."""
NEVER_NAMED_DAYS = 10
NAG_LINE = re.compile(r"(rem-\d+) nag (\d+) rung (\d) \((-?\d+)d\)")
STALE_LINE = re.compile(r"(proj-\d+) stale mention")
MORE = re.compile(r"^\+(\d+) more$")
REF = re.compile(r" \[r\d+\]$")
"""The reference code an item's line may end in (`• ... [r7]`): the model judges what the lines
say and when, not which code they carry (tests/test_talk.py and the message tests do), so
it reads each line without it."""


@dataclass
class Expected:
    token: str
    source: str
    born: datetime
    urgent: bool = False
    own: bool = False  # vigil's own alert: never cut


@dataclass
class Report:
    checks: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def check(self, family: str, ok: bool, world: World, at: datetime | None, detail: str) -> None:
        self.checks[family] += 1
        if not ok:
            when = at.astimezone(world.zone).strftime("%Y-%m-%d %H:%M %Z") if at else "-"
            self.violations[family].append(f"[{world.params.zone} {when}] {detail}")


class Sink:
    """The file channel's lines: what the person was told, with when."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.messages = []
        self.dead_letters = []
        for line in lines:
            at = utc(line["delivered"])
            body = line["body"].splitlines()
            if "could not be delivered" in line["title"]:
                self.dead_letters.append((at, line["body"]))
                continue
            more = sum(int(m[1]) for b in body if (m := MORE.match(b.strip())))
            texts = [REF.sub("", b.removeprefix("• ")) for b in body if not MORE.match(b.strip())]
            self.messages.append(
                {
                    "at": at,
                    "texts": texts,
                    "more": more,
                    "sources": line["sources"],
                    "urgent": line["urgent"],
                }
            )

    def find(self, token: str) -> list[tuple[datetime, dict[str, Any]]]:
        return [(m["at"], m) for m in self.messages for t in m["texts"] if _names(t, token)]

    def containing(self, pattern: re.Pattern[str]) -> list[tuple[datetime, re.Match[str]]]:
        return [
            (m["at"], hit) for m in self.messages for t in m["texts"] if (hit := pattern.search(t))
        ]


def _names(text: str, token: str) -> bool:
    """`text` is the alert `token` (token-00012 never matches token-000123)."""
    return text.startswith(token) and not text[len(token) : len(token) + 1].isdigit()


def expected_alerts(world: World, seen: Observed) -> list[Expected]:
    found = []
    for finding in world.findings():
        source = str(finding.body.get("source"))
        if finding.token and source in ("news", "nightly", "ops"):
            found.append(Expected(finding.token, source, finding.at, finding.urgent))
    for call in seen.calls:
        found.append(Expected(call["token"], call["job"], call["at"]))
    blocked = {}
    for at, job, code in seen.jobs:
        if code == 7:
            blocked.setdefault((job, month_label(world.zone, at)), at)
    for (job, month), at in blocked.items():
        token = f"{job}: the sim global budget for {month} is used up"
        found.append(Expected(token, "vigil", at, own=True))
    for event in world.events:
        if event.kind == "hostile":
            found.append(
                Expected(f"rejected inbox file {event.data['name']}", "vigil", event.at, own=True)
            )
    return found


def window(quiet: Quiet, alert: Expected) -> tuple[datetime, datetime, bool]:
    held = not alert.urgent and quiet.holds(alert.born)
    earliest = quiet.ends_after(alert.born) if held else alert.born
    latest = earliest + SLACK
    if not alert.urgent and not held and quiet.holds(latest):
        # Queued just before quiet hours, a message a killed run or a failed attempt left in
        # the outbox waits for their end, like the alerts they hold.
        latest = quiet.ends_after(latest) + SLACK
    return earliest, latest, held


def check(world: World, seen: Observed) -> Report:
    report = Report()
    sink = Sink(seen.lines)
    quiet = Quiet(world.zone, *world.params.quiet)
    _alerts(world, seen, sink, quiet, report)
    _quiet(world, sink, quiet, report)
    _nags(world, sink, report)
    _once_per(world, seen, sink, report)
    _deadlines(world, seen, sink, report)
    _absence(world, seen, sink, quiet, report)
    _watches(world, seen, sink, quiet, report)
    _budget(world, seen, report)
    _resilience(world, seen, sink, report)
    return report


def _alerts(world: World, seen: Observed, sink: Sink, quiet: Quiet, report: Report) -> None:
    """Exactly once, in its window, or cut with a "+N more" that counts it (never an own alert)."""
    spare = {id(m): m["more"] for m in sink.messages}
    missing = []
    for alert in expected_alerts(world, seen):
        earliest, latest, held = window(quiet, alert)
        if latest > world.end:
            continue  # its window outlasts the simulation: nothing to say yet
        hits = sink.find(alert.token)
        family = "own_alerts" if alert.own else "delivery"
        report.check(
            family,
            len(hits) <= 1,
            world,
            alert.born,
            f"{alert.token!r} delivered {len(hits)} times",
        )
        if not hits:
            missing.append((alert, earliest, latest, held))
            continue
        at = hits[0][0]
        where = "quiet_hours" if held and not alert.own else family
        report.check(
            where,
            at >= earliest,
            world,
            alert.born,
            f"{alert.token!r} delivered at {at:%m-%d %H:%M}Z, before {earliest:%m-%d %H:%M}Z",
        )
        report.check(
            where,
            at <= latest,
            world,
            alert.born,
            f"{alert.token!r} delivered {at - earliest} late",
        )
    for alert, earliest, latest, held in missing:
        cut = None
        if not alert.own:
            cut = next(
                (
                    m
                    for m in sink.messages
                    if earliest <= m["at"] <= latest
                    and alert.source in m["sources"]
                    and spare[id(m)] > 0
                ),
                None,
            )
        if cut is not None:
            spare[id(cut)] -= 1
        family = "own_alerts" if alert.own else ("quiet_hours" if held else "delivery")
        why = "never delivered"
        if alert.own and any(m["more"] and earliest <= m["at"] <= latest for m in sink.messages):
            why = "never delivered; a message in its window cut alerts (+N more)"
        if held and not alert.own:
            why = f"held from {alert.born:%m-%d %H:%M}Z by quiet hours, never delivered"
        report.check(family, cut is not None, world, alert.born, f"{alert.token!r} {why}")
    ops = [f for f in world.findings() if f.body.get("source") == "ops"]
    for finding in ops:
        told = any(finding.token in line for line in seen.agent) or any(
            finding.token in body for _, body in sink.dead_letters
        )
        report.check(
            "delivery",
            told,
            world,
            finding.at,
            f"{finding.token!r} neither reached the agent nor was dead-lettered with an alert",
        )


def _quiet(world: World, sink: Sink, quiet: Quiet, report: Report) -> None:
    urgent = {f.token for f in world.findings() if f.urgent}
    for message in sink.messages:
        if not quiet.holds(message["at"]):
            continue
        loud = [t for t in message["texts"] if not any(t.startswith(u) for u in urgent)]
        report.check(
            "quiet_hours",
            not loud,
            world,
            message["at"],
            f"delivered in quiet hours, not urgent: {loud[:3]}",
        )


def _presence(world: World, source: str, items: str, key: str) -> dict[str, list[date]]:
    days: dict[str, list[date]] = defaultdict(list)
    for finding in world.findings():
        if finding.body.get("source") == source:
            for item in finding.body[items]:
                day = local_date(world.zone, finding.at)
                if day not in days[item[key]]:
                    days[item[key]].append(day)
    return days


def _nags(world: World, sink: Sink, report: Report) -> None:
    """Ladders: steps in order, each one a nag the person saw; an item overdue for days is named."""
    told: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for _, hit in sink.containing(NAG_LINE):
        told[hit[1]].append((int(hit[2]), int(hit[3]), int(hit[4])))
    for item, days in _presence(world, "reminders", "overdue", "id").items():
        steps = told.get(item, [])
        report.check(
            "nag_named",
            bool(steps) or len(days) < NEVER_NAMED_DAYS,
            world,
            None,
            f"{item} overdue in findings on {len(days)} days from {days[0]}, never named",
        )
        for n, (count, rung, overdue) in enumerate(steps, 1):
            report.check(
                "nag_named",
                count == n,
                world,
                None,
                f"{item}: nag {count} delivered as the person's nag #{n} "
                f"(steps {[s[0] for s in steps]}): nags {n}..{count - 1} were never named",
            )
            want = max(i for i, _ in enumerate(LADDER_DAYS, 1) if i <= count)
            report.check(
                "periods",
                rung == want and overdue >= LADDER_DAYS[rung - 1],
                world,
                None,
                f"{item}: nag {count} on rung {rung} at {overdue} days overdue",
            )
    for project, days in _presence(world, "stale", "projects", "name").items():
        named = any(hit[1] == project for _, hit in sink.containing(STALE_LINE))
        report.check(
            "nag_named",
            named or len(days) < NEVER_NAMED_DAYS,
            world,
            None,
            f"{project} reported stale on {len(days)} days, never named",
        )


def _once_per(world: World, seen: Observed, sink: Sink, report: Report) -> None:
    """once_per 7d: on the finding's calendar day 7 days later, neither before nor after."""
    mentions: dict[str, list[date]] = defaultdict(list)
    for at, hit in sink.containing(STALE_LINE):
        mentions[hit[1]].append(local_date(world.zone, at))
    capped = {
        local_date(world.zone, m["at"])
        for m in sink.messages
        if m["more"] and "stale" in m["sources"]
    }
    # A stale rule whose state file the world corrupted may start again (set aside, not merged).
    reset = [local_date(world.zone, at) for at, name in seen.corrupted if name == "nag-stale.json"]
    for project, days in _presence(world, "stale", "projects", "name").items():
        said = mentions.get(project, [])
        for first, second in pairwise(said):
            if any(first <= day <= second for day in reset):
                continue
            report.check(
                "periods",
                (second - first).days >= ONCE_PER_DAYS,
                world,
                None,
                f"{project} mentioned {first} and again {second}: early for once_per 7d",
            )
        for previous in said:
            due = next((d for d in days if d >= previous + timedelta(days=ONCE_PER_DAYS)), None)
            if due is None or due in capped:
                continue
            following = [d for d in said if d > previous]
            report.check(
                "periods",
                bool(following) and following[0] <= due,
                world,
                None,
                f"{project} mentioned {previous}, reported again {due}, next mention "
                f"{following[0] if following else 'never'}: late for once_per 7d",
            )


def _deadlines(world: World, seen: Observed, sink: Sink, report: Report) -> None:
    """A deadline is missed when no backup succeeded since the previous deadline (systemd's)."""
    runs = [(at, code) for at, job, code in seen.jobs if job == "backup"]
    told = {m["at"]: t for m in sink.messages for t in m["texts"] if t.startswith("backup missed")}
    said = {t.rsplit(" ", 1)[-1] for t in told.values()}
    previous = world.start
    for event in world.events:
        if event.kind != "deadline":
            continue
        ok = any(previous < at <= event.at and code == 0 for at, code in runs)
        stamp = event.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        report.check(
            "periods",
            ok != (stamp in said),
            world,
            event.at,
            f"backup deadline {stamp}: "
            + (
                "a success since the previous deadline, yet reported missed"
                if ok
                else f"no successful backup since {previous:%m-%d %H:%M}Z, not reported"
            ),
        )
        previous = event.at


def _absence(world: World, seen: Observed, sink: Sink, quiet: Quiet, report: Report) -> None:
    """`for: 2d`: two calendar days in the config's zone after the last finding, not 48 h."""
    pulses = [f.at for f in world.findings() if f.body.get("source") == "pulse"]
    told = [
        m["at"] for m in sink.messages for t in m["texts"] if t.startswith("pulse silent watch")
    ]
    seen_at = [seen.runs[0], *pulses, world.end]
    for last, following in pairwise(seen_at):
        local = last.astimezone(world.zone)
        due = (local.replace(tzinfo=None) + timedelta(days=ABSENCE_DAYS)).replace(tzinfo=world.zone)
        due = due.astimezone(last.tzinfo)
        inside = [t for t in told if last < t <= following]
        if due >= following:
            report.check(
                "periods",
                not inside,
                world,
                last,
                f"pulse silence alert at {inside[:1]} with no 2-day silence",
            )
            continue
        first = quiet.ends_after(due) if quiet.holds(due) else due
        early = [f"{t:%m-%d %H:%M}Z" for t in inside if t < due]
        report.check(
            "periods",
            not early,
            world,
            due,
            f"pulse silence alerted at {early[:1]}, before 2 calendar days ({due:%m-%d %H:%M}Z)",
        )
        if following > first + SLACK:
            report.check(
                "periods",
                any(first <= t <= first + SLACK for t in inside),
                world,
                due,
                f"pulse silent since {last:%m-%d %H:%M}Z: "
                f"no alert within {SLACK} of {first:%m-%d %H:%M}Z",
            )


def _watches(world: World, seen: Observed, sink: Sink, quiet: Quiet, report: Report) -> None:
    _match_watches(world, sink, quiet, report)
    _file_watches(world, seen, sink, quiet, report)


def _match_watches(world: World, sink: Sink, quiet: Quiet, report: Report) -> None:
    """Every urgent mail is named in time, once per message, and not again after its ack."""
    acks = {f.body["key"]: f.at for f in world.findings() if f.body.get("kind") == "ack"}
    for finding in world.findings():
        if finding.body.get("source") == "mail" and finding.token:
            key = finding.body["messages"][0]["id"]
            hits = sink.find(finding.token)
            _, latest, _ = window(quiet, Expected(finding.token, "vigil", finding.at))
            if latest > world.end:
                continue  # its window outlasts the simulation: nothing to say yet
            ack = acks.get(key)
            # Acknowledged before quiet hours let it out: it is not brought up any more.
            acked_first = ack is not None and finding.at <= ack <= latest
            report.check(
                "watches",
                acked_first or any(at <= latest for at, _ in hits),
                world,
                finding.at,
                f"match watch {key}: not named by {latest:%m-%d %H:%M}Z",
            )
            if ack is not None:
                after = [at for at, _ in hits if at > ack + SLACK]
                report.check(
                    "watches",
                    not after,
                    world,
                    ack,
                    f"match watch {key}: repeated after ack "
                    f"(at {', '.join(f'{at:%m-%d %H:%M}Z' for at in after)})",
                )
            for at, message in {id(m): (at, m) for at, m in hits}.values():
                n = sum(1 for t in message["texts"] if t == finding.token)
                report.check(
                    "watches",
                    n == 1,
                    world,
                    at,
                    f"match watch {key}: {n} identical lines in one message",
                )


def _file_watches(world: World, seen: Observed, sink: Sink, quiet: Quiet, report: Report) -> None:
    """Every dispatched task is reported satisfied (its file came in time) or expired."""
    runs = sorted(seen.runs)
    written = {e.data["key"]: e.at for e in world.events if e.kind == "file"}
    for finding in world.findings():
        if finding.body.get("source") != "dispatch":
            continue
        key = finding.body["tasks"][0]["id"]
        deadline = finding.at + timedelta(minutes=FILE_WITHIN_MIN)
        file_at = written.get(key)
        state, decided = None, None
        for run in (r for r in runs if r > finding.at):
            if file_at is not None and file_at <= run:
                state, decided = "satisfied", run
                break
            if run >= deadline:
                state, decided = "expired", run
                break
        told = [t for m in sink.messages for t in m["texts"] if t.startswith(f"research {key}: ")]
        if state is not None and decided is not None:
            _, latest, _ = window(quiet, Expected(key, "vigil", decided))
            if latest > world.end:
                continue  # quiet hours hold the news past the simulation's end
            report.check(
                "watches",
                f"research {key}: {state}" in told,
                world,
                finding.at,
                f"file watch {key}: expected {state}, told {told or 'nothing'}",
            )


def _budget(world: World, seen: Observed, report: Report) -> None:
    spent: Counter[str] = Counter()
    for call in seen.calls:
        spent[month_label(world.zone, call["at"])] += call["tokens"]
    limit = world.params.budget_tokens
    for month, tokens in sorted(spent.items()):
        report.check(
            "budget",
            tokens <= limit + TOKENS_PER_CALL,
            world,
            None,
            f"{month}: {tokens} tokens spent against a budget of {limit} "
            f"(at most one call, {TOKENS_PER_CALL}, over)",
        )


def _next_use(world: World, name: str, after: datetime) -> datetime | None:
    """When a run first needs state file `name` after `after` (None: not within the world)."""
    if not name.startswith("nag-"):
        return after
    source = name.removeprefix("nag-").removesuffix(".json")
    return next(
        (
            event.at
            for event in world.events
            if event.kind == "drop"
            and event.at >= after
            and any(f.body.get("source") == source for f in event.data["findings"])
        ),
        None,
    )


def _resilience(world: World, seen: Observed, sink: Sink, report: Report) -> None:
    report.checks["resilience"] += len(seen.runs)
    for at, detail in seen.errors:
        report.check("resilience", False, world, at, f"coordinator run failed: {detail}")
    for at, name in seen.corrupted:
        # A file is read (and so found bad) when a run needs it: a nag rule's state when its
        # source next reports, the others at every run.
        needed = _next_use(world, name, at)
        if needed is None:
            continue
        until = needed + SLACK
        loud = any(at <= when <= until for when, _ in seen.loud) or any(
            name in t for m in sink.messages if at <= m["at"] <= until for t in m["texts"]
        )
        report.check(
            "resilience", loud, world, at, f"corrupt state/{name} neither refused nor reported"
        )

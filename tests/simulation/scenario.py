"""A generated world: one config (caps, quiet hours, nag ladder, once_per, watches, budget) and a
timeline of what happens in it (findings, job firings, watch deadlines, heartbeats, hostile inbox
files, corrupted state, channel outages), all drawn from one seeded random generator."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.simulation.localtime import clock, wall, wall_any

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
QUICK_WINDOWS = ((date(2027, 2, 20), 46), (date(2027, 9, 25), 47))
"""Both windows together: 93 days per zone, every DST change of the three zones (New York Mar 14
and Nov 7, Berlin Mar 28 and Oct 31, Lord Howe's half-hour changes Apr 4 and Oct 3) and the ends
of February, March, September and October."""
QUICK_ZONES = ZONES[:2]
LONG_START = date(2027, 1, 1)
HEARTBEAT_SECONDS = 7200
TOKENS_PER_CALL = 1200  # the fake Messages API's usage: 1000 in + 200 out
MAX_TOKENS = 256
HISTORY_MAX_BYTES = 48 * 1024
"""runs.jsonl rotation limit set in the compiled specs: a busy month's volume in a few days."""
LADDER_DAYS = (0, 3, 7)
ONCE_PER_DAYS = 7
ABSENCE_DAYS = 2
FILE_WITHIN_MIN = 30
CORRUPTIONS = ("held-without-text", "watch-version-2", "nag-garbage")
HOSTILE = ("bad-json", "binary", "directory", "not-a-finding")
CRASH_POINTS = ("claimed", "queued", "appended", "rules-saved", "held-written")


@dataclass
class Params:
    zone: str
    quiet: tuple[str, str]
    total_cap: int
    reminder_cap: int
    budget_tokens: int
    crash_rate: float


@dataclass
class Finding:
    """One finding as a writer drops it, with what the model needs to know of it."""

    at: datetime
    body: dict[str, Any]
    token: str = ""  # the text that names it in a delivered line ("" for rule-handled findings)
    urgent: bool = False
    priority: int = 0


@dataclass
class Event:
    at: datetime
    kind: str  # drop, job, catchup, deadline, beat, hostile, corrupt, agent, file
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    seed: int
    params: Params
    start: datetime
    end: datetime
    days: int
    events: list[Event]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.params.zone)

    def findings(self) -> list[Finding]:
        return [f for e in self.events if e.kind == "drop" for f in e.data["findings"]]


def draw_params(rng: random.Random, zone: str) -> Params:
    return Params(
        zone=zone,
        quiet=rng.choice((("22:00", "07:00"), ("23:30", "06:30"), ("21:00", "08:00"))),
        total_cap=rng.choice((5, 6)),
        reminder_cap=rng.choice((2, 3)),
        budget_tokens=rng.choice((12000, 15000)),
        crash_rate=0.02,
    )


def config_text(params: Params, root: Path, api_url: str) -> str:
    """The vigil.yaml of this world (compiled by the real compiler)."""
    ladder = "\n".join(
        f'      - {{min_count: {n}, min_days: {d}, message: "{{key}} nag {{count}} rung {n} '
        f'({{days}}d) {{title}}"}}'
        for n, d in enumerate(LADDER_DAYS, 1)
    )
    external = "\n    ".join(
        f"{s}: {{external: true}}" for s in ("news", "nightly", "mail", "pulse", "dispatch")
    )
    return f"""\
name: sim
timezone: {params.zone}
state_dir: {root}/state
secrets: {{anthropic: {root}/credentials/anthropic}}
llm:
  {{model: claude-haiku-4-5, api_key: anthropic, max_tokens: {MAX_TOKENS}, base_url: "{api_url}"}}
budget: {{monthly_tokens: {params.budget_tokens}}}
jobs:
  backup: {{schedule: "30 2 * * *", run: "test ! -e {root}/backup-fails"}}
  triage: {{schedule: "0 9 * * 1,3,5", run: "echo found", prompt: "Triage this."}}
  triage-b: {{schedule: "0 9 * * 1", run: "echo found", prompt: "Triage this too."}}
  triage-c: {{schedule: "0 9 * * 1", run: "echo found", prompt: "And this."}}
nag:
  reminders:
    source: reminders
    items: overdue
    key: id
    days_field: days_overdue
    min_interval: 20h
    stop_after: 3
    priority: 10
    ladder:
{ladder}
  stale:
    source: stale
    items: projects
    key: name
    once_per: {ONCE_PER_DAYS}d
    message: "{{name}} stale mention"
    priority: 5
watches:
  backup-done:
    deadline: {{at: "0 3 * * *", job: backup}}
    message: "backup missed, deadline {{deadline}}"
  urgent-mail:
    match:
      source: mail
      items: messages
      key: id
      any: [{{field: subject, regex: "(?i)urgent"}}]
    message: "mail watch {{key}} alert"
    repeat: 3h
  pulse-gone:
    absence: {{source: pulse, for: {ABSENCE_DAYS}d}}
    message: "pulse silent watch"
  research:
    file:
      path: "{root}/research/{{key}}.md"
      within: {FILE_WITHIN_MIN}m
      armed_by: {{source: dispatch, items: tasks, key: id}}
    message: "research {{key}}: {{state}}"
channels:
  sink: {{file: {root}/sink.jsonl}}
  agent: {{command: [sh, {root}/agent.sh, "{{id}}", "{{message}}"]}}
coordinator:
  heartbeat: 2h
  deliver_to: [sink]
  total_cap: {params.total_cap}
  quiet_hours: {{start: "{params.quiet[0]}", end: "{params.quiet[1]}"}}
  delivery: {{attempts: 3, backoff: 10m, max_backoff: 1h, fallback: sink}}
  sources:
    reminders: {{external: true, cap: {params.reminder_cap}, priority: 10}}
    stale: {{external: true, cap: 3, priority: 5}}
    ops: {{external: true, to: [sink, agent]}}
    {external}
"""


class Writer:
    """Draws the timeline day by day."""

    def __init__(self, rng: random.Random, params: Params, catchups: set[date]) -> None:
        self.rng = rng
        self.params = params
        self.zone = ZoneInfo(params.zone)
        self.catchups = catchups
        self.events: list[Event] = []
        self.serial = 0
        self.reminders: list[dict[str, Any]] = []
        self.projects: list[dict[str, Any]] = []
        self.silent_until: date | None = None

    def token(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:05d}"

    def at(self, day: date, hhmm: str, jitter: int = 0) -> datetime:
        return wall_any(self.zone, day, clock(hhmm)) + timedelta(
            seconds=self.rng.randint(0, jitter)
        )

    def anytime(self, day: date, first: int = 0, last: int = 24) -> datetime:
        minute = self.rng.randrange(first * 60, last * 60)
        return wall_any(self.zone, day, time(minute // 60, minute % 60, self.rng.randrange(60)))

    def drop(self, moment: datetime, *findings: Finding) -> None:
        self.events.append(Event(moment, "drop", {"findings": list(findings)}))

    def day(self, day: date, index: int) -> None:
        self.jobs(day)
        self.nag_sources(day)
        self.as_is(day)
        self.watched(day)
        self.trouble(day, index)

    def jobs(self, day: date) -> None:
        backup = wall(self.zone, day, time(2, 30))  # systemd skips a wall time that is not there
        if backup is not None:
            fails = self.rng.random() < 0.15
            self.events.append(Event(backup, "job", {"job": "backup", "fails": fails}))
        deadline = wall(self.zone, day, time(3, 0))
        if deadline is not None:
            self.events.append(Event(deadline, "deadline", {"watch": "backup-done"}))
        nine = wall(self.zone, day, time(9, 0))
        assert nine is not None
        weekday = day.weekday()
        prompts = (["triage"] if weekday in (0, 2, 4) else []) + (
            ["triage-b", "triage-c"] if weekday == 0 else []
        )
        if day in self.catchups:  # the machine was off at 09:00: Persistent= starts all at once
            self.events.append(Event(nine + timedelta(hours=3), "catchup", {"jobs": prompts}))
        else:
            for n, job in enumerate(prompts):
                self.events.append(Event(nine + timedelta(seconds=n), "job", {"job": job}))

    def nag_sources(self, day: date) -> None:
        rng = self.rng
        self.reminders = [r for r in self.reminders if r["until"] >= day]
        for _ in range(3 if rng.random() < 0.08 else int(rng.random() < 0.5)):
            key = self.token("rem-")
            due = day - timedelta(days=rng.randint(0, 2))
            until = day + timedelta(days=rng.randint(3, 25))
            self.reminders.append({"id": key, "title": f"task {key}", "due": due, "until": until})
        for hhmm in ("09:00", "18:00"):
            overdue = [
                {"id": r["id"], "title": r["title"], "days_overdue": (day - r["due"]).days}
                for r in self.reminders
            ]
            body = {"source": "reminders", "overdue": overdue}
            self.drop(self.at(day, hhmm, 90), Finding(self.at(day, hhmm), body))
        self.projects = [p for p in self.projects if p["until"] >= day]
        while len(self.projects) < rng.choice((1, 2, 3)):
            name = self.token("proj-")
            self.projects.append({"name": name, "until": day + timedelta(days=rng.randint(9, 40))})
        projects = [{"name": p["name"], "days_stale": 20} for p in self.projects]
        moment = self.at(day, "10:00", 120)
        self.drop(moment, Finding(moment, {"source": "stale", "projects": projects}))

    def news(self, moment: datetime, priority: int | None = None) -> Finding:
        token = self.token("news-")
        urgent = self.rng.random() < 0.1
        if priority is None:
            priority = self.rng.choice((0, 0, 0, 3, 101) if self.rng.random() < 0.5 else (0, 1))
        body = {"source": "news", "message": f"news {token}", "priority": priority}
        if urgent:
            body["urgent"] = True
        return Finding(moment, body, f"news {token}", urgent, priority)

    def as_is(self, day: date) -> None:
        rng = self.rng
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            moment = self.anytime(day)
            self.drop(moment, self.news(moment))
        token = self.token("nightly-")  # the same `id` every night, as a real report has
        moment = self.at(day, "23:50", 60)
        body = {"source": "nightly", "id": "nightly-report", "message": f"nightly {token}"}
        self.drop(moment, Finding(moment, body, f"nightly {token}"))
        if rng.random() < 0.3:
            moment = self.anytime(day, 8, 20)
            token = self.token("ops-")
            body = {"source": "ops", "message": f"ops {token}"}
            self.drop(moment, Finding(moment, body, f"ops {token}"))

    def watched(self, day: date) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            moment = self.anytime(day)
            key = self.token("mail-")
            urgent = rng.random() < 0.6
            subject = f"URGENT {key}" if urgent else f"hello {key}"
            body = {"source": "mail", "messages": [{"id": key, "subject": subject}]}
            self.drop(moment, Finding(moment, body, data_key(key, urgent)))
            if urgent and rng.random() < 0.8:
                ack = moment + timedelta(minutes=rng.randint(60, 30 * 60))
                control = {"source": "vigil", "kind": "ack", "watch": "urgent-mail", "key": key}
                self.drop(ack, Finding(ack, control))
        if self.silent_until is None or day > self.silent_until:
            if rng.random() < 0.05:
                self.silent_until = day + timedelta(days=rng.randint(2, 4))
            else:
                moment = self.at(day, "12:00", 60)
                self.drop(moment, Finding(moment, {"source": "pulse", "message": "pulse"}))
        if rng.random() < 0.25:
            moment = self.anytime(day, 8, 20)
            key = self.token("notes[draft]-" if rng.random() < 0.25 else "task-")
            body = {"source": "dispatch", "tasks": [{"id": key}]}
            self.drop(moment, Finding(moment, body))
            if rng.random() < 0.8:
                late = moment + timedelta(minutes=rng.randint(5, 45), seconds=rng.randrange(60))
                self.events.append(Event(late, "file", {"key": key}))

    def trouble(self, day: date, index: int) -> None:
        rng = self.rng
        if rng.random() < 0.05:
            moment = self.anytime(day)
            kind = rng.choice(HOSTILE)
            burst = (
                [self.news(moment, priority=101) for _ in range(self.params.total_cap + 1)]
                if rng.random() < 0.5
                else []
            )
            self.events.append(Event(moment, "hostile", {"kind": kind, "name": self.token("bad-")}))
            if burst:
                self.drop(moment, *burst)
        if rng.random() < 0.08:
            moment = self.anytime(day)
            self.events.append(Event(moment, "agent", {"down": True}))
            back = moment + timedelta(minutes=rng.randint(10, 300))
            self.events.append(Event(back, "agent", {"down": False}))
        if index == 9:
            moment = self.anytime(day, 13, 17)
            kind = CORRUPTIONS[rng.randrange(len(CORRUPTIONS))]
            self.events.append(Event(moment, "corrupt", {"kind": kind}))


def data_key(key: str, urgent: bool) -> str:
    """The token of a mail finding: its watch key when it should fire, else nothing."""
    return f"mail watch {key} alert" if urgent else ""


def world(seed: int, zone: str, start: date, days: int, catchup: bool) -> World:
    rng = random.Random(f"{seed}:{zone}:{start.isoformat()}")
    params = draw_params(rng, zone)
    mondays = [start + timedelta(days=n) for n in range(2, days - 1)]
    mondays = [d for d in mondays if d.weekday() == 0]
    catchups = set(rng.sample(mondays, max(1, len(mondays) // 60))) if catchup else set()
    writer = Writer(rng, params, catchups)
    for index in range(days):
        writer.day(start + timedelta(days=index), index)
    zone_info = ZoneInfo(zone)
    begin = wall_any(zone_info, start, time(0, 0))
    end = wall_any(zone_info, start + timedelta(days=days), time(0, 0))
    writer.events.append(Event(begin, "beat"))  # the driver adds the heartbeat (OnUnitActiveSec)
    if params.crash_rate:
        for event in writer.events:
            if rng.random() < params.crash_rate:
                event.data["crash"] = rng.choice(CRASH_POINTS)
    events = sorted((e for e in writer.events if begin <= e.at < end), key=lambda e: e.at)
    return World(seed, params, begin, end, days, events)


def worlds(seed: int, long: bool, long_days: int) -> list[World]:
    found = []
    for n, zone in enumerate(ZONES):
        if long:
            found.append(world(seed, zone, LONG_START, long_days, catchup=True))
            continue
        for w, (start, days) in enumerate(QUICK_WINDOWS):
            if (
                zone in QUICK_ZONES or w == 1
            ):  # Lord Howe: its spring forward and both others' fall back
                found.append(world(seed, zone, start, days, catchup=(n, w) == (0, 0)))
    return found


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)

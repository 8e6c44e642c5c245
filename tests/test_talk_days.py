"""Answering back over months: the real coordinator on a simulated clock through 263 days in New
York (both clock changes, nine month ends), a detector reporting chores three times a day, quiet
hours at night, and a person who answers some lines with `done`, `snooze` (for hours, a day,
until tomorrow 9:00 or Monday 8:00), `stop`, `mute chores 3h` and `status`, with the code the
message showed. A small model says what the person should have been told at every pass: each
due chore once a calendar day with its code, nothing while acknowledged, stopped, snoozed or
muted, a snoozed chore said again at the first pass at or after the wall time meant (or when
quiet hours end), one answer per reply. Codes: an item keeps its code while it is open, two open
items never share one, a closed code is not given to another item for a week."""

from __future__ import annotations

import heapq
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

ZONE = ZoneInfo("America/New_York")
START, DAYS = date(2026, 2, 20), 263
REPORT_HOURS = (9, 14, 18)
HEARTBEAT = timedelta(hours=2)
QUIET = (time(22, 0), time(7, 0))
CHORES = ("laundry", "dishes", "plants", "bills", "trash", "mail")
SNOOZES = ("2h", "45m", "1d", "tomorrow 9:00", "tomorrow", "mon 8:00")


@dataclass
class Chore:
    present: bool = False
    told_day: date | None = None  # local day of its last nag (once a calendar day)
    acked: bool = False  # `done`: quiet until it goes away and comes back
    stopped: bool = False  # `stop`: never again
    snoozed: datetime | None = None
    raised_in_snooze: bool = False  # a new day's nag was held by the snooze
    code: str | None = None


@dataclass
class World:
    chores: dict[str, Chore] = field(default_factory=lambda: {c: Chore() for c in CHORES})
    muted_until: datetime | None = None
    closed: dict[str, datetime] = field(default_factory=dict)  # code -> when it closed
    replies: int = 0
    problems: list[str] = field(default_factory=list)
    told: int = 0
    snoozes_said: int = 0

    def expect(self, ok: bool, at: datetime, what: str) -> None:
        if not ok:
            self.problems.append(f"{at.astimezone(ZONE):%a %Y-%m-%d %H:%M %Z}: {what}")


def spec_of(state: Path) -> dict[str, Any]:
    spec = bruba_spec(state)
    spec["nag"] = {
        "chores": {
            "source": "chores", "items": "open", "key": "id", "days_field": None, "ladder": None,
            "message": "{id} is due", "min_interval": 0, "min_interval_calendar": False,
            "once_per": 86400, "once_per_calendar": True, "priority": 0,
            "resolve_missing": True, "retention": 2592000, "stop_after": None,
        }
    }  # fmt: skip
    spec["watches"] = {}
    spec["coordinator"]["sources"] = {}
    spec["coordinator"]["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": None}
    return spec


def quiet(at: datetime) -> bool:
    clock = at.astimezone(ZONE).time()
    return clock >= QUIET[0] or clock < QUIET[1]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


def snooze_end(text: str, at: datetime) -> datetime:
    """The model's own reading of a snooze (not runner.talk.when's)."""
    here = at.astimezone(ZONE)
    if text.endswith("m"):
        return at + timedelta(minutes=int(text[:-1]))
    if text.endswith("h"):
        return at + timedelta(hours=int(text[:-1]))
    if text == "1d":
        return datetime.combine(here.date() + timedelta(days=1), here.time(), ZONE).astimezone(UTC)
    if text == "mon 8:00":
        ahead = (0 - here.weekday() - 1) % 7 + 1
        return local(here.date() + timedelta(days=ahead), 8)
    return local(here.date() + timedelta(days=1), 9)  # tomorrow (9:00)


LINE = re.compile(r"• (\(snoozed\) )?(\w+) is due \[(r\d+)\]")


def test_months_of_answers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spec = spec_of(state)
    rng = random.Random(1907)
    world = World()
    moments: list[tuple[datetime, str, str]] = []
    first = local(START, 0)
    for n in range(DAYS * 12):
        heapq.heappush(moments, (first + n * HEARTBEAT, "heartbeat", ""))
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        for hour in REPORT_HOURS:
            heapq.heappush(moments, (local(day, hour), "report", ""))
        if rng.random() < 0.08:  # now and then the person mutes the chores for a while
            heapq.heappush(moments, (local(day, rng.choice(REPORT_HOURS)) - MINUTES_10, "reply",
                                     "mute chores 3h"))  # fmt: skip
    seen = 0
    while moments:
        at, kind, text = heapq.heappop(moments)
        if kind == "report":
            _report(world, rng, at, state)
        answer = _reply(world, at, text, state) if kind == "reply" else None
        heartbeat(spec, at)
        lines = [line for m in delivered(state)[seen:] for line in m["body"].splitlines()]
        seen = len(delivered(state))
        told = _check_pass(world, at, kind, lines, answer)
        for code in told.values():  # the person answers some of what they read
            reply = _person(rng, code)
            if reply:
                heapq.heappush(moments, (at + MINUTES_20, "reply", reply))
    assert not world.problems, "\n".join(world.problems[:20]) + f"\n({len(world.problems)})"
    assert world.told > 300 and world.snoozes_said > 40 and world.replies > 100, (
        world.told, world.snoozes_said, world.replies,
    )  # fmt: skip


def _check_pass(
    world: World, at: datetime, kind: str, lines: list[str], answer: str | None
) -> dict[str, str]:
    """Compare what a pass said with the model: its lines (name -> code) and its answer."""
    told = {}
    answers = []
    for line in lines:
        found = LINE.fullmatch(line)
        if found:
            told[f"{found.group(1) or ''}{found.group(2)}"] = found.group(3)
        else:
            answers.append(line)
    expected = _expected(world, at, kind)
    world.expect(set(told) == expected, at, f"told {sorted(told)}, expected {sorted(expected)}")
    world.expect(
        [answer] == [a[: len(answer)] for a in answers] if answer else answers == [],
        at,
        f"answers {answers}, expected one starting {answer!r}",
    )
    _check_codes(world, at, told)
    return told


def _person(rng: random.Random, code: str) -> str | None:
    choice = rng.random()
    if choice < 0.10:
        return f"done {code}"
    if choice < 0.22:
        return f"snooze {code} {rng.choice(SNOOZES)}"
    if choice < 0.23:
        return f"stop {code}"
    return None


MINUTES_10, MINUTES_20 = timedelta(minutes=10), timedelta(minutes=20)


def _report(world: World, rng: random.Random, at: datetime, state: Path) -> None:
    if at.astimezone(ZONE).hour == REPORT_HOURS[0]:  # chores come and go once a day
        for chore in world.chores.values():
            chore.present = rng.random() < (0.85 if chore.present else 0.35)
    open_now = [name for name, chore in world.chores.items() if chore.present]
    drop(state, {"source": "chores", "timestamp": at.isoformat(),
                 "open": [{"id": name} for name in open_now]})  # fmt: skip


def _reply(world: World, at: datetime, text: str, state: Path) -> str:
    """Drop the reply; apply it to the model; how its answer begins."""
    world.replies += 1
    reply_id = f"reply-phone-{world.replies}"
    drop(state, {"source": "vigil", "kind": "reply", "id": reply_id, "via": "phone", "from": "1",
                 "text": text, "timestamp": at.isoformat()})  # fmt: skip
    verb, _, rest = text.partition(" ")
    if verb == "mute":
        world.muted_until = at + timedelta(hours=3)
        return "• muted chores until"
    code, _, when = rest.partition(" ")
    chore = next((c for c in world.chores.values() if c.code == code), None)
    if chore is None:
        return f"• {code} is closed already"
    if verb == "snooze":
        chore.snoozed, chore.raised_in_snooze = snooze_end(when, at), False
        return f"• {code} snoozed until"
    world.closed[code] = at
    chore.code, chore.snoozed, chore.raised_in_snooze = None, None, False
    if verb == "stop":
        chore.stopped = True
        return f"• {code} stopped"
    chore.acked = True
    return f"• {code} done"


def _expected(world: World, at: datetime, kind: str) -> set[str]:
    """What this pass should say (`name` or `(snoozed) name`), by the model, which it updates
    as told."""
    today = at.astimezone(ZONE).date()
    muted = world.muted_until is not None and at < world.muted_until
    out = set()
    for name, chore in world.chores.items():
        if kind == "report" and not chore.present:
            if chore.code is not None:  # gone: resolved, its code closes
                world.closed[chore.code] = at
            chore.code, chore.acked, chore.snoozed, chore.raised_in_snooze = (
                None,
                False,
                None,
                False,
            )
            continue
        if not chore.present or chore.acked or chore.stopped:
            continue
        due = kind == "report" and (chore.told_day is None or today > chore.told_day)
        if chore.snoozed is not None:
            if at < chore.snoozed or (quiet(at) and not muted):
                chore.raised_in_snooze |= due
                continue  # held: by the snooze, then by quiet hours
            chore.snoozed = None
            raised, chore.raised_in_snooze = chore.raised_in_snooze or due, False
            if muted:
                continue  # dropped by the silence
            out.add(f"(snoozed) {name}")
            if raised:
                chore.told_day = today
            world.snoozes_said += 1
            continue
        if due and not muted and not quiet(at):
            out.add(name)
            chore.told_day = today
            world.told += 1
    return out


def _check_codes(world: World, at: datetime, told: dict[str, str]) -> None:
    open_codes = {c.code: n for n, c in world.chores.items() if c.code is not None}
    for text, code in told.items():
        name = text.removeprefix("(snoozed) ")
        chore = world.chores[name]
        if chore.code is None:
            world.expect(code not in open_codes, at, f"{code} given to {name}, open for another")
            closed = world.closed.get(code)
            recent = closed is not None and (at - closed).total_seconds() < 7 * 86400
            world.expect(not recent, at, f"{code} given to {name} within a week of closing")
            chore.code = code
        world.expect(chore.code == code, at, f"{name} told as {code}, its code is {chore.code}")

"""One simulated day of the reference workload: model calls, tokens and cost per job.

Compiles examples/bruba.yaml, points its job specs at a loopback stand-in for the Anthropic
Messages API (the real `anthropic` SDK talks to it) and its `signal` channel at a file, and runs
every firing of the day in America/New_York, in time order, with the real runner
(`python -m runner job SPEC`, one at a time), the real coordinator after each job run, and the
coordinator's 15-minute heartbeat (96 runs; 92 or 100 on a clock-change day). Tools that cannot
run here (`remindctl`, `openclaw`, `gcalcli`) are small stand-in scripts on PATH; `find` is the
real one, over a temporary HOME with one project untouched for 20 days.

Prints per job: firings, model calls seen by the API, tokens and cost (from runs.jsonl), the day
and month totals beside the reference design's estimate (an LLM heartbeat: ~$4/month, ~$3 of it
the heartbeat), the messages delivered, and the invariants checked (exit 1 if one fails).

The stand-in API estimates usage from the request it gets (about 4 characters a token, plus the
system prompt Anthropic adds for a forced tool call), so the figures follow what the runner
really sends. Jobs run on the real clock (the job runner has no simulated clock); the
coordinator and the stand-ins run at the firing's time (`VIGIL_NOW`).

    python -m tests.bench.reference_day [--date YYYY-MM-DD] [--quick] [--json PATH]

(from the repository root; --quick runs only 09:00-11:00: two job firings and 8 heartbeats)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from compiler.generate.build import build
from compiler.language.model import Config
from compiler.language.schedule import next_elapses, parse_schedule
from compiler.operate.cost import firings_per_month
from tests.runner_support import (
    API_KEY,
    ROOT,
    FakeMessagesAPI,
    message_reply,
    runner_env,
    tool_use,
)

CONFIG = ROOT / "examples" / "bruba.yaml"
DEFAULT_DATE = date(2026, 2, 2)  # a Monday: the weekly staleness-check fires too
HEARTBEAT = timedelta(minutes=15)
QUICK_WINDOW = (9, 11)  # --quick: firings from 09:00 to before 11:00 local, 8 heartbeats
COORDINATOR = "coordinator"

# The reference design's cost table (an LLM heartbeat every 15 minutes), USD per month.
REFERENCE_MONTHLY = {
    "reminder-check": 0.20,
    "staleness-check": 0.02,
    "calendar-prep": 0.05,
    "morning-briefing": 0.50,
    COORDINATOR: 3.00,
}
REFERENCE_TOTAL = 4.00  # "~$4/mo (all enabled)"

CHARS_PER_TOKEN = 4
TOOL_CHOICE_SYSTEM_TOKENS = 313
"""Tokens of the system prompt the API adds for tool use with tool_choice `tool` (Claude 4)."""

OVERDUE_DAYS = (1, 6)  # the two overdue reminders, due this many days before the simulated day
STALE_DAYS = 20


# --- the stand-in model ---------------------------------------------------------------------------


class DayAPI(FakeMessagesAPI):
    """The loopback Messages API, answering like a model would for each job of the workload.

    `job` names the run in progress (one at a time) so every call is attributed to it; `now`
    is the simulated time the reminders' days overdue are counted from."""

    def __init__(self) -> None:
        super().__init__()
        self.job = ""
        self.now = datetime.now(UTC)

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        with self.lock:
            self.requests.append({"body": body, "headers": headers, "job": self.job})
            return "finding"

    def reply(self, _kind: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        block = tool_use(answer(self.job, command_output(body), self.now))
        usage = {"input_tokens": input_tokens(body), "output_tokens": tokens(json.dumps(block))}
        with self.lock:
            self.requests[-1]["usage"] = usage
        message = message_reply(self.calls, body.get("model"), [block], usage)
        return 200, {}, message


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def input_tokens(body: dict[str, Any]) -> int:
    sent = {key: body.get(key) for key in ("system", "tools", "messages")}
    return TOOL_CHOICE_SYSTEM_TOKENS + tokens(json.dumps(sent, ensure_ascii=False))


def command_output(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[0].get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    match = re.search(r"<command_output>\n(.*)\n</command_output>", text, re.DOTALL)
    return match[1] if match else ""


def answer(job: str, output: str, now: datetime) -> dict[str, Any]:
    """What the model reports for `job`, given its command's output."""
    if job == "reminder-check":
        overdue = [
            {
                "id": item["id"],
                "title": item["title"],
                "list": item["list"],
                "days_overdue": (now.date() - date.fromisoformat(item["dueDate"][:10])).days,
            }
            for item in json.loads(output)
        ]
        titles = ", ".join(item["title"] for item in overdue)
        return {"message": f"{len(overdue)} reminders overdue: {titles}", "overdue": overdue}
    if job == "staleness-check":
        projects = []
        for line in output.splitlines():
            name, changed = line.rsplit(" ", 1)
            stale = (date.today() - date.fromisoformat(changed)).days  # find uses the real clock
            projects.append({"name": name, "last_changed": changed, "days_stale": stale})
        return {"message": f"{len(projects)} stale project(s)", "projects": projects}
    if job == "calendar-prep":
        meetings = []
        for row in output.splitlines()[1:]:
            day, start, _, _, title = row.split("\t")
            if " with " in title:  # external people: worth preparing for
                prep = f"Read the last notes on {title.split(' with ')[1]}"
                meetings.append(
                    {"id": f"ev-{start}", "title": title, "start": f"{day} {start}", "prep": prep}
                )
        if not meetings:
            return {"nothing_to_report": True}
        which = "; ".join(f"{m['start'][-5:]} {m['title']}" for m in meetings)
        return {"message": f"Prepare for: {which}", "meetings": meetings}
    if job == "morning-briefing":
        lines = [f"{item['title']} ({item['list']})" for item in json.loads(output)][:6]
        return {"message": "Today: " + "; ".join(lines)}
    return {"nothing_to_report": True}


# --- the sandbox: stand-in tools, specs, credentials ----------------------------------------------


class Sandbox:
    """Where one simulated day lives: HOME, stand-in tools, state, specs, credentials."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.bin = root / "bin"
        self.state = root / "state"
        self.specs = root / "specs"
        self.credentials = root / "credentials"
        self.deliveries = root / "deliveries.jsonl"
        self.openclaw_log = root / "openclaw.log"


def prepare(root: Path, day: date, api: FakeMessagesAPI) -> tuple[Sandbox, Config]:
    box = Sandbox(root)
    for directory in (box.home, box.bin, box.state, box.specs, box.credentials):
        directory.mkdir(parents=True)
    (box.credentials / "anthropic").write_text(API_KEY + "\n")
    write_stand_ins(box, day)
    make_projects(box.home / "projects")
    validated, tree = build(CONFIG)
    config = validated.config
    for name, spec in compiled_specs(tree).items():
        if spec["kind"] == "job":
            spec["state_dir"] = str(box.state)
            if spec.get("llm"):
                spec["llm"]["base_url"] = api.url
        elif spec["kind"] == COORDINATOR:
            spec["state_dir"] = str(box.state)
            spec["channels"]["signal"] = {"file": str(box.deliveries), "timeout": 30}
        else:
            continue
        (box.specs / f"{name}.json").write_text(json.dumps(spec, indent=1))
    return box, config


def compiled_specs(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        path.removeprefix("specs/").removesuffix(".json"): json.loads(generated.content)
        for path, generated in tree.items()
        if path.startswith("specs/")
    }


def write_stand_ins(box: Sandbox, day: date) -> None:
    due = [(day - timedelta(days=n)).isoformat() for n in OVERDUE_DAYS]
    overdue = [
        {"id": "ABC123", "title": "Call dentist", "list": "Immediate", "dueDate": due[0]},
        {"id": "DEF456", "title": "Renew passport", "list": "Errands", "dueDate": due[1]},
    ]
    today = [
        {"id": "GHI789", "title": "Pick up dry cleaning", "list": "Errands", "dueDate": str(day)},
        {"id": "JKL012", "title": "Send invoice to Acme", "list": "Work", "dueDate": str(day)},
    ]
    local = 'TZ=America/New_York date -d "${VIGIL_NOW:-now}"'
    scripts = {
        "remindctl": f"""
            hour=$({local} +%H)
            case "$1 $2" in
              "overdue --json")
                if [ "$hour" -ge 18 ]; then echo '[]'; else echo '{json.dumps(overdue)}'; fi ;;
              "today --json") echo '{json.dumps(today)}' ;;
              *) echo "remindctl (stand-in): unsupported: $*" >&2; exit 2 ;;
            esac
            """,
        "openclaw": f"""
            echo "$*" >> '{box.openclaw_log}'
            echo "openclaw (stand-in): $2 $4: NO_REPLY"
            """,
        "gcalcli": f"""
            day=$({local} +%F)
            printf 'start_date\\tstart_time\\tend_date\\tend_time\\ttitle\\n'
            printf '%s\\t09:30\\t%s\\t09:45\\tTeam standup\\n' "$day" "$day"
            printf '%s\\t15:00\\t%s\\t16:00\\tBudget review with Acme\\n' "$day" "$day"
            """,
    }
    for name, body in scripts.items():
        path = box.bin / name
        path.write_text(
            "#!/bin/sh\n# stand-in for a tool that cannot run here\n" + textwrap.dedent(body)
        )
        path.chmod(0o755)


def make_projects(projects: Path) -> None:
    for name, age in (("old", STALE_DAYS), ("fresh", 1)):
        (projects / name).mkdir(parents=True)
        moment = time.time() - age * 86400
        os.utime(projects / name, (moment, moment))


# --- the day: firings and heartbeats --------------------------------------------------------------


@dataclass(order=True)
class Event:
    at: datetime
    order: int  # a job before the heartbeat at the same minute
    job: str


def day_bounds(day: date, zone: str, quick: bool) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    if quick:
        start_hour, end_hour = QUICK_WINDOW
        return (
            datetime(day.year, day.month, day.day, start_hour, tzinfo=tz),
            datetime(day.year, day.month, day.day, end_hour, tzinfo=tz),
        )
    following = day + timedelta(days=1)
    return (
        datetime(day.year, day.month, day.day, tzinfo=tz),
        datetime(following.year, following.month, following.day, tzinfo=tz),
    )


def events(config: Config, start: datetime, end: datetime) -> list[Event]:
    found = []
    for name, job in config.jobs.items():
        if not job.enabled:
            continue
        lines = [line for e in job.schedule for line in parse_schedule(e).on_calendar]
        zone = job.timezone or config.timezone
        for moment in next_elapses(lines, zone, 500, base=start - timedelta(seconds=1)):
            if moment < end:
                found.append(Event(moment, 0, name))
    moment = start.astimezone(UTC)  # the heartbeat is a monotonic timer: fixed real intervals
    while moment < end:
        found.append(Event(moment.astimezone(start.tzinfo), 1, COORDINATOR))
        moment += HEARTBEAT
    return sorted(found)


# --- running it -----------------------------------------------------------------------------------


@dataclass
class Run:
    job: str
    kind: str  # job, coordinator (after a job) or heartbeat
    at: str
    exit_code: int
    calls: int
    found_nothing: bool = False
    stderr: str = ""


@dataclass
class Day:
    date: str
    quick: bool
    runs: list[Run] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # runs.jsonl
    calls: list[dict[str, Any]] = field(default_factory=list)  # at the API: job, model, usage
    messages: list[dict[str, Any]] = field(default_factory=list)  # the file channel's lines
    openclaw: list[str] = field(default_factory=list)
    outbox_left: list[str] = field(default_factory=list)
    models: dict[str, str | None] = field(default_factory=dict)  # per job; None: no prompt
    per_month: dict[str, float] = field(default_factory=dict)  # firings per month by schedule
    seconds: float = 0.0


def run_runner(kind: str, spec: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", kind, str(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def step(api: DayAPI, box: Sandbox, event: Event, kind: str, base: dict[str, str]) -> Run:
    api.job, api.now = event.job, event.at
    env = {**base, "VIGIL_NOW": event.at.astimezone(UTC).isoformat()}
    spec = json.loads((box.specs / f"{event.job}.json").read_text())
    if spec.get("llm"):
        env["CREDENTIALS_DIRECTORY"] = str(box.credentials)
    before = api.calls
    process = run_runner(
        "job" if kind == "job" else COORDINATOR, box.specs / f"{event.job}.json", env
    )
    return Run(
        job=event.job,
        kind=kind,
        at=event.at.isoformat(),
        exit_code=process.returncode,
        calls=api.calls - before,
        found_nothing="the command found nothing" in process.stderr,
        stderr=process.stderr,
    )


def simulate(day: date = DEFAULT_DATE, *, quick: bool = False) -> Day:
    began = time.perf_counter()
    api = DayAPI()
    api.thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="vigil-day-") as tmp:
            box, config = prepare(Path(tmp), day, api)
            start, end = day_bounds(day, config.timezone, quick)
            base = runner_env(HOME=str(box.home), PATH=f"{box.bin}:{os.environ['PATH']}")
            result = Day(date=day.isoformat(), quick=quick)
            for event in events(config, start, end):
                if event.order == 0:
                    result.runs.append(step(api, box, event, "job", base))
                    event = Event(event.at, 0, COORDINATOR)
                    result.runs.append(step(api, box, event, COORDINATOR, base))
                else:
                    result.runs.append(step(api, box, event, "heartbeat", base))
            collect(result, box, config, api)
    finally:
        api.server.shutdown()
        api.server.server_close()
    result.seconds = round(time.perf_counter() - began, 1)
    return result


def collect(result: Day, box: Sandbox, config: Config, api: DayAPI) -> None:
    runs_file = box.state / "runs.jsonl"
    result.records = [json.loads(line) for line in runs_file.read_text().splitlines()]
    result.calls = [
        {"job": r["job"], "model": r["body"].get("model"), **r.get("usage", {})}
        for r in api.requests
    ]
    if box.deliveries.exists():
        result.messages = [json.loads(line) for line in box.deliveries.read_text().splitlines()]
    if box.openclaw_log.exists():
        result.openclaw = box.openclaw_log.read_text().splitlines()
    outbox = box.state / "outbox"
    result.outbox_left = (
        sorted(str(path.relative_to(outbox)) for path in outbox.rglob("*.json"))
        if outbox.exists()
        else []
    )
    for name, job in config.jobs.items():
        result.models[name] = (job.model or config.llm.model) if job.prompt else None
        result.per_month[name] = firings_per_month(job.schedule, job.timezone or config.timezone)


# --- figures --------------------------------------------------------------------------------------


@dataclass
class Row:
    job: str
    model: str = ""
    firings: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    month_30: float = 0.0
    month_schedule: float = 0.0
    reference: float | None = None


def rows(day: Day) -> list[Row]:
    table = {name: Row(name, model or "-") for name, model in day.models.items()}
    table[COORDINATOR] = Row(COORDINATOR, "- (rules)")
    for run in day.runs:
        table[run.job].firings += 1
    for call in day.calls:
        table[call["job"]].calls += 1
    for record in day.records:
        row = table[record["job"]]
        row.tokens_in += record.get("tokens_in") or 0
        row.tokens_out += record.get("tokens_out") or 0
        row.cost += record.get("cost_usd") or 0.0
    for row in table.values():
        row.month_30 = row.cost * 30
        per_month = day.per_month.get(row.job)
        if row.firings and per_month is not None:
            row.month_schedule = row.cost / row.firings * per_month
        else:
            row.month_schedule = row.month_30
        row.reference = REFERENCE_MONTHLY.get(row.job)
    return list(table.values())


def total(table: list[Row]) -> Row:
    summed = Row("total", "")
    for row in table:
        for name in ("firings", "calls", "tokens_in", "tokens_out"):
            setattr(summed, name, getattr(summed, name) + getattr(row, name))
        summed.cost += row.cost
        summed.month_30 += row.month_30
        summed.month_schedule += row.month_schedule
    summed.reference = REFERENCE_TOTAL
    return summed


COLUMNS = (  # title, width, format, Row attribute
    ("job", -22, "", "job"),
    ("model", -18, "", "model"),
    ("firings", 8, "", "firings"),
    ("calls", 6, "", "calls"),
    ("tok in", 7, "", "tokens_in"),
    ("tok out", 8, "", "tokens_out"),
    ("USD/day", 9, ".5f", "cost"),
    ("x30", 8, ".4f", "month_30"),
    ("sched/mo", 9, ".4f", "month_schedule"),
    ("ref/mo", 7, ".2f", "reference"),
)


def table_line(values: list[object]) -> str:
    cells = []
    for (_, width, form, _), value in zip(COLUMNS, values, strict=True):
        if value is None:
            text = "-"
        else:
            text = format(value, form) if form and not isinstance(value, str) else str(value)
        cells.append(text.ljust(-width) if width < 0 else text.rjust(width))
    return "".join(cells)


def report(day: Day) -> str:
    table = rows(day)
    header = table_line([title for title, *_ in COLUMNS])
    rule = "-" * len(header)
    window = f"{QUICK_WINDOW[0]:02}:00-{QUICK_WINDOW[1]:02}:00"
    lines = [
        f"vigil reference day {day.date} (America/New_York)"
        + (f", quick: {window} only" if day.quick else ""),
        "",
        header,
        rule,
        *(table_line([getattr(row, c[3]) for c in COLUMNS]) for row in table),
        rule,
        table_line([getattr(total(table), c[3]) for c in COLUMNS]),
    ]
    beats = sum(1 for run in day.runs if run.kind == "heartbeat")
    after = sum(1 for run in day.runs if run.kind == COORDINATOR)
    lines += [
        "",
        f"coordinator runs: {beats} heartbeats + {after} after job runs; model calls: "
        f"{next(r.calls for r in table if r.job == COORDINATOR)}",
        "x30: the day times 30; sched/mo: cost per firing x firings in an average month of the "
        "schedule (weekly and weekday jobs counted right; a job that did not fire counts 0)"
        + (" — quick: both scale a partial day" if day.quick else ""),
        f"reference design: ~${REFERENCE_TOTAL:.0f}/month, ${REFERENCE_MONTHLY[COORDINATOR]:.2f} "
        "of it the LLM heartbeat; here the coordinator is rules, not a model: $0",
        "tokens: estimated by the stand-in API from each request (~4 chars/token + "
        f"{TOOL_CHOICE_SYSTEM_TOKENS} for the forced tool call)",
        "",
        f"messages delivered: {len(day.messages)} (file channel)",
    ]
    for message in day.messages:
        when = datetime.fromisoformat(message["delivered"].replace("Z", "+00:00"))
        local = when.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
        lines.append(f"  {local} [{message['channel']}] {message['title']}")
        lines += [f"        {text}" for text in message["body"].splitlines()]
    problems = invariant_problems(day)
    lines += ["", f"invariants: {'all hold' if not problems else 'FAILED'}"]
    lines += [f"  - {problem}" for problem in problems]
    lines.append(f"simulated in {day.seconds:.1f} s")
    return "\n".join(lines)


# --- invariants -----------------------------------------------------------------------------------


def invariant_problems(day: Day) -> list[str]:
    return [
        *exit_problems(day),
        *model_call_problems(day),
        *record_problems(day),
        *evening_problems(day),
        *delivery_problems(day),
        *token_problems(day),
    ]


def exit_problems(day: Day) -> list[str]:
    return [
        f"{run.kind} {run.job} at {run.at} exited {run.exit_code}: {run.stderr}"
        for run in day.runs
        if run.exit_code != 0
    ]


def model_call_problems(day: Day) -> list[str]:
    """Only prompt jobs that found something call the model, once each and with their own
    model; the coordinator never does."""
    problems = []
    for run in [run for run in day.runs if run.kind == "job"]:
        prompt = day.models.get(run.job) is not None
        if not prompt and run.calls:
            problems.append(f"{run.job} at {run.at} has no prompt but made {run.calls} call(s)")
        if prompt and run.found_nothing and run.calls:
            problems.append(f"{run.job} at {run.at} found nothing but made {run.calls} call(s)")
        if prompt and not run.found_nothing and run.calls != 1:
            problems.append(f"{run.job} at {run.at} found something but made {run.calls} call(s)")
    for call in day.calls:
        if call["model"] != day.models.get(call["job"]):
            problems.append(f"{call['job']} asked {call['model']}, not its configured model")
    for run in day.runs:
        if run.kind != "job" and run.calls:
            problems.append(f"the coordinator ({run.kind}) at {run.at} made {run.calls} call(s)")
    return problems


def record_problems(day: Day) -> list[str]:
    problems = []
    for record in day.records:
        if record.get("kind") == COORDINATOR and (record.get("tokens_in") or record.get("model")):
            problems.append(f"a coordinator run recorded tokens or a model: {record}")
        if record.get("job", "").startswith("nightly-reset") and record.get("result") != "ok":
            problems.append(f"chain step {record['job']} was {record.get('result')}")
    return problems


def evening_problems(day: Day) -> list[str]:
    if day.quick:  # the quick day ends before 18:00
        return []
    evening = [
        r
        for r in day.runs
        if r.kind == "job" and r.job == "reminder-check" and datetime.fromisoformat(r.at).hour == 18
    ]
    if not evening or not evening[0].found_nothing or evening[0].calls:
        return ["reminder-check at 18:00 should find [] and make no model call"]
    return []


def token_problems(day: Day) -> list[str]:
    tokens_at_api = sum(c.get("input_tokens", 0) + c.get("output_tokens", 0) for c in day.calls)
    tokens_recorded = sum(
        (r.get("tokens_in") or 0) + (r.get("tokens_out") or 0) for r in day.records
    )
    if tokens_at_api != tokens_recorded:
        return [f"tokens at the API ({tokens_at_api}) != runs.jsonl ({tokens_recorded})"]
    return []


def delivery_problems(day: Day) -> list[str]:
    problems = []
    reported = 0
    for record in day.records:
        if record.get("kind") == COORDINATOR:
            match = re.search(r"(\d+) delivered", record.get("reason") or "")
            reported += int(match[1]) if match else 0
    if reported != len(day.messages):
        problems.append(f"the coordinator delivered {reported}, the file has {len(day.messages)}")
    for message in day.messages:
        if message["channel"] != "signal":
            problems.append(f"message {message['id']} went to {message['channel']}")
    if any("--agent bruba-main" in line for line in day.openclaw):
        problems.append("the main-agent command channel was used")
    if day.outbox_left:
        problems.append(f"left in the outbox: {day.outbox_left}")
    bodies = "\n".join(message["body"] for message in day.messages)
    for title in ("Call dentist", "Renew passport"):
        if f"Reminder: {title} is overdue" not in bodies:
            problems.append(f"no first nag for {title!r} was delivered")
    return problems


def figures(day: Day) -> dict[str, Any]:
    table = rows(day)
    return {
        "date": day.date,
        "quick": day.quick,
        "seconds": day.seconds,
        "jobs": [asdict(row) for row in table],
        "total": asdict(total(table)),
        "reference_monthly_usd": REFERENCE_MONTHLY,
        "messages": day.messages,
        "runs": [{k: v for k, v in asdict(run).items() if k != "stderr"} for run in day.runs],
        "invariant_problems": invariant_problems(day),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=DEFAULT_DATE)
    parser.add_argument(
        "--quick", action="store_true", help="only 09:00-11:00: two job firings, 8 heartbeats"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    day = simulate(args.date, quick=args.quick)
    print(report(day))
    if args.json:
        args.json.write_text(json.dumps(figures(day), indent=2, ensure_ascii=False) + "\n")
    return 1 if invariant_problems(day) else 0


if __name__ == "__main__":
    sys.exit(main())

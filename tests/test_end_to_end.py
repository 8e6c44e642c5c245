"""The reference workload end to end under a real systemd user manager.

A copy of examples/bruba.yaml, changed only where a test must: every job fires a few seconds
after `vigil apply` (daily calendar times computed now, `accuracy: 1s`), the LLM detectors talk
to a loopback stand-in for the Messages API (`llm.base_url`; the key reaches them through
LoadCredential=), the Signal channel is a file, `remindctl`, `openclaw` and `gcalcli` are stand-in
scripts on the jobs' PATH, the strict staleness check reads stand-in projects (its `readable`),
and the nag ladder has no `min_interval`, so it escalates across runs. `openclaw` fails for the
first step of the nightly chain.

Then systemd does the rest: timers start the jobs, findings go through the inbox and the path
unit to the coordinator, and messages land in the file. The test checks the escalation (polite,
firmer, "remove it?", then silence), the failed chain (its next steps report skipped-after, and
every failure is alerted and delivered), and what `vigil status`, `state`, `inbox`, `outbox`
and `logs` show afterwards.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from runner.contract import reply_unit, service
from tests.bench.reference_day import answer, command_output, input_tokens, make_projects, tokens
from tests.conftest import ROOT, vigil_in_namespace
from tests.runner_support import API_KEY, FakeMessagesAPI, key_sent, message_reply, tool_use

pytestmark = pytest.mark.systemd

BRUBA = ROOT / "examples" / "bruba.yaml"
LEAD = 4.0
"""Seconds from computing the schedule to the first firing: apply takes about one."""
FIRINGS = {  # seconds after the first firing
    "nightly-reset-prep": [0],
    "reminder-check": [1, 7, 13, 19],
    "nightly-reset-execute": [2],
    "calendar-prep": [3],
    "nightly-reset-wake": [4],
    "morning-briefing": [5],
    "staleness-check": [9],
}
SETTLE_TIMEOUT = 40.0
"""After the last firing: every run recorded, every finding and alert delivered."""

REMINDERS = ("Call dentist", "Renew passport")
LADDER = (  # what the nag rule says at each step, for `Call dentist` (1, 4, 7, 10 days overdue)
    "Reminder: Call dentist is overdue",
    "Call dentist overdue for 4 days",
    "Call dentist overdue 7 days — remove it?",
)


# --- stand-ins --------------------------------------------------------------------------------


class WorkloadAPI(FakeMessagesAPI):
    """The loopback Messages API answering like a model would, per job (found by its prompt)."""

    def __init__(self, prompts: dict[str, str]) -> None:
        super().__init__()
        self.prompts = {job: prompt.splitlines()[0] for job, prompt in prompts.items()}

    def job_of(self, body: dict[str, Any]) -> str:
        content = (body.get("messages") or [{}])[0].get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        return next((job for job, first in self.prompts.items() if first in text), "unknown")

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        job = self.job_of(body)
        with self.lock:
            self.requests.append({"body": body, "headers": headers, "job": job})
        return job

    def reply(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        block = tool_use(answer(kind, command_output(body), datetime.now(UTC)))
        usage = {"input_tokens": input_tokens(body), "output_tokens": tokens(json.dumps(block))}
        return 200, {}, message_reply(self.calls, body.get("model"), [block], usage)


STAND_INS = {
    # Overdue reminders grow 3 days older on every call, so the ladder's min_days are met.
    "remindctl": """
        item() {{ printf '{{"id": "%s", "title": "%s", "list": "%s", "dueDate": "%s"}}' "$@"; }}
        case "$1 $2" in
          "overdue --json")
            n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}
            dentist=$(date -u -d "-$(( 1 + 3 * (n - 1) )) days" +%F)
            passport=$(date -u -d "-$(( 6 + 3 * (n - 1) )) days" +%F)
            echo "[$(item ABC123 'Call dentist' Immediate "$dentist"),"
            echo " $(item DEF456 'Renew passport' Errands "$passport")]" ;;
          "today --json")
            today=$(date -u +%F)
            echo "[$(item GHI789 'Pick up dry cleaning' Errands "$today"),"
            echo " $(item JKL012 'Send invoice to Acme' Work "$today")]" ;;
          *) echo "remindctl (stand-in): unsupported: $*" >&2; exit 2 ;;
        esac
        """,
    # The manager agent is unreachable for the first step of the nightly chain.
    "openclaw": """
        echo "$*" >> {openclaw_log}
        case "$*" in
          *"continuation packet"*)
            echo "openclaw (stand-in): gateway unreachable" >&2; sleep 0.2; exit 1 ;;
        esac
        echo "openclaw (stand-in): $2 $4: NO_REPLY"
        """,
    "gcalcli": """
        day=$(date -u +%F)
        printf 'start_date\\tstart_time\\tend_date\\tend_time\\ttitle\\n'
        printf '%s\\t09:30\\t%s\\t09:45\\tTeam standup\\n' "$day" "$day"
        printf '%s\\t15:00\\t%s\\t16:00\\tBudget review with Acme\\n' "$day" "$day"
        """,
}


# --- the workload -----------------------------------------------------------------------------


@dataclass
class Workload:
    manager: Any
    api: WorkloadAPI
    config: Path
    state: Path
    deliveries: Path
    openclaw_log: Path
    tmp: Path
    first: datetime  # the first firing
    zone: ZoneInfo

    def at(self, seconds: float) -> datetime:
        return self.first + timedelta(seconds=seconds)


def write_stand_ins(tmp: Path) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    values = {"counter": tmp / "remindctl.count", "openclaw_log": tmp / "openclaw.log"}
    for name, body in STAND_INS.items():
        script = bin_dir / name
        text = textwrap.dedent(body).format(**values)
        script.write_text("#!/bin/sh\n# stand-in for a tool that cannot run here\n" + text)
        script.chmod(0o755)
    return bin_dir


def workload_copy(tmp: Path, api_url: str, first: datetime) -> tuple[dict[str, Any], ZoneInfo]:
    """examples/bruba.yaml with the changes the module docstring lists."""
    data = yaml.safe_load(BRUBA.read_text())
    zone = ZoneInfo(data["timezone"])
    bin_dir = write_stand_ins(tmp)
    (tmp / "secrets").mkdir(mode=0o700)
    key_file = tmp / "secrets" / "anthropic-api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    home = tmp / "home"
    make_projects(home / "projects")  # `old` untouched for 20 days, `fresh` for 1

    data["state_dir"] = str(tmp / "state")
    data["secrets"] = {"anthropic": str(key_file)}
    data["llm"].update(base_url=api_url, timeout="20s")
    for name, job in data["jobs"].items():
        moments = [(first + timedelta(seconds=s)).astimezone(zone) for s in FIRINGS[name]]
        job["schedule"] = [f"*-*-* {moment:%H:%M:%S}" for moment in moments]
        job["accuracy"] = "1s"
        job["environment"] = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
    data["jobs"]["staleness-check"]["environment"]["HOME"] = str(home)
    # The strict sandbox shows it only what it may read: here, the stand-in projects.
    data["jobs"]["staleness-check"]["sandbox"]["readable"] = [str(home / "projects")]
    data["nag"]["reminders"]["min_interval"] = 0
    data["channels"]["signal"] = {"file": str(tmp / "deliveries.jsonl")}
    return data, zone


@pytest.fixture
def workload(vigil_manager, tmp_path: Path):
    manager = vigil_manager
    home = Path(manager.env["HOME"])
    stamps = home / ".local/share/systemd/timers"
    prompts = {
        name: job["prompt"]
        for name, job in yaml.safe_load(BRUBA.read_text())["jobs"].items()
        if "prompt" in job
    }
    api = WorkloadAPI(prompts)
    api.thread.start()
    try:
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD)
        data, zone = workload_copy(tmp_path, api.url, first)
        config = tmp_path / "bruba.yaml"
        config.write_text(
            "# examples/bruba.yaml, its day run in half a minute (tests/test_end_to_end.py)\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
        )
        yield Workload(
            manager=manager,
            api=api,
            config=config,
            state=tmp_path / "state",
            deliveries=tmp_path / "deliveries.jsonl",
            openclaw_log=tmp_path / "openclaw.log",
            tmp=tmp_path,
            first=first,
            zone=zone,
        )
    finally:
        manager.clean()  # timers stopped before the API goes away
        api.server.shutdown()
        api.server.server_close()
        # Persistent= timers remember their last trigger; later tests install bruba afresh.
        for stamp in stamps.glob("stamp-bruba-*") if stamps.is_dir() else []:
            stamp.unlink()


# --- reading what happened --------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def job_runs(w: Workload) -> list[dict[str, Any]]:
    return [run for run in read_jsonl(w.state / "runs.jsonl") if run["kind"] == "job"]


def code_of(line: str) -> str:
    """The reference code a delivered line ends in (`• ... [r3]` -> `r3`)."""
    found = re.search(r" \[(r\d+)\]$", line)
    assert found, f"no code at the end of {line!r}"
    return found.group(1)


def delivered_lines(w: Workload) -> list[str]:
    """Every line of every delivered message, in delivery order."""
    return [line for m in read_jsonl(w.deliveries) for line in m["body"].splitlines()]


def busy_units(w: Workload) -> list[str]:
    """bruba services running or about to run (a queued OnFailure= handler counts)."""
    units = w.manager.systemctl(
        "list-units",
        "--type=service",
        "--state=activating,active,deactivating",
        "--plain",
        "--no-legend",
        "bruba-*",
    ).stdout.split()
    jobs = w.manager.systemctl("list-jobs", "--plain", "--no-legend", "bruba-*").stdout.split()
    # The reply source runs all the time, by design (it waits for the person's answers).
    always = service(reply_unit("bruba", "phone"))
    return [word for word in units + jobs if word.startswith("bruba-") and word != always]


def queued_files(w: Workload) -> list[str]:
    return [
        p.name
        for folder in ("inbox", "processing")
        if (w.state / folder).is_dir()
        for p in (w.state / folder).iterdir()
    ]


def wait_until_settled(w: Workload) -> None:
    """Every firing recorded, nothing queued or running, twice in a row."""
    wanted = Counter({job: len(times) for job, times in FIRINGS.items()})
    last_firing = max(s for times in FIRINGS.values() for s in times)
    timeout = (w.at(last_firing) - datetime.now(UTC)).total_seconds() + SETTLE_TIMEOUT
    w.manager.wait_for(
        lambda: Counter(run["job"] for run in job_runs(w)) == wanted,
        timeout=timeout,
        interval=0.25,
        what=f"the job runs {dict(wanted)}",
    )
    quiet: list[bool] = []

    def settled() -> bool:
        busy = set(busy_units(w))
        if busy == {"bruba-coordinator.service"} and not queued_files(w):
            # Its run lingers for the next finding (`linger`): done with the work, stop it.
            w.manager.systemctl("stop", "bruba-coordinator.service")
            busy = set(busy_units(w))
        quiet.append(not busy and not queued_files(w))
        return quiet[-2:] == [True, True]

    w.manager.wait_for(settled, timeout=SETTLE_TIMEOUT, interval=0.3, what="a quiet coordinator")


# --- the test ---------------------------------------------------------------------------------


def test_reference_workload_end_to_end(vigil, workload: Workload) -> None:
    w = workload
    began = time.monotonic()
    applied = vigil("apply", w.config, "--yes")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert datetime.now(UTC) < w.first, "apply took longer than LEAD: the first firing passed"

    # Installed, nothing run yet; every timer's next elapse is the computed time.
    code, rows = status(vigil, w)
    assert code == 0
    for row in rows:
        if row["kind"] == "job":
            expected = w.at(FIRINGS[row["name"]][0]).astimezone(w.zone)
            assert f"{expected:%H:%M:%S}" in row["next_run"], row

    wait_until_settled(w)
    runs = {job: [r for r in job_runs(w) if r["job"] == job] for job in FIRINGS}

    # Timers started every run (systemd's invocation id), on time.
    for job, recorded in runs.items():
        for run, offset in zip(recorded, FIRINGS[job], strict=True):
            assert run["invocation_id"], run
            started = datetime.fromisoformat(run["start"].replace("Z", "+00:00"))
            late = (started - w.at(offset)).total_seconds()
            assert -0.5 < late < 4, f"{job} started {late:.1f} s after its firing time"

    # --- the LLM detectors: one model call per run, with the key from the credential file.
    results = {job: [r["result"] for r in recorded] for job, recorded in runs.items()}
    assert results == {
        "nightly-reset-prep": ["failed"],
        "reminder-check": ["ok"] * 4,
        "nightly-reset-execute": ["skipped-after"],
        "calendar-prep": ["ok"],
        "nightly-reset-wake": ["skipped-after"],
        "morning-briefing": ["ok"],
        "staleness-check": ["ok"],
    }
    asked = Counter(request["job"] for request in w.api.requests)
    llm_jobs = ("calendar-prep", "morning-briefing", "reminder-check", "staleness-check")
    assert asked == {
        "reminder-check": 4,
        "calendar-prep": 1,
        "morning-briefing": 1,
        "staleness-check": 1,
    }
    assert {key_sent(r["headers"]) for r in w.api.requests} == {API_KEY}
    models = {r["job"]: r["body"]["model"] for r in w.api.requests}
    assert models["morning-briefing"] == "claude-sonnet-4-5"
    assert models["reminder-check"] == "claude-haiku-4-5"
    for job in llm_jobs:
        assert all(r["tokens_in"] > 0 and r["findings"] == 1 for r in runs[job]), runs[job]

    # --- delivery: the nag ladder escalates once per run, then stops.
    lines = delivered_lines(w)
    messages = read_jsonl(w.deliveries)
    assert {m["channel"] for m in messages} == {"signal"}
    # Each item keeps its code on every line; the six items told (two reminders, the prep's
    # failure, three other findings) have r1..r6 between them, in the order the runs happened
    # to take them, which the firings' timing decides.
    assert {code_of(line) for line in lines} == {f"r{n}" for n in range(1, 7)}, lines
    assert len(lines) == 10, lines
    dentist = [line for line in lines if "Call dentist" in line]
    dentist_code = code_of(dentist[0])
    assert dentist == [f"• {text} [{dentist_code}]" for text in LADDER], lines
    passport = [line for line in lines if "Renew passport" in line]
    passport_code = code_of(passport[0])
    assert passport == [
        f"• Reminder: Renew passport is overdue [{passport_code}]",
        f"• Renew passport overdue for 9 days [{passport_code}]",
        f"• Renew passport overdue 12 days — remove it? [{passport_code}]",
    ]
    state = vigil("state", "--config", w.config, "--json")
    assert state.exit_code == 0, state.stderr
    items = {row["title"]: row for row in json.loads(state.stdout) if row["rule"] == "reminders"}
    assert {title: (items[title]["status"], items[title]["count"]) for title in REMINDERS} == {
        title: ("stopped", 3) for title in REMINDERS
    }

    # The other detectors' findings are delivered as they are.
    assert any(
        re.fullmatch(r"• Prepare for: 15:00 Budget review with Acme \[r\d\]", line)
        for line in lines
    )
    assert any(line.startswith("• Today: Pick up dry cleaning (Errands)") for line in lines)
    assert any(
        re.fullmatch(r"• old has not moved in (19|20|21) days \[r\d\]", line) for line in lines
    )

    # --- the failed chain: prep failed, the next steps did not run; the example's inhibit
    # rule holds their failures while prep's is open: one alert, the other two wait.
    assert w.openclaw_log.read_text().count("\n") == 1  # execute and wake never called it
    alerts = [line for line in lines if " failed (" in line]
    assert len(alerts) == 1, alerts
    held = json.loads((w.state / "state/held.json").read_text())["alerts"]
    alerts += [f"• {alert['text']}" for alert in held]
    assert {alert["by"] for alert in held} == {"inhibit:reset-prep-failed"}, held
    silenced = vigil("inbox", "--silenced", "--config", w.config, "--json")
    assert (
        sorted((row["by"], row["action"]) for row in json.loads(silenced.stdout))
        == [("inhibit:reset-prep-failed", "held")] * 2
    )
    assert any(  # release.pause_after: 5 counts each failure of a job
        re.fullmatch(
            r"• bruba-nightly-reset-prep failed \(exit-code, status 1\): command exited with "
            r"status 1 \(failure 1 in a row; paused at 5\) \[r\d\]",
            line,
        )
        for line in alerts
    ), alerts
    assert any(
        line.startswith("• bruba-nightly-reset-execute failed (exit-code, status 5): not run: ")
        and "predecessor nightly-reset-prep did not succeed" in line
        for line in alerts
    ), alerts
    assert any(
        line.startswith("• bruba-nightly-reset-wake failed (exit-code, status 5)")
        for line in alerts
    )
    assert all(m["urgent"] for m in messages if "vigil" in m["sources"])

    # Nothing left behind: inbox and outbox empty, no dead letters.
    for command in ("inbox", "outbox"):
        shown = vigil(command, "--config", w.config, "--json")
        assert (shown.exit_code, json.loads(shown.stdout)) == (0, []), shown.stdout

    # --- status: exit 1 because of the failed chain; the rest healthy.
    code, rows = status(vigil, w)
    assert code == 1
    by_name = {row["name"]: row for row in rows}
    prep = by_name["nightly-reset-prep"]
    assert (prep["result"], prep["failures_in_row"], prep["failed"]) == ("failed", 1, True)
    assert "bruba-nightly-reset-prep.service failed (exit-code)" in prep["note"]
    for step in ("nightly-reset-execute", "nightly-reset-wake"):
        assert (by_name[step]["result"], by_name[step]["failed"]) == ("skipped-after", True)
    for job in (*llm_jobs, "coordinator"):
        assert (by_name[job]["result"], by_name[job]["failed"]) == ("ok", False), by_name[job]
    assert by_name["reminder-check"]["tokens_month"] > 0
    assert by_name["reminder-check"]["cost_month"] > 0
    table = vigil("status", "--config", w.config)
    assert table.exit_code == 1
    # header, jobs, coordinator, the reply source
    assert len(table.stdout.splitlines()) == 1 + len(FIRINGS) + 1 + 1, table.stdout

    # --- logs: each job's story, with its failure handler's.
    def logs(job: str) -> str:
        result = vigil_in_namespace(w.manager, w.tmp, "logs", job, "--config", w.config)
        return result.stdout

    prep_log = logs("nightly-reset-prep")
    assert "openclaw (stand-in): gateway unreachable" in prep_log
    assert "vigil: nightly-reset-prep: failed: command exited with status 1" in prep_log
    assert "Starting bruba-failure@bruba-nightly-reset-prep.service.service" in prep_log
    assert "vigil: alert written to" in prep_log
    execute_log = logs("nightly-reset-execute")
    assert "vigil: nightly-reset-execute: skipped-after: not run: predecessor" in execute_log
    assert "Starting bruba-failure@bruba-nightly-reset-execute.service.service" in execute_log
    reminder_log = logs("reminder-check")
    assert reminder_log.count("Starting bruba-reminder-check.service") == 4
    assert reminder_log.count("vigil: 1 finding(s) written to the inbox") == 4
    coordinator_log = logs("coordinator")
    assert coordinator_log.count("vigil: delivered message") == len(messages)
    # The fourth reminder-check finding: the ladder has stopped, nothing to say (the two
    # inhibited failures still held).
    assert "coordinator: 1 findings, 0 rejected, 0 alerts, 2 held, 0 messages" in coordinator_log

    print(f"\nend to end: {time.monotonic() - began:.1f} s, {len(messages)} messages delivered")


def status(vigil, w: Workload) -> tuple[int, list[dict[str, Any]]]:
    result = vigil("status", "--config", w.config, "--json")
    return result.exit_code, json.loads(result.stdout)

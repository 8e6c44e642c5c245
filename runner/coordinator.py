"""`python -m runner coordinator SPEC`: inbox -> rules -> one message per channel -> outbox ->
channels. Started by the path unit when a finding lands and by the heartbeat timer; spends no
tokens. With nothing new it reads only the inbox and the held/outbox state.

Crash safety: findings stay in processing/ until the messages they caused are in the outbox and
the rule state is written; message ids come from the batch, so a rerun after a crash re-queues
the same ids (delivered at most twice, never lost).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.alerts import Alert
from runner.clock import iso, parse_iso, utc_now
from runner.compose import compose, held_record, in_quiet_hours
from runner.exitcodes import OK, USAGE
from runner.findings import ALERT_PRIORITY
from runner.fsatomic import locked, read_state, write_state
from runner.history import RunRecord, append_line
from runner.intake import Claimed, claim, done
from runner.rules.nag import NagRule, apply_rule, prune
from runner.rules.pending import FileWatch, arm, check, pending
from runner.rules.pending import prune as prune_watch
from runner.spec import DEFAULT_HISTORY_MAX_BYTES

HELD = "held.json"
GENERIC_TEXT_LIMIT = 300


def now_for_run() -> datetime:
    # VIGIL_NOW lets a simulation or test run the coordinator at a chosen moment.
    return parse_iso(os.environ.get("VIGIL_NOW")) or utc_now()


def load_spec(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    if spec.get("spec") != 1 or spec.get("kind") != "coordinator":
        raise ValueError("not a version 1 coordinator spec")
    spec["state_dir"] = os.path.expanduser(spec["state_dir"])
    return spec


def main(spec_path: str) -> int:
    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError, KeyError) as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE
    run(spec, now_for_run())
    return OK


def run(spec: dict[str, Any], now: datetime) -> dict[str, int]:
    """One coordinator pass; returns counts for the journal and runs.jsonl."""
    state_dir = spec["state_dir"]
    record = RunRecord(job="coordinator", kind="coordinator", config=spec["config"], started=now)
    with locked(os.path.join(state_dir, ".coordinator.lock")):
        counts = _pass(spec, state_dir, now)
    record.findings = counts["findings"]
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"coordinator: {summary}", file=sys.stderr)
    line = record.as_json(result="ok", exit_code=OK, reason=summary, ended=utc_now())
    append_line(state_dir, line, int(spec.get("history_max_bytes") or DEFAULT_HISTORY_MAX_BYTES))
    return counts


def _pass(spec: dict[str, Any], state_dir: str, now: datetime) -> dict[str, int]:
    coordinator = spec["coordinator"]
    intake = claim(state_dir, int(coordinator.get("max_finding_bytes") or 1 << 20))
    alerts = [_rejection(name, reason) for name, reason in intake.rejected]
    states: dict[str, dict[str, Any]] = {}
    watches = _file_watches(spec)
    watch_states = {name: read_state(state_dir, w.state_file) for name, w in watches.items()}
    for claimed in intake.findings:
        armed = _arm(watches, watch_states, claimed.finding, now)
        alerts += _alerts_for(spec, claimed.finding, states, now, handled=armed)
    for name, watch in watches.items():
        if pending(watch_states[name]):
            alerts += check(watch, watch_states[name], now)
    stored = read_state(state_dir, HELD).get("alerts")
    held = (
        [Alert.from_json(item) for item in stored if isinstance(item, dict)]
        if isinstance(stored, list)
        else []
    )
    if in_quiet_hours(spec, now):
        held += [alert for alert in alerts if not alert.urgent]
        sending = [alert for alert in alerts if alert.urgent]
    else:
        sending, held = held + alerts, []
    queued = _enqueue(
        spec, state_dir, sending, _batch(intake.findings, intake.rejected, sending), now
    )
    rules = _rules(spec)
    for name, state in states.items():
        prune(rules[name], state, now)
        write_state(state_dir, rules[name].state_file, state)
    for name, state in watch_states.items():
        prune_watch(state, now)
        if state:
            write_state(state_dir, watches[name].state_file, state)
    if held or read_state(state_dir, HELD):
        write_state(state_dir, HELD, {"version": 1, "alerts": [held_record(a, now) for a in held]})
    done(intake.findings)
    delivered = _deliver(spec, state_dir, now)
    return {
        "findings": len(intake.findings),
        "rejected": len(intake.rejected),
        "alerts": len(alerts),
        "held": len(held),
        "messages": queued,
        **delivered,
    }


def _rules(spec: dict[str, Any]) -> dict[str, NagRule]:
    return {name: NagRule.from_spec(name, rule) for name, rule in (spec.get("nag") or {}).items()}


def _file_watches(spec: dict[str, Any]) -> dict[str, FileWatch]:
    return {
        name: FileWatch.from_spec(name, watch)
        for name, watch in (spec.get("watches") or {}).items()
        if watch.get("file")
    }


def _arm(
    watches: dict[str, FileWatch],
    states: dict[str, dict[str, Any]],
    finding: dict[str, Any],
    now: datetime,
) -> bool:
    """Arm the file watches this finding's source arms; True if any did."""
    armed = False
    for name, watch in watches.items():
        if watch.source is not None and watch.source == finding.get("source"):
            arm(watch, finding, states[name], now)
            armed = True
    return armed


def _alerts_for(
    spec: dict[str, Any],
    finding: dict[str, Any],
    states: dict[str, dict[str, Any]],
    now: datetime,
    *,
    handled: bool = False,
) -> list[Alert]:
    source = str(finding["source"])
    policy = (spec["coordinator"].get("sources") or {}).get(source) or {}
    matching = [rule for rule in _rules(spec).values() if rule.source == source]
    alerts: list[Alert] = []
    for rule in matching:
        if rule.name not in states:
            states[rule.name] = read_state(spec["state_dir"], rule.state_file)
        alerts += apply_rule(rule, finding, states[rule.name], now)
    if not matching and (not handled or isinstance(finding.get("message"), str)):
        alerts.append(_as_is(finding, source))
    for alert in alerts:
        alert.urgent = alert.urgent or bool(policy.get("urgent"))
    return alerts


def _as_is(finding: dict[str, Any], source: str) -> Alert:
    """A finding no rule handles: its `message`, or a short rendering of it (never dropped)."""
    text = finding.get("message")
    if not isinstance(text, str) or not text.strip():
        body = {k: v for k, v in finding.items() if k not in ("source", "timestamp")}
        text = f"{source}: {json.dumps(body, ensure_ascii=False)}"
        if len(text) > GENERIC_TEXT_LIMIT:
            text = text[: GENERIC_TEXT_LIMIT - 1] + "…"
    priority = finding.get("priority")
    return Alert(
        text=text.strip(),
        source=source,
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        urgent=finding.get("urgent") is True,
        key=str(finding.get("id") or ""),
        evidence=finding,
    )


def _rejection(name: str, reason: str) -> Alert:
    return Alert(
        text=f"rejected inbox file {name}: it {reason}",
        source="vigil",
        priority=ALERT_PRIORITY,
        key=f"rejected:{name}",
    )


def _batch(claimed: list[Claimed], rejected: list[tuple[str, str]], alerts: list[Alert]) -> str:
    parts = sorted(os.path.basename(c.path) for c in claimed) + sorted(n for n, _ in rejected)
    parts += sorted(alert.key for alert in alerts)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _enqueue(
    spec: dict[str, Any], state_dir: str, alerts: list[Alert], batch: str, now: datetime
) -> int:
    if not alerts:
        return 0
    from runner.outbox import Message, enqueue

    outgoing = compose(spec, alerts, now)
    for message in outgoing:
        evidence = [a.evidence for a in alerts if a.evidence]
        enqueue(
            Path(state_dir),
            Message(
                id=message.message_id(batch),
                channel=message.channel,
                title=message.title,
                body=message.body,
                urgent=message.urgent,
                created=iso(now),
                sources=message.sources,
                count=len(message.keys),
                evidence={"findings": evidence} if evidence else None,
            ),
        )
    return len(outgoing)


def _deliver(spec: dict[str, Any], state_dir: str, now: datetime) -> dict[str, int]:
    outbox = os.path.join(state_dir, "outbox")
    if not os.path.isdir(outbox) or not any(n.endswith(".json") for n in os.listdir(outbox)):
        return {"delivered": 0}
    from runner.outbox import deliver_due

    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    report = deliver_due(spec, Path(state_dir), now, Path(credentials) if credentials else None)
    return {key: int(value) for key, value in vars(report).items() if isinstance(value, int)}

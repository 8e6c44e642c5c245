"""`python -m runner coordinator SPEC`: inbox -> rules -> one message per channel -> outbox ->
channels. Started by the path unit when a finding lands and by the heartbeat timer; spends no
tokens. With nothing new it reads only the inbox and the held/outbox state.

Crash safety: findings stay in their claim, processing/<claim>/, until the messages they caused
are in the outbox and the rule state is written; message ids come from the claim's name, and a
claim a killed run left behind is taken up alone before the inbox, so the rerun re-queues the
same ids (a no-op) even when more findings arrived meanwhile: never lost, never twice. A run
with nothing claimed (quiet hours ending, a watch's clock) takes its ids from the occasion in
held.json, which the run replaces only after its messages are queued: a rerun gets the same
ids, the next occasion new ones, even for the very same alert.

Rule state follows what the person was told: a nag step counts when a message names it (see
_note_nags), not when a rule proposes it.

A state directory that takes no writes (disk full, read-only, no permission) ends the run with
one clear line and exit code 8 (storage), and nothing half-written: the next run carries on
where this one stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import suppress
from datetime import datetime

from runner import clock, statefile
from runner import stateshapes as shapes
from runner.alerts import NAG_KEY, WATCH_KEY, Alert, dedup_subject, held_record
from runner.clock import iso, utc_now
from runner.contract import (
    COORDINATOR_LOCK,
    COORDINATOR_PASS_TIMEOUT,
    DEFAULT_HEARTBEAT,
    FIRINGS,
    INBOX,
    OUTBOX,
    SOURCES,
    TALK_KINDS,
    coordinator_unit,
    path_unit,
    timer,
    watch_state_file,
)
from runner.exitcodes import OK, STORAGE, USAGE
from runner.findings import ALERT_PRIORITY, VIGIL_SOURCE, finding_priority
from runner.fsatomic import describe, locked, write_state
from runner.history import RunRecord, append_line
from runner.intake import (
    MAX_CLAIM_ATTEMPTS,
    Claimed,
    Intake,
    Rejected,
    attempt,
    claim,
    claim_moment,
    done,
    forget,
    holds_files,
    left_behind,
    quarantine,
)
from runner.spec import DEFAULT_HISTORY_MAX_BYTES, file_identity, read_spec
from runner.statefile import StateUnreadable, load_state, unreadable

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.compose import Outgoing
    from runner.rules.nag import NagRuleSpec
    from runner.rules.pending import FileWatchSpec
    from runner.spectypes import CoordinatorSpecJSON, SourcePolicyJSON, WatchJSON

# Start-up time is most of a coordinator run, so an idle run (nothing in the inbox, held or
# queued) imports only what it reads with: the rules, composing, hashing, the outbox and the
# channels are imported inside the functions below, by a run that has work for them.

HELD = "held.json"
GENERIC_TEXT_LIMIT = 300
STORAGE_RETRY_FOR = 60.0
STORAGE_RETRY_EVERY = 5.0
"""Under systemd, how long and how often a run retries when the inbox cannot be emptied (see
run_until_stored). A sandboxed service keeps the mounts it started with, so a file system
remounted read-write reaches only its next start: the window is also the longest wait for
that. VIGIL_STORAGE_RETRY overrides the window (seconds)."""


def load_spec(path: str) -> CoordinatorSpecJSON:
    spec: CoordinatorSpecJSON = read_spec(path, "coordinator")
    return spec


def main(spec_path: str) -> int:
    live = os.path.realpath(spec_path)  # the generation it leads to now (`current` moves)
    identity = file_identity(live)  # of the file read below
    try:
        spec = load_spec(live)
    except (OSError, ValueError, KeyError) as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE
    if spec.get("fleet"):  # a long-running service taking findings from NATS
        from runner.fleet.leader import main as lead

        return lead(spec, timed_pass)
    heartbeat = os.environ.get("TRIGGER_UNIT") == timer(coordinator_unit(spec["config"]))
    from runner.stopping import StopRequest

    stop = StopRequest()
    inbox = os.path.join(spec["state_dir"], INBOX)
    found = holds_files(inbox)  # before the pass empties it
    status = timed_pass(spec, heartbeat)
    seconds = _linger(spec) if found and status == OK and not stop.requested else 0
    if not seconds:
        return status
    from runner.warm import Lingering, linger

    lingering = Lingering(
        spec_path=spec_path,
        live=identity,
        inbox=inbox,
        seconds=seconds,
        heartbeat=int(spec["coordinator"].get("heartbeat") or DEFAULT_HEARTBEAT),
    )
    return linger(lingering, stop, lambda beat: timed_pass(spec, beat))


def _linger(spec: CoordinatorSpecJSON) -> int:
    """Seconds a run that found the inbox holding findings stays for the next: `linger:` when
    the path unit started it (a burst may follow); none for the heartbeat, a start by hand or
    outside systemd."""
    seconds = int(spec["coordinator"].get("linger") or 0)
    if not seconds:
        return 0
    from runner.warm import started_by_path

    unit = path_unit(coordinator_unit(spec["config"]))
    return seconds if started_by_path(spec["scope"], unit) else 0


def timed_pass(spec: CoordinatorSpecJSON, heartbeat: bool) -> int:
    """One pass (run_until_stored), killed by SIGALRM (its default action) after
    COORDINATOR_PASS_TIMEOUT seconds: the unit's TimeoutStartSec= covers a whole warm run, so
    each pass gets a limit of its own."""
    from signal import alarm

    alarm(COORDINATOR_PASS_TIMEOUT)
    try:
        return run_until_stored(spec, heartbeat)
    finally:
        alarm(0)


def run_until_stored(spec: CoordinatorSpecJSON, heartbeat: bool = False) -> int:
    """One run; OK, or STORAGE with a one-line reason when the state directory takes no writes.

    A run that fails with files left in the inbox would be started again at once by the path
    unit (DirectoryNotEmpty=), hundreds of times a second until systemd's trigger limit stops
    the path unit for good. So under systemd such a run tries again here every few seconds
    (recovering as soon as the directory takes writes) and fails only after STORAGE_RETRY_FOR:
    one failed start a minute, instead of hundreds a second. A `heartbeat` run (the timer's,
    or a warm run's in its stead) also checks the jobs' firings."""
    started, real_start = clock.now(), utc_now()
    window = _retry_window() if os.environ.get("INVOCATION_ID") else 0.0
    every = min(STORAGE_RETRY_EVERY, window)
    give_up = time.monotonic() + window
    retrying = False
    while True:
        try:
            run(spec, clock.now(), heartbeat=heartbeat)
        except OSError as error:
            problem = describe(error)
        else:
            if retrying:
                print("vigil: coordinator: the state directory takes writes again", file=sys.stderr)
            return OK
        if not _inbox_waiting(spec["state_dir"]) or time.monotonic() >= give_up:
            break
        if not retrying:
            print(
                f"vigil: coordinator: {problem}; the inbox cannot be emptied: trying again "
                f"every {every:g}s for {window:g}s",
                file=sys.stderr,
            )
            retrying = True
        time.sleep(every)
    print(
        f"vigil: coordinator: storage: {problem}; nothing is lost: findings wait in inbox/ and "
        "processing/, messages in outbox/, for the next run",
        file=sys.stderr,
    )
    _record_failure(spec, started, clock.end_of(started, real_start), problem)
    return STORAGE


def _retry_window() -> float:
    try:
        return max(0.0, float(os.environ.get("VIGIL_STORAGE_RETRY") or STORAGE_RETRY_FOR))
    except ValueError:
        return STORAGE_RETRY_FOR


def _inbox_waiting(state_dir: str) -> bool:
    """Whether the inbox holds anything: the path unit would start the coordinator again."""
    try:
        return bool(os.listdir(os.path.join(state_dir, INBOX)))
    except OSError:
        return False


def _record_failure(
    spec: CoordinatorSpecJSON, started: datetime, ended: datetime, problem: str
) -> None:
    """runs.jsonl gets the failed run when it still takes a line (`vigil status` shows it)."""
    config = spec["config"]
    record = RunRecord(job="coordinator", kind="coordinator", config=config, started=started)
    line = record.as_json(result="storage", exit_code=STORAGE, reason=problem, ended=ended)
    limit = int(spec.get("history_max_bytes") or DEFAULT_HISTORY_MAX_BYTES)
    with suppress(OSError):  # already said: the journal has the reason
        append_line(spec["state_dir"], line, limit)


def run(
    spec: CoordinatorSpecJSON, now: datetime, *, heartbeat: bool = False, deliver: bool = True
) -> dict[str, int]:
    """One coordinator run; returns counts for the journal and runs.jsonl. A `heartbeat` run
    (started by the coordinator's timer) also checks that every job ran when its timer fired.
    Without `deliver` (a try's dry run, against a copy of the state) messages stay in the
    outbox."""
    state_dir = spec["state_dir"]
    real_start = utc_now()
    record = RunRecord(job="coordinator", kind="coordinator", config=spec["config"], started=now)
    with locked(os.path.join(state_dir, COORDINATOR_LOCK)):
        counts: dict[str, int] = {}
        if _firings_due(spec, now, heartbeat):
            from runner.missed import check  # a heartbeat's work: subprocess, calendars

            missed = check(spec, now)  # its alerts go into the inbox, delivered below
            if missed:
                counts["missed"] = missed
        # Claims of a killed run first, each alone (same claim, same message ids), then the inbox.
        set_aside = statefile.set_aside_count
        for name in [*left_behind(state_dir), None]:
            if name is None:  # the inbox, with the alerts of claims quarantined just now
                found = _process_claim(spec, state_dir, now, None, deliver)
            else:
                tries = attempt(state_dir, name)
                if tries >= MAX_CLAIM_ATTEMPTS:  # the run that made it, and the reruns since
                    quarantine(state_dir, name, tries, now)
                    continue
                try:
                    found = _process_claim(spec, state_dir, now, name, deliver)
                except OSError:
                    with suppress(OSError):  # the disk, not the claim: no strike against it
                        forget(state_dir, name)
                    raise
                forget(state_dir, name)
            for what, n in found.items():
                counts[what] = counts.get(what, 0) + n
        if statefile.set_aside_count > set_aside:  # their alerts are in the inbox: deliver now
            for what, n in _process_claim(spec, state_dir, now, None, deliver).items():
                counts[what] = counts.get(what, 0) + n
    record.findings = counts["findings"]
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"coordinator: {summary}", file=sys.stderr)
    line = record.as_json(
        result="ok", exit_code=OK, reason=summary, ended=clock.end_of(now, real_start)
    )
    append_line(state_dir, line, int(spec.get("history_max_bytes") or DEFAULT_HISTORY_MAX_BYTES))
    return counts


def _firings_due(spec: CoordinatorSpecJSON, now: datetime, heartbeat: bool) -> bool:
    """Whether this run checks the jobs' firings: a heartbeat does; so does a run under
    systemd when no check happened for two heartbeats (each run started by the path unit
    puts the heartbeat timer off again: OnUnitActiveSec= counts from the last start)."""
    if not spec.get("timers"):
        return False
    if heartbeat:
        return True
    if not os.environ.get("INVOCATION_ID"):
        return False
    try:
        state = load_state(spec["state_dir"], FIRINGS, shapes.FIRINGS, now)
    except StateUnreadable:
        return False  # the heartbeat says so
    checked = clock.parse_iso(state.get("checked"))
    every = 2 * int(spec["coordinator"].get("heartbeat") or DEFAULT_HEARTBEAT)
    return checked is None or not 0 <= (now - checked).total_seconds() < every


def _process_claim(
    spec: CoordinatorSpecJSON,
    state_dir: str,
    now: datetime,
    name: str | None,
    deliver: bool = True,
) -> dict[str, int]:
    """One claim from findings to channels: the claim a killed run left behind (`name`), or
    what is in the inbox now (None); rules, quiet hours, the outbox, rule state, delivery."""
    coordinator = spec["coordinator"]
    delivery_now = now  # retries and their backoff go by the clock, not a replayed moment
    if name is not None:
        now = claim_moment(name) or now
    intake = claim(state_dir, int(coordinator.get("max_finding_bytes") or 1 << 20), name, now)
    alerts = [_rejection(item) for item in intake.rejected]
    nag_states: dict[str, dict[str, Any]] = {}
    spec, watch_states = _readable_watches(spec, now)
    watch_specs: dict[str, WatchJSON] = spec.get("watches") or {}
    talk = _Talk(state_dir, now)
    holding: list[tuple[Alert, str]] = []  # a snoozed item's alert, said again at its end
    if intake.findings or any(watch_states.values()) or _has_absence(watch_specs):
        alerts += _apply_rules(
            spec,
            intake.findings,
            nag_states,
            watch_states,
            now,
            claim=intake.claim,
            talk=talk,
            holding=holding,
        )
    try:
        held_state = load_state(state_dir, HELD, shapes.HELD, now)
    except StateUnreadable as error:  # holding now would overwrite the alerts it holds
        unreadable(state_dir, error, "quiet hours hold nothing: alerts go out at once", now)
        held_state = None
    stored = (held_state or {}).get("alerts")
    held = (
        [Alert.from_json(item) for item in stored if isinstance(item, dict)]
        if isinstance(stored, list)
        else []
    )
    if held and watch_states:
        held = _not_acknowledged(held, watch_states)
    if held and spec.get("nag"):
        held = _nags_still_due(spec, held, nag_states, now)
    alerts += _satisfied(spec, talk, nag_states, watch_states, now)
    already = _queued_before(held_state, alerts)
    repeated = [alert for alert in alerts if alert.key in already]
    alerts = [alert for alert in alerts if alert.key not in already]
    held += [alert for alert, _why in holding]
    sending, kept = _gate(spec, alerts, held, talk, held_state, now, repeated)
    held = [alert for alert, _why in kept]
    # Without a readable held.json no occasion can be kept: a fresh one risks a duplicate
    # after a crash, never a message lost to an id already delivered.
    occasion = held_state.get("occasion") if held_state is not None else os.urandom(8).hex()
    queued = _enqueue(spec, state_dir, sending, intake, str(occasion or ""), now)
    # Rule alerts a killed run had queued count as queued now, with the ids they went out with.
    queued_now = [*queued, *_as_queued(already)]
    _remember_watch_messages(watch_states, queued_now)
    told = _note_told(talk, [*sending, *repeated], queued_now, now)
    if sending or repeated:
        _note_nags(spec, nag_states, [*sending, *repeated], queued_now, now)
    _note_nags_queued_before(spec, nag_states, held_state, already, now)
    # The order of the writes is what makes a kill at any point lose nothing and send nothing
    # twice: messages first; then held.json, with what is held, a new occasion (the next run
    # without a claim gets new message ids, a rerun of this one the same) and the rule alerts
    # just queued; then the rule state that stops those alerts being raised again. A rerun
    # killed before the rule state was written raises them again, and finds them queued.
    if held_state is not None and _held_changed(held_state, kept, queued, told):
        since = _held_since(stored)
        write_state(
            state_dir,
            HELD,
            {
                "version": 1,
                "alerts": [
                    held_record(alert, since.get(alert.key) or now, why) for alert, why in kept
                ],
                "occasion": os.urandom(8).hex(),
                "queued": _rule_alerts_queued(queued),
                "told": told,  # the codes told now, until refs.json has them (next run)
            },
        )
    _save_rule_states(spec, state_dir, nag_states, watch_states, intake, now)
    if talk.loaded or nag_states:  # codes of nag items resolved now close now
        talk.state.refs.close_finished(nag_states, watch_states, now)
        talk.state.save(now)
    done(state_dir, intake)
    delivered = _deliver(spec, state_dir, delivery_now) if deliver else {}
    return {
        "findings": len(intake.findings),
        "rejected": len(intake.rejected),
        "alerts": len(alerts),
        "held": len(held),
        "messages": len(queued),
        **delivered,
    }


def _readable_watches(
    spec: CoordinatorSpecJSON, now: datetime
) -> tuple[CoordinatorSpecJSON, dict[str, dict[str, Any]]]:
    """The spec without the watches whose state cannot be read (they stop, loudly, until it
    can), and the state of the others."""
    watch_specs: dict[str, WatchJSON] = spec.get("watches") or {}
    states: dict[str, dict[str, Any]] = {}
    for name in watch_specs:
        try:
            states[name] = load_state(spec["state_dir"], watch_state_file(name), shapes.WATCH, now)
        except StateUnreadable as error:
            unreadable(spec["state_dir"], error, f"watch {name} is stopped until it can be", now)
    if len(states) < len(watch_specs):
        spec = {**spec, "watches": {n: w for n, w in watch_specs.items() if n in states}}
    return spec, states


RULE_KEYS = (NAG_KEY, WATCH_KEY)
"""Keys of alerts that rule state raises (with a counter in them): raised again, the same key
means the same alert."""


def _rule_alerts_queued(queued: list[Queued]) -> dict[str, dict[str, str]]:
    """Rule alert key -> {channel: message id} of the messages that name it (one the caps cut
    is raised again next time, as it should be)."""
    found: dict[str, dict[str, str]] = {}
    for channel, message_id, _keys, named in queued:
        for key in named:
            if key.startswith(RULE_KEYS):
                found.setdefault(key, {})[channel] = message_id
    return found


def _queued_before(held_state: dict[str, Any] | None, alerts: list[Alert]) -> dict[str, Any]:
    """Of `alerts`, those the previous run queued before it was killed ahead of writing the
    rule state that remembers them: key -> {channel: message id}."""
    recorded = (held_state or {}).get("queued")
    if not isinstance(recorded, dict) or not recorded:
        return {}
    return {
        alert.key: recorded[alert.key]
        for alert in alerts
        if alert.key in recorded and isinstance(recorded[alert.key], dict)
    }


def _as_queued(already: dict[str, Any]) -> list[Queued]:
    return [
        (str(channel), str(message_id), [key], [key])
        for key, ids in already.items()
        for channel, message_id in ids.items()
    ]


def _not_acknowledged(held: list[Alert], watch_states: dict[str, dict[str, Any]]) -> list[Alert]:
    """Held alerts, less the watch alerts whose instance was acknowledged since quiet hours held
    them: those are not brought up again in the morning. (A satisfied or settled instance keeps
    its alert: "the file arrived" is news too.)"""
    from runner.rules.watchstate import WatchState

    kept = []
    for alert in held:
        watch, key = alert.evidence.get("watch"), alert.evidence.get("key")
        state = watch_states.get(watch) if isinstance(watch, str) else None
        instance = (state or {}).get("instances", {}).get(key) if isinstance(key, str) else None
        acknowledged = (instance or {}).get("state") == WatchState.ACKNOWLEDGED
        if alert.source == VIGIL_SOURCE and acknowledged:
            print(f"coordinator: held alert dropped: watch {watch} {key} was acknowledged",
                  file=sys.stderr)  # fmt: skip
        else:
            kept.append(alert)
    return kept


def _nags_still_due(
    spec: CoordinatorSpecJSON,
    held: list[Alert],
    nag_states: dict[str, dict[str, Any]],
    now: datetime,
) -> list[Alert]:
    """Held alerts, less the nags whose item a finding since has resolved (the reminder was
    done overnight): the morning message names only what is still due. A nag whose rule state
    cannot be read is kept: it is said when the rule runs."""
    if not any(alert.key.startswith(NAG_KEY) for alert in held):
        return held
    from runner.rules.nag import NagRuleSpec, nag_of

    rules = spec.get("nag") or {}
    states = dict(nag_states)  # this run's, else read here: only read, so never written back
    kept = []
    for alert in held:
        nag = nag_of(alert.key)
        if nag is None or nag.rule not in rules or alert.source != rules[nag.rule]["source"]:
            kept.append(alert)
            continue
        if nag.rule not in states:
            state = _nag_state(
                spec, NagRuleSpec(nag.rule, rules[nag.rule], spec.get("timezone")), now
            )
            if state is None:
                kept.append(alert)
                continue
            states[nag.rule] = state
        record = (states[nag.rule].get("items") or {}).get(nag.item)
        if isinstance(record, dict) and record.get("status") in ("resolved", "stopped"):
            status = record["status"]
            print(f"coordinator: held alert dropped: nag {nag.rule} {nag.item!r} is {status}",
                  file=sys.stderr)  # fmt: skip
        else:
            kept.append(alert)
    return kept


def _has_absence(watch_specs: dict[str, WatchJSON]) -> bool:
    return any(watch.get("absence") for watch in watch_specs.values())


class _Talk:
    """The state of answering back (runner.talk.state), read only by a pass that needs it."""

    def __init__(self, state_dir: str, now: datetime) -> None:
        self.state_dir, self.now = state_dir, now
        self._state: Any = None
        self.closed: set[str] = set()
        """Subjects of items the person closed in this run: held alerts about them go."""

    @property
    def loaded(self) -> bool:
        return self._state is not None

    @property
    def state(self) -> Any:
        if self._state is None:
            from runner.talk.state import Talk

            self._state = Talk(self.state_dir, self.now)
        return self._state


def _held_changed(
    held_state: dict[str, Any],
    kept: list[tuple[Alert, str]],
    queued: list[Queued],
    told: dict[str, Any],
) -> bool:
    """Whether held.json needs writing: something was queued or told (now or by the run
    before), or what is held changed; a heartbeat that holds the same as before writes
    nothing."""
    if queued or told or held_state.get("queued") or held_state.get("told"):
        return True
    stored = held_state.get("alerts")
    before = [(a.get("key"), a.get("by")) for a in stored if isinstance(a, dict)] if isinstance(
        stored, list) else []  # fmt: skip
    return before != [(alert.key, why) for alert, why in kept]


def _held_since(stored: object) -> dict[str, datetime]:
    """When each alert held before was first held (key -> moment)."""
    since: dict[str, datetime] = {}
    for record in stored if isinstance(stored, list) else ():
        moment = clock.parse_iso(record.get("heldSince")) if isinstance(record, dict) else None
        if moment is not None:
            since[str(record.get("key"))] = moment
    return since


def _gate(
    spec: CoordinatorSpecJSON,
    alerts: list[Alert],
    held: list[Alert],
    talk: _Talk,
    held_state: dict[str, Any] | None,
    now: datetime,
    repeated: list[Alert],
) -> tuple[list[Alert], list[tuple[Alert, str]]]:
    """(to send now, to hold and why): runner.talk.passes.gated, for a pass with something."""
    if not (alerts or held or repeated or (held_state or {}).get("told")):
        return [], []
    from runner.talk.passes import gated

    return gated(spec, alerts, held, talk.state, held_state, now, repeated, talk.closed)


def _satisfied(
    spec: CoordinatorSpecJSON,
    talk: _Talk,
    nag_states: dict[str, dict[str, Any]],
    watch_states: dict[str, dict[str, Any]],
    now: datetime,
) -> list[Alert]:
    """A watch that alerted and is satisfied in this pass: a line when the config asks."""
    stamp = iso(now)
    if not any(
        instance.get("state") == "satisfied" and instance.get("at") == stamp
        for state in watch_states.values()
        for instance in (state.get("instances") or {}).values()
    ):
        return []
    from runner.talk.passes import satisfied_lines

    return satisfied_lines(spec, talk.state, nag_states, watch_states, now)


# -- rules: imported only by a run with findings or watch state -------------------------------

CONTROL_KINDS = ("ack", "arm", "watch-deadline")
"""Findings from `vigil` that change watch state instead of being delivered."""


def _apply_rules(
    spec: CoordinatorSpecJSON,
    claimed: list[Claimed],
    nag_states: dict[str, dict[str, Any]],
    watch_states: dict[str, dict[str, Any]],
    now: datetime,
    *,
    claim: str | None = None,
    talk: _Talk | None = None,
    holding: list[tuple[Alert, str]] | None = None,
) -> list[Alert]:
    """The alerts of this run's findings (nag rules, watches, replies) and of the watches'
    clocks. Rule state is updated in place; _save_rule_states writes it."""
    watch_specs: dict[str, WatchJSON] = spec.get("watches") or {}
    files = _file_watches(watch_specs)
    _settle(spec, watch_specs, watch_states, now)
    alerts: list[Alert] = []
    for item in claimed:
        finding = item.finding
        if finding.get("source") == VIGIL_SOURCE and finding.get("kind") in CONTROL_KINDS:
            alerts += _control(watch_specs, files, watch_states, finding, now)
            continue
        talking = finding.get("source") == VIGIL_SOURCE and finding.get("kind") in TALK_KINDS
        if talking or _clears(spec, finding):
            if talk is not None and holding is not None:
                alerts += _talk_control(spec, finding, talk, nag_states, watch_states, holding,
                                        now, alerts)  # fmt: skip
            continue
        watched, matched = _watches_of_source(watch_specs, watch_states, finding, now)
        alerts += matched
        armed = _arm(files, watch_states, finding, now)
        alerts += _alerts_for(spec, finding, nag_states, now, claim=claim, handled=armed or watched)
    return alerts + _due_watch_alerts(watch_specs, files, watch_states, now)


def _talk_control(
    spec: CoordinatorSpecJSON,
    finding: dict[str, Any],
    talk: _Talk,
    nag_states: dict[str, dict[str, Any]],
    watch_states: dict[str, dict[str, Any]],
    holding: list[tuple[Alert, str]],
    now: datetime,
    earlier: list[Alert],
) -> list[Alert]:
    """A finding that answers back (runner.talk.passes): nag rule states it changes are
    loaded into `nag_states` (written with the others)."""
    from runner.talk.passes import apply_control

    def nag_state(rule: str) -> dict[str, Any] | None:
        if rule not in nag_states and rule in (spec.get("nag") or {}):
            from runner.rules.nag import NagRuleSpec

            rule_spec = NagRuleSpec(rule, spec["nag"][rule], spec.get("timezone"))
            state = _nag_state(spec, rule_spec, now)
            if state is not None:
                nag_states[rule] = state
        return nag_states.get(rule)

    alerts, hold, closed = apply_control(
        spec, finding, talk.state, nag_state, watch_states, now, earlier
    )
    holding += hold
    talk.closed |= closed
    return alerts


def _note_told(talk: _Talk, alerts: list[Alert], queued: list[Queued], now: datetime) -> Any:
    if not talk.loaded:
        return {}
    from runner.talk.passes import note_told

    return note_told(talk.state, alerts, queued, now)


def _clears(spec: CoordinatorSpecJSON, finding: dict[str, Any]) -> bool:
    """A finding saying a source's condition (its `dedup_key`) is over: `"resolved": true`."""
    if finding.get("resolved") is not True:
        return False
    policy = (spec["coordinator"].get("sources") or {}).get(str(finding.get("source")))
    return bool(policy and policy.get("dedup_key"))


def _watches_of_source(
    watch_specs: dict[str, WatchJSON],
    states: dict[str, dict[str, Any]],
    finding: dict[str, Any],
    now: datetime,
) -> tuple[bool, list[Alert]]:
    """Tell the watches of the finding's source: absence watches that it was seen, match
    watches that it matched. Returns whether a match watch reads the source (its findings are
    then not also delivered as they are) and the match alerts."""
    if not watch_specs:
        return False, []
    from runner.rules.watches import kind_of, on_match, on_source_seen, source_of

    watched = False
    alerts: list[Alert] = []
    for name, watch in watch_specs.items():
        kind = kind_of(watch)
        if kind == "absence" and source_of(watch) == finding.get("source"):
            on_source_seen(name, states[name], now)
        elif kind == "match" and source_of(watch) == finding.get("source"):
            watched = True
            alerts += on_match(name, watch, states[name], finding, now)
    return watched, alerts


def _due_watch_alerts(
    watch_specs: dict[str, WatchJSON],
    files: dict[str, FileWatchSpec],
    states: dict[str, dict[str, Any]],
    now: datetime,
) -> list[Alert]:
    """The alerts no finding brings: armed file watches whose file appeared or deadline
    passed, sources silent for too long, repeats and escalations due."""
    if not watch_specs:
        return []
    from runner.rules.watches import check_absence, follow_up, kind_of

    alerts: list[Alert] = []
    if files:
        from runner.rules.pending import check, pending

        for name, file_watch in files.items():
            if pending(states[name]):
                alerts += check(file_watch, states[name], now)
    for name, watch in watch_specs.items():
        if kind_of(watch) == "absence":
            alerts += check_absence(name, watch, states[name], now)
        alerts += follow_up(name, watch, states[name], now)
    return alerts


def _control(
    watch_specs: dict[str, WatchJSON],
    files: dict[str, FileWatchSpec],
    states: dict[str, dict[str, Any]],
    finding: dict[str, Any],
    now: datetime,
) -> list[Alert]:
    """`vigil ack`, `vigil watch arm` and deadline results."""
    from runner.rules.watches import on_ack, on_deadline_result

    name = str(finding.get("watch"))
    if name not in watch_specs:
        print(f"coordinator: control finding for unknown watch {name!r} ignored", file=sys.stderr)
        return []
    kind = finding["kind"]
    key = finding.get("key")
    if kind == "ack":
        on_ack(name, states[name], None if key is None else str(key), now)
    elif kind == "arm" and name in files and key is not None:
        from runner.rules.pending import arm_key

        within = finding.get("within")
        by = finding.get("by")
        arm_key(
            files[name],
            states[name],
            str(key),
            now,
            within if isinstance(within, int) else None,
            by if by == "its schedule" else "vigil watch arm",  # a fixed text: no finding's
        )
    elif kind == "watch-deadline":
        return on_deadline_result(name, watch_specs[name], states[name], finding, now)
    return []


def _settle(
    spec: CoordinatorSpecJSON,
    watch_specs: dict[str, WatchJSON],
    states: dict[str, dict[str, Any]],
    now: datetime,
) -> None:
    """Mark alerted watch instances delivered once the ledger has all their messages."""
    if not states:
        return
    from runner.rules.watchstate import FIRING

    waiting = [
        n
        for n, s in states.items()
        if any(
            i.get("messages") and i.get("state") in FIRING
            for i in (s.get("instances") or {}).values()
        )
    ]
    if not waiting:
        return
    from runner.delivery.ledger import DeliveryLedger
    from runner.rules.watches import settle

    entries = DeliveryLedger.load(spec["state_dir"]).entries
    for name in waiting:
        settle(name, watch_specs[name], states[name], entries, now)


def _remember_watch_messages(states: dict[str, dict[str, Any]], queued: list[Queued]) -> None:
    for channel, message_id, keys, _named in queued:
        for key in keys:
            if key.startswith(WATCH_KEY):
                name = key.split(":")[1]
                if name in states:
                    from runner.rules.watches import remember_messages

                    remember_messages(states[name], key, {channel: message_id})


def _file_watches(watch_specs: dict[str, WatchJSON]) -> dict[str, FileWatchSpec]:
    files = {name: watch for name, watch in watch_specs.items() if watch.get("file")}
    if not files:
        return {}
    from runner.rules.pending import FileWatchSpec

    return {name: FileWatchSpec(name, watch) for name, watch in files.items()}


def _arm(
    watches: dict[str, FileWatchSpec],
    states: dict[str, dict[str, Any]],
    finding: dict[str, Any],
    now: datetime,
) -> bool:
    """Arm the file watches this finding's source arms; True if any did."""
    source = finding.get("source")
    arming = [name for name, w in watches.items() if w.source is not None and w.source == source]
    if not arming:
        return False
    from runner.rules.pending import arm

    for name in arming:
        arm(watches[name], finding, states[name], now)
    return True


def _alerts_for(
    spec: CoordinatorSpecJSON,
    finding: dict[str, Any],
    states: dict[str, dict[str, Any]],
    now: datetime,
    *,
    claim: str | None = None,
    handled: bool = False,
) -> list[Alert]:
    source = str(finding["source"])
    policy = (spec["coordinator"].get("sources") or {}).get(source)
    rules = spec.get("nag") or {}
    matching = [name for name, rule in rules.items() if str(rule["source"]) == source]
    alerts: list[Alert] = []
    if matching:
        from runner.rules.nag import NagRuleSpec, apply_rule

        for name in matching:
            rule = NagRuleSpec(name, rules[name], spec.get("timezone"))
            if name not in states:
                try:
                    states[name] = load_state(spec["state_dir"], rule.state_file, shapes.NAG, now)
                except StateUnreadable as error:  # an empty one would reset every nag count
                    why = f"nag rule {name} is stopped until it can be"
                    unreadable(spec["state_dir"], error, why, now)
                    continue
            if claim is not None and states[name].get("claim") == claim:
                # A killed run saved this rule's state for this claim, after queuing the
                # messages it caused: applying it again would count every nag twice.
                continue
            alerts += apply_rule(rule, finding, states[name], now)
    if not matching and (not handled or isinstance(finding.get("message"), str)):
        alerts.append(_as_is(finding, source, policy))
    for alert in alerts:
        alert.urgent = alert.urgent or bool(policy and policy.get("urgent"))
    return alerts


def _save_rule_states(
    spec: CoordinatorSpecJSON,
    state_dir: str,
    nag_states: dict[str, dict[str, Any]],
    watch_states: dict[str, dict[str, Any]],
    intake: Intake,
    now: datetime,
) -> None:
    """Prune and write the nag state the findings touched (with the claim that moved it, so a
    rerun of that claim does not move it again), every non-empty watch state, and when each
    source last reported (deadline watches on a source read it)."""
    claimed = intake.findings
    if nag_states:
        from runner.rules.nag import NagRuleSpec, prune

        for name, state in nag_states.items():
            rule = NagRuleSpec(name, spec["nag"][name], spec.get("timezone"))
            prune(rule, state, now)
            if intake.claim is not None:
                state["claim"] = intake.claim
            write_state(state_dir, rule.state_file, state)
    if any(watch_states.values()):
        from runner.rules.pending import prune as prune_watch

        for name, state in watch_states.items():
            prune_watch(state, now)
            if state:
                write_state(state_dir, watch_state_file(name), state)
    if claimed:
        try:
            sources = load_state(state_dir, SOURCES, shapes.SOURCES, now)
        except StateUnreadable as error:
            unreadable(state_dir, error, "when each source last reported is not updated", now)
            return
        for item in claimed:
            source = str(item.finding.get("source"))
            seen = sources.get(source)
            count = int(seen.get("count") or 0) if isinstance(seen, dict) else 0
            sources[source] = {"lastSeen": iso(now), "count": count + 1}
        write_state(state_dir, SOURCES, sources)


# -- alerts, messages and delivery --------------------------------------------------------------


def _as_is(finding: dict[str, Any], source: str, policy: SourcePolicyJSON | None = None) -> Alert:
    """A finding no rule handles: its `message`, or a short rendering of it (never dropped).
    With the source's `dedup_key`, its subject is the condition it reports: one open item
    however often it is reported (runner.talk.gate)."""
    text = finding.get("message")
    if not isinstance(text, str) or not text.strip():
        body = {k: v for k, v in finding.items() if k not in ("source", "timestamp")}
        text = f"{source}: {json.dumps(body, ensure_ascii=False)}"
        if len(text) > GENERIC_TEXT_LIMIT:
            text = text[: GENERIC_TEXT_LIMIT - 1] + "…"
    return Alert(
        text=text.strip(),
        source=source,
        priority=finding_priority(finding),
        urgent=finding.get("urgent") is True,
        key=str(finding.get("id") or ""),
        evidence=finding,
        subject=dedup_subject(policy, finding, source),
    )


def _rejection(item: Rejected) -> Alert:
    return _own_alert(f"rejected inbox file {item.name}: it {item.reason}", f"rejected:{item.name}")


def _own_alert(text: str, key: str) -> Alert:
    return Alert(text=text, source=VIGIL_SOURCE, priority=ALERT_PRIORITY, key=key)


def _batch(intake: Intake, alerts: list[Alert], occasion: str) -> str:
    """What message ids derive from: the claim (unique, and the same for a rerun after a
    crash), or for a run with nothing claimed (held alerts, watch clocks) the occasion that
    held.json names (replaced whenever a run queues messages, see _process_claim): the same
    alert held again another night is a new message, a rerun is not. Without an occasion (a
    held.json from before occasions), the alerts' keys."""
    if intake.claim is not None:
        return intake.claim
    if occasion:  # a rerun composing otherwise finds its message (see _enqueue)
        return _occasion_batch(occasion)
    from runner.digest import hexdigest

    keys = sorted(alert.key for alert in alerts)
    return hexdigest("\0".join([occasion, *keys]))


def _occasion_batch(occasion: str) -> str:
    return f"occasion {occasion}"


Queued = tuple[str, str, list[str], list[str]]
"""A queued message: (channel, message id, keys of its alerts, keys of the alerts it names;
caps count the rest)."""


def _enqueue(
    spec: CoordinatorSpecJSON,
    state_dir: str,
    alerts: list[Alert],
    intake: Intake,
    occasion: str,
    now: datetime,
) -> list[Queued]:
    """Queue one message per channel. A rerun of a killed run's claim composes the same ids;
    when one is already queued without some of the rerun's alerts (a watch's file arrived in
    between), those go in a follow-up: `batch` + rest 1, rest 2, ... until a follow-up not
    queued before takes all that is left, so every further rerun finds them carried."""
    if not alerts:
        return []
    from runner.compose import compose

    batch = _batch(intake, alerts, occasion)
    release = _occasion_batch(occasion) if intake.claim is not None and occasion else None
    queued = []
    for message in compose(spec, alerts, now):
        carrying = alerts
        if release is not None:  # a release of held alerts killed before held.json moved on
            before = _released(state_dir, message, release)
            if before is not None:
                queued.append(before)
                carrying = _not_in(alerts, message.keys, before[2])
                if not carrying:
                    continue
                message = _composed_for(spec, message.channel, carrying, now)
        queued.append(_queue(state_dir, message, carrying, batch, now))
        missing = _not_in(alerts, message.keys, queued[-1][2])
        rest = 0
        while missing:
            rest += 1
            follow_up = _composed_for(spec, message.channel, missing, now)
            queued.append(_queue(state_dir, follow_up, missing, f"{batch}\0rest {rest}", now))
            missing = _not_in(missing, message.keys, queued[-1][2])
    return queued


def _not_in(alerts: list[Alert], keys: list[str], carried: list[str]) -> list[Alert]:
    """Of `alerts`, those with one of `keys` that `carried` lacks."""
    wanted, out = set(keys), set(carried)
    return [a for a in alerts if a.key in wanted and a.key not in out]


def _composed_for(
    spec: CoordinatorSpecJSON, channel: str, alerts: list[Alert], now: datetime
) -> Outgoing:
    """The message to `channel` about `alerts` (routed there already)."""
    from runner.compose import compose

    [message] = [m for m in compose(spec, alerts, now) if m.channel == channel]
    return message


def _released(state_dir: str, message: Outgoing, release: str) -> Queued | None:
    """The message a run without a claim queued to this channel under this occasion, if any:
    held.json still names the occasion only when that run was killed before writing it, so
    what it carried is out already (and counts as told)."""
    from runner.delivery.outbox import carried

    message_id = message.message_id(release)
    named, keys = carried(state_dir, message_id)
    keys = named if keys is None else keys
    if keys is None:
        return None
    return (message.channel, message_id, keys, named or [])


def _queue(
    state_dir: str, message: Outgoing, alerts: list[Alert], batch: str, now: datetime
) -> Queued:
    from runner.delivery.message import Message
    from runner.delivery.outbox import enqueue

    evidence = [a.evidence for a in alerts if a.evidence]
    message_id = message.message_id(batch)
    named, keys = enqueue(
        state_dir,
        Message(
            id=message_id,
            channel=message.channel,
            title=message.title,
            body=message.body,
            urgent=message.urgent,
            created=iso(now),
            sources=message.sources,
            count=len(message.keys),
            evidence={"findings": evidence} if evidence else None,
            named=list(message.named),
            keys=list(message.keys),
        ),
    )
    # What the message as first queued carries and names: a rerun may compose it otherwise.
    if keys is None and named is not None:  # queued before `keys` were kept: what it named
        keys = named  # (one it counted in "+N more" may be named again: twice beats never)
    return (
        message.channel,
        message_id,
        list(message.keys) if keys is None else keys,
        list(message.named) if named is None else named,
    )


def _note_nags(
    spec: CoordinatorSpecJSON,
    nag_states: dict[str, dict[str, Any]],
    sending: list[Alert],
    queued: list[Queued],
    now: datetime,
) -> None:
    """A nag step counts once its alert is named in a message to any channel; one that caps
    cut waits (and goes first next time), its item as if not nagged."""
    rules = spec.get("nag") or {}
    if not rules:
        return
    from runner.rules.nag import NagRuleSpec, nag_of, told, withheld

    named = {key for *_, named_keys in queued for key in named_keys}
    for alert in sending:
        nag = nag_of(alert.key)
        if nag is None or nag.rule not in rules:
            continue
        rule = NagRuleSpec(nag.rule, rules[nag.rule], spec.get("timezone"))
        if nag.rule not in nag_states:
            state = _nag_state(spec, rule, now)
            if state is None:
                continue
            nag_states[nag.rule] = state
        if alert.key in named:
            told(rule, nag_states[nag.rule], nag, now)
        else:
            withheld(nag_states[nag.rule], nag, now)


def _note_nags_queued_before(
    spec: CoordinatorSpecJSON,
    nag_states: dict[str, dict[str, Any]],
    held_state: dict[str, Any] | None,
    raised_again: dict[str, Any],
    now: datetime,
) -> None:
    """Nags the previous run queued (held.json's `queued`) and was killed before counting, that
    this run did not raise again (a heartbeat after a killed morning release): they were
    named, so they count now, before this run's held.json forgets them. Counted already (the
    usual case), they are left alone: the rule state is read, not written."""
    recorded = (held_state or {}).get("queued")
    if not isinstance(recorded, dict):
        return
    keys = [key for key in recorded if key.startswith(NAG_KEY) and key not in raised_again]
    if not keys:
        return
    from runner.rules.nag import NagRuleSpec, nag_of, told

    rules = spec.get("nag") or {}
    for key in keys:
        nag = nag_of(key)
        if nag is None or nag.rule not in rules:
            continue
        rule = NagRuleSpec(nag.rule, rules[nag.rule], spec.get("timezone"))
        state = nag_states.get(nag.rule) or _nag_state(spec, rule, now)
        if state is None:
            continue
        items = state.get("items")
        record = items.get(nag.item) if isinstance(items, dict) else None
        if isinstance(record, dict) and int(record.get("nagCount") or 0) < nag.count:
            nag_states[nag.rule] = state  # written with the rule states
            told(rule, state, nag, now)


def _nag_state(
    spec: CoordinatorSpecJSON, rule: NagRuleSpec, now: datetime
) -> dict[str, Any] | None:
    """The rule's state as it was saved; None when it cannot be read (said when the rule runs,
    and its state is never overwritten)."""
    try:
        return load_state(spec["state_dir"], rule.state_file, shapes.NAG, now)
    except StateUnreadable:
        return None


def _deliver(spec: CoordinatorSpecJSON, state_dir: str, now: datetime) -> dict[str, int]:
    outbox = os.path.join(state_dir, OUTBOX)
    if not os.path.isdir(outbox) or not any(n.endswith(".json") for n in os.listdir(outbox)):
        return {"delivered": 0}
    from runner.delivery.outbox import deliver_due

    credentials = os.environ.get("CREDENTIALS_DIRECTORY") or None
    return deliver_due(spec, state_dir, now, credentials).counts()

"""What the compiler writes and the runner reads, defined once: the spec version, unit names, the
state directory's layout, the fields a command channel offers and the defaults of nag rules.

Both sides import it and it imports nothing: every runner start loads it. The specs' shapes,
as types, are in runner/spectypes.py (imported by the runner for type checking only).
"""

from __future__ import annotations

SPEC_VERSION = 1
"""The version of the JSON specs the compiler writes for the runner; a runner refuses others."""

# --- unit names: `<config>-<job>`, `<config>-coordinator`, `<config>-watch-<watch>`,
# `<config>-forward`, `<config>-failure@<failed unit>` (stems; the suffix says which unit of the
# stem).


def job_unit(config: str, job: str) -> str:
    return f"{config}-{job}"


def coordinator_unit(config: str) -> str:
    return f"{config}-coordinator"


def watch_unit(config: str, watch: str) -> str:
    return f"{config}-watch-{watch}"


def forward_unit(config: str) -> str:
    """A fleet host's forwarder (`fleet:`): its inbox's findings and its jobs' runs to NATS,
    started by the inbox's path unit and by its heartbeat timer."""
    return f"{config}-forward"


def reply_unit(config: str, source: str) -> str:
    """A reply source (`replies:`): a long-running service turning what the person answers
    into reply findings in the inbox."""
    return f"{config}-reply-{source}"


def preflight_unit(config: str, job: str) -> str:
    """A job's preflight: its `check:` in its sandbox, `preflight:` before each firing."""
    return f"{config}-preflight-{job}"


def try_unit(config: str, job: str, tag: str) -> str:
    """A try of a job (`vigil try`, canary applies): a copy of its service, run once; `tag`
    keeps two tries of one job apart."""
    return f"{job_unit(config, job)}.try-{tag}"


def target_of(config: str, unit: str) -> str:
    """What a unit of `config` runs: a job's name, `coordinator` or `watch-<watch>`
    (bruba-reminder-check.service -> reminder-check)."""
    return unit.removesuffix(".service").removeprefix(f"{config}-")


def failure_unit(config: str) -> str:
    """The stem of the failure handler's template, `<config>-failure@.service`."""
    return f"{config}-failure"


def rollback_unit(config: str) -> str:
    """The stem of the automatic rollback's template, `<config>-rollback@.service`; its
    instance names the generation to go back to (`release.auto_rollback`)."""
    return f"{config}-rollback"


def failure_instance(config: str, failed: str) -> str:
    """The handler instance systemd starts for `failed` (OnFailure=...@%n.service)."""
    return service(f"{failure_unit(config)}@{failed}")


def service(stem: str) -> str:
    return f"{stem}.service"


def timer(stem: str) -> str:
    return f"{stem}.timer"


def path_unit(stem: str) -> str:
    return f"{stem}.path"


# --- the state directory (`state_dir:`) -----------------------------------------------------

INBOX = "inbox"
"""Findings arrive here (renamed in); the coordinator's path unit watches it."""
PROCESSING = "processing"
"""Claims of inbox files a coordinator run is working on."""
OUTBOX = "outbox"
"""Messages waiting for delivery, one file each."""
DEAD = "dead"
"""In the outbox: messages that used up their attempts."""
STATE = "state"
"""Rule and delivery state, one JSON file each."""
REJECTED = "rejected"
"""Inbox files (and, under state/, state files) that could not be used, with their reasons."""
COORDINATOR_LOCK = ".coordinator.lock"
"""Held by a coordinator run for its whole pass (and by `vigil export` while it reads the
state directory, so that it copies the state between two passes)."""
TMP = "tmp"
"""Temp files renamed into place (same file system as everything above)."""
RUNS = "runs.jsonl"
"""One JSON line per run (rotated to runs.jsonl.1)."""
OUTGOING = "outgoing"
"""Fleet: findings the forwarder took from the inbox, in order, until the stream acknowledges
each (a host cut off from NATS keeps them here; the inbox itself stays empty)."""
FLEET_WORK = "fleet-coordinator"
"""Fleet: the active coordinator's working state directory, mirrored to JetStream KV."""
TRIES = "tries"
"""A try's own directory per try, shaped like a state directory: its findings, its run record
and a copy of state/ for the coordinator's dry run. Removed when the try ends."""


GENERATION_META = "generation.json"
"""In an installed generation's directory (`<generation>/specs/..`): when it was made, from
which generation, why, and which jobs it changed."""
PREFLIGHT_STATE = "preflight.json"
"""Under state/: which jobs' preflights fail now, since when, and whether that was said."""
ROLLBACK_REQUEST = "rollback.json"
"""Under state/: the automatic rollback the failure handler asked for, and why; read by the
rollback unit (`vigil rollback N --auto`)."""

SOURCES = "sources.json"
"""Under state/: when each source last reported (absence watches, deadlines by source)."""
FIRINGS = "firings.json"
"""Under state/: up to when the heartbeat compared each job's timer firings with its runs."""
PAUSES = "pauses.json"
"""Under state/: jobs paused after `pause_after` failures in a row (why, since when), and their
failures runs.jsonl has no line for (runs systemd killed)."""
REFS = "refs.json"
"""Under state/: the reference codes (`[r7]`) of the items messages named; see runner.talk.refs."""
SILENCES = "silences.json"
"""Under state/: silences made at run time (`vigil silence add`, `mute` replies), outside any
generation: a rollback neither revives nor deletes them."""
SILENCED = "silenced.json"
"""Under state/: the latest alerts silences, inhibit rules, maintenance windows and snoozes held
back or dropped (`vigil inbox --silenced`)."""
REPLIES = "replies.json"
"""Under state/: the ids of the replies applied last (a reply source that writes one again
after a crash is not applied twice)."""


def reply_state_file(source: str) -> str:
    """Under state/: a reply source's offset (the updates it has written to the inbox) and
    the senders it ignored; its service is the one writer."""
    return f"reply-{source}.json"


FAILING = "failing"
"""Under state/: one empty-ish file per job whose last run failed, when its recovery is to be
announced (`notify_recovered`): the failure handler creates it, the job's next successful run
drops a `recovered` finding and removes it."""


def failing_marker(job: str) -> str:
    """Under state/: the marker of a failing job whose recovery is announced."""
    return f"{FAILING}/{job}"


def nag_state_file(rule: str) -> str:
    """Under state/: a nag rule's items and counts."""
    return f"nag-{rule}.json"


def watch_state_file(watch: str) -> str:
    """Under state/: a watch's instances."""
    return f"watch-{watch}.json"


# --- a try: `python -m runner job SPEC --try DIR [--no-model | --check]` ---------------------

TRY_ARG = "--try"
"""Findings and the run record go to DIR (under tries/) instead of the inbox and runs.jsonl."""
NO_MODEL_ARG = "--no-model"
"""Stop before the model call: print the prompt and its estimated tokens instead."""
CHECK_ARG = "--check"
"""Run the job's `check:` command instead of the job (canary applies)."""
PREFLIGHT_ARG = "--preflight"
"""`python -m runner job SPEC --preflight`: run the job's `check:` and alert when it fails
(once, until it passes again); see runner.preflight."""

RUNNER_ENTRY = "from runner.__main__ import entry; entry()"
"""The code a generated runner script gives `python -I -c`, followed by KIND SPEC [ARGS]: the
same as `python -I -m runner`, without runpy finding the module (~5 ms of every start)."""

# --- the coordinator's service ------------------------------------------------------------

DEFAULT_HEARTBEAT = 900
"""Default seconds between the coordinator's heartbeat runs (`coordinator.heartbeat`)."""
COORDINATOR_PASS_TIMEOUT = 600
"""Seconds one coordinator pass (inbox to delivered) may take before it is killed."""
COORDINATOR_LINGER = 60
"""Default seconds a coordinator started by a finding stays for the next one (`linger:`)."""
COORDINATOR_LINGER_MAX = 900
"""The longest `linger:`; also how long one warm run may go on handling findings before it
exits and leaves the next finding to a fresh start (which reads the live generation anew)."""

# --- several machines (`fleet:`) -------------------------------------------------------------

FLEET_LEASE = 10
"""Default seconds of the fleet coordinator's leader lease (`fleet.lease`): a coordinator host
that stops renewing it is replaced after this long."""
FLEET_LEASE_MIN = 3
"""The shortest `fleet.lease`."""
FLEET_LEASE_MAX = 300
"""The longest `fleet.lease`."""
FORWARD_TIMEOUT = 300
"""Seconds one forwarder run (inbox and run records to NATS) may take before it is killed."""

# --- alert kinds: what `kind:` in inhibit and maintenance matchers may name ------------------

ALERT_KINDS = (
    "failure",
    "paused",
    "missed",
    "budget",
    "rejected",
    "preflight",
    "nag",
    "watch",
    "recovered",
    "finding",
    "token-spike",
    "state-rejected",
    "claim-quarantined",
    "finding-rejected",
    "host-silent",
    "reply-stopped",
)
"""The kinds of alert the coordinator tells apart: vigil's own alerts by their finding's
`kind` (a failed or paused job, a missed firing, a budget, a preflight, a token spike, a state
file set aside, a quarantined claim, a finding NATS refused, a silent fleet host, a reply source
that cannot work, a rejected inbox file), a nag item, a watch's alert, a recovery, and any
other finding."""
# --- reply sources (`replies:`) ---------------------------------------------------------------

REPLY_KINDS = ("telegram", "signal", "command")
"""The kinds of reply source: exactly one of them per entry of `replies:`."""
REPLY_FINDING_KIND = "reply"
"""The `kind` of the control finding a reply source writes (source `vigil`)."""
RECOVERED_KIND = "recovered"
"""The `kind` of the finding a job's good run after failures drops (runner.recovery)."""
PERSON_KINDS = (REPLY_FINDING_KIND, "snooze", "silence-add", "silence-expire")
"""Control findings (source `vigil`) by which the person answers back: a reply, `vigil snooze`
and `vigil silence add|expire`."""
TALK_KINDS = (*PERSON_KINDS, RECOVERED_KIND)
"""The control findings runner.talk.control applies."""
TELEGRAM_API = "https://api.telegram.org"
"""The Bot API a `telegram` reply source polls unless it names another (`api:`)."""

# --- command channels -----------------------------------------------------------------------

COMMAND_FIELDS = ("message", "title", "id", "channel", "source", "count", "evidence_file")
"""The placeholders a command channel's argv may use, as plain `{name}`."""

# --- defaults: what the model fills in, and what the runner reads when a spec leaves it out ----

CHANNEL_TIMEOUT = 30
"""Seconds one delivery attempt to a channel may take."""
DELIVERY_ATTEMPTS = 5
"""Attempts before a message is dead-lettered."""
DELIVERY_BACKOFF = 30
"""Seconds before the first retry; doubled after each failure."""
DELIVERY_MAX_BACKOFF = 3600
"""The longest wait between two attempts."""
NAG_RESOLVE_MISSING = True
"""An item missing from a newer finding of its source is marked resolved."""

NAG_KEY_FIELD = "id"
"""The item field that identifies an item across findings."""
NAG_RETENTION = 30 * 86400
"""Seconds a resolved item is kept in state before it is pruned."""

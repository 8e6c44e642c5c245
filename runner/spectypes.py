"""The JSON specs the compiler writes and the runner reads, as types: one TypedDict per spec kind
and per section of one (the rest of the contract is runner/contract.py).

The compiler's builders (compiler/generate/specs.py) return them and the runner's readers take
them; tests/test_spectypes.py compiles configs with every kind of watch and channel and checks
each spec against its type, key by key, so the two cannot drift apart.

`NotRequired` (or `total=False`) marks a key that a spec written by an older vigil of the same
spec version lacks, that only some specs of a kind have, or that only a hand-written spec has:
the runner reads those with a default.

The runner imports this module only for type checking: `typing` and building these classes cost
milliseconds, and a coordinator run is mostly start-up. No `from __future__ import annotations`
here: with annotations kept as strings, Python 3.11 cannot tell a NotRequired key from a
required one at run time, and the test asks it.
"""

from typing import Literal, NotRequired, TypedDict

SpecKind = Literal["job", "coordinator", "watch", "failure", "forward", "reply"]
ReplyKind = Literal["telegram", "signal", "command"]
"""runner.contract.REPLY_KINDS as a type."""
OutputMode = Literal["findings", "log", "message"]
"""How a job's stdout is read (runner.spec.OUTPUT_MODES at run time)."""
BudgetScope = Literal["job", "global"]
ScalarJSON = str | int | float | bool


# --- what every spec has ----------------------------------------------------------------------


class SpecJSON(TypedDict):
    spec: int
    """SPEC_VERSION of runner/contract.py."""
    kind: SpecKind
    config: str
    """The config's `name:`."""
    scope: Literal["user", "system"]
    state_dir: str
    """As written, `~` included: the runner expands it for the user it runs as."""
    timezone: str
    """The config's timezone."""
    history_max_bytes: NotRequired[int]
    """The size at which runs.jsonl rotates; never written by the compiler (tests set it)."""


class ServiceSpecJSON(SpecJSON):
    """The spec of a service of its own (the failure handler's service is a template instance,
    named only when it runs)."""

    unit: str
    """The service that runs with this spec, `<stem>.service`."""


class CalendarJSON(TypedDict):
    """A timer's OnCalendar= lines and their zone: the runner finds the timer's previous
    firing from them."""

    on_calendar: list[str]
    timezone: str


# --- several machines: what a fleet host's coordinator and forwarder read ------------------------


class FleetJSON(TypedDict):
    """The config's `fleet:`, `hosts:` and `coordinator.hosts`, as one host was compiled."""

    servers: list[str]
    """NATS URLs (nats:// or tls://), as written."""
    credential: str | None
    """The credential (LoadCredential=) holding `user:password` or a token; None: none."""
    host: str
    """The host this tree was compiled for."""
    hosts: list[str]
    """Every host of the fleet, in the config's order."""
    coordinator_hosts: list[str]
    """The hosts that may run the coordinator, in order of preference."""
    lease: int
    """Seconds of the coordinator leader's lease."""
    config_hash: str
    """sha256 (hex) of the config file's bytes: hosts compiled from different configs differ."""
    tls_ca: NotRequired[str | None]
    """A PEM file of the servers' certificate authorities (`~` not yet expanded); None: the
    system's."""


class FleetHostJSON(TypedDict, total=False):
    """What the job specs of a fleet host have and others lack."""

    host: str
    """The fleet host it was compiled for (`fleet:`)."""
    fleet: FleetJSON
    """A prompt job's: its model calls are booked in the fleet's spend ledger, in NATS."""


class FleetCoordinatorJSON(TypedDict, total=False):
    """What a fleet coordinator's spec has and others lack."""

    fleet: FleetJSON
    """A long-running coordinator taking findings from NATS (runner.fleet)."""


class ForwardJobJSON(TypedDict):
    unit: str
    """The job's service, `<stem>.service`."""
    timer: str | None
    """Its timer, `<stem>.timer` (every job has one; None: a job without, which the runner
    reports only when it runs)."""


class ForwardSpecJSON(ServiceSpecJSON):
    """A fleet host's forwarder: its inbox and its jobs' runs to NATS."""

    fleet: FleetJSON
    heartbeat: int
    """Seconds between the forwarder's heartbeat runs (coordinator.heartbeat)."""
    linger: NotRequired[int]
    """Seconds a run started by a finding stays for the next (coordinator.linger)."""
    timers: NotRequired[dict[str, "JobTimerJSON"]]  # defined below, with the coordinator's
    """This host's jobs with a calendar: its heartbeat checks that they ran (runner.missed)."""
    jobs: dict[str, ForwardJobJSON]
    """The jobs this host runs, by name: the forwarder reports their runs."""


# --- job specs (read and checked by runner/spec.py) ----------------------------------------------


class ShellCommandJSON(TypedDict):
    shell: str
    """Run with /bin/sh -c."""


class ArgvCommandJSON(TypedDict):
    argv: list[str]
    """A program and its arguments, run without a shell."""


class AfterJSON(TypedDict):
    """The predecessor of a chain step."""

    job: str
    unit: str
    window: int | None
    """This job's shortest gap between firings: how recent the predecessor's success must be
    when its calendar cannot be read."""
    timeout: NotRequired[int]
    """The predecessor's timeout (the runner waits for a running one up to its own)."""
    calendar: NotRequired[CalendarJSON | None]
    """The predecessor's timer: its success must be since its latest firing."""


class PriceJSON(TypedDict):
    """US dollars per million tokens."""

    input: float
    output: float


class LlmJSON(TypedDict):
    prompt: str
    model: str
    max_tokens: int
    api_key_credential: str | None
    """The credential (LoadCredential=) holding the API key."""
    base_url: str | None
    timeout: int
    price_per_mtok: PriceJSON | None
    """None: the model's price is not known."""
    max_retries: NotRequired[int]
    """The SDK's retries on 429/5xx; never written by the compiler (tests set it)."""
    expected_tokens: NotRequired[int | None]
    """One call's expected input plus output tokens: a run far above it is a spike."""


class BudgetJSON(TypedDict):
    scope: BudgetScope
    monthly_tokens: int | None
    monthly_usd: float | None


class JobSpecJSON(ServiceSpecJSON, FleetHostJSON):
    job: str
    command: ShellCommandJSON | ArgvCommandJSON | None
    """None: a job with a prompt and no command."""
    check: NotRequired[ShellCommandJSON | ArgvCommandJSON | None]
    """The side-effect-free probe canary applies and preflights run instead of the command."""
    preflight: NotRequired[int | None]
    """Seconds before each firing the check runs (its own timer), or None."""
    timeout: int
    environment: dict[str, str]
    working_directory: str | None
    secrets: list[str]
    output: OutputMode
    after: AfterJSON | None
    llm: LlmJSON | None
    budgets: list[BudgetJSON]
    notify_recovered: NotRequired[bool]
    """A successful run after a failure says so (state/failing/<job>, see runner.recovery)."""


# --- the coordinator spec: the config's coordinator, channels, nag rules and watches ----------


class SourcePolicyJSON(TypedDict):
    external: bool
    cap: int | None
    priority: int
    to: list[str] | None
    """Channels instead of the coordinator's deliver_to."""
    urgent: bool
    dedup_key: NotRequired[str | None]
    """A template over finding fields naming the open item a finding is about."""
    notify_recovered: NotRequired[bool | None]
    """None: the coordinator's notify_recovered."""


class QuietHoursJSON(TypedDict):
    start: str
    """HH:MM, like `end`."""
    end: str
    timezone: str | None
    """None: the config's."""


class MessageFormatJSON(TypedDict):
    title: str
    line: str
    more: str


class DeliveryJSON(TypedDict):
    attempts: int
    backoff: int
    max_backoff: int
    fallback: str | None


class FlappingJSON(TypedDict):
    changes: int
    """Opened or resolved more than this many times within `within` seconds: damped."""
    within: int


class CoordinatorJSON(TypedDict):
    """The config's `coordinator:` less its sandbox (the unit's business)."""

    deliver_to: list[str]
    heartbeat: int
    linger: NotRequired[int]
    """Seconds a run started by a finding stays for the next (runner.warm); absent: none."""
    sources: dict[str, SourcePolicyJSON]
    total_cap: int | None
    quiet_hours: QuietHoursJSON | None
    message: MessageFormatJSON
    delivery: DeliveryJSON
    max_finding_bytes: int
    notify_recovered: NotRequired[bool]
    """Absent: False."""
    flapping: NotRequired[FlappingJSON]


InhibitJSON = TypedDict(  # `while` is a keyword: the functional form
    "InhibitJSON", {"while": dict[str, list[str]], "hold": dict[str, list[str]], "drop": bool}
)
"""Hold (or drop) alerts matching `hold` while an open item matches `while`."""


class MaintenanceJSON(TypedDict):
    match: dict[str, list[str]]
    start: str
    end: str
    days: list[int] | None
    """Monday = 0; None: every day."""
    timezone: str | None
    drop: bool


class ChannelJSON(TypedDict):
    """Exactly one of apprise, apprise_secret, command and file is set."""

    apprise: str | None
    apprise_secret: str | None
    """The credential holding the apprise URL."""
    command: list[str] | None
    file: str | None
    timeout: int
    max_chars: NotRequired[int | None]
    """None: the channel kind's own limit."""


class LadderStepJSON(TypedDict):
    min_count: int
    min_days: float
    message: str


class NagRuleJSON(TypedDict):
    source: str
    items: str | None
    key: str
    days_field: str | None
    ladder: list[LadderStepJSON] | None
    stop_after: int | None
    min_interval: int
    once_per: int | None
    message: str | None
    priority: int
    resolve_missing: bool
    retention: int
    once_per_calendar: NotRequired[bool]
    """Whether once_per was written in days or weeks (calendar days in the config's zone)."""
    min_interval_calendar: NotRequired[bool]
    """Likewise for min_interval."""


class DeadlineJSON(TypedDict):
    """Exactly one of job, source and file is set."""

    at: str
    job: str | None
    source: str | None
    file: str | None


class ConditionJSON(TypedDict):
    """Exactly one operator is set."""

    field: str
    equals: ScalarJSON | None
    not_equals: ScalarJSON | None
    contains: str | None
    regex: str | None
    gt: float | None
    gte: float | None
    lt: float | None
    lte: float | None


class MatchJSON(TypedDict):
    source: str
    items: str | None
    key: str | None
    all: list[ConditionJSON]
    """Every condition must hold."""
    any: list[ConditionJSON]
    """At least one must hold (none listed: no test)."""


class ArmedByJSON(TypedDict):
    """Exactly one of schedule and source is set."""

    schedule: str | None
    source: str | None
    items: str | None
    key: str | None


class FileWatchJSON(TypedDict):
    path: str
    roots: NotRequired[list[str] | None]
    """None: the directory `path` starts with."""
    within: int
    armed_by: ArmedByJSON | None


AbsenceJSON = TypedDict("AbsenceJSON", {"source": str, "for": int})  # `for` is a keyword


class EscalationJSON(TypedDict):
    after: int
    to: list[str]


class WatchJSON(TypedDict):
    """One of the config's `watches:`: exactly one of deadline, match, file and absence is
    set, the others are None."""

    description: str | None
    deadline: DeadlineJSON | None
    match: MatchJSON | None
    file: FileWatchJSON | None
    absence: AbsenceJSON | None
    timezone: str | None
    notify: list[str] | None
    handoff: str | None
    message: str | None
    urgent: bool
    repeat: int | None
    escalate: EscalationJSON | None


class JobTimerJSON(TypedDict):
    """A job's timer as the heartbeat checks it ("did it run?"): its firings, and how late a
    run may start and still be that firing's."""

    unit: str
    """The timer, `<stem>.timer`: systemd says whether it runs (not disabled or paused)."""
    calendar: CalendarJSON
    late: int
    """Seconds systemd may start a run after its firing by design: AccuracySec= plus
    RandomizedDelaySec= (plus the predecessor's timeout for a chain step, ordered After= it)."""
    grace: int
    """Seconds more allowed for a slow start: 5 minutes, at most half the shortest gap
    between firings (a run later than that belongs to no firing: a catch-up)."""
    catch_up: bool
    """Persistent=: systemd runs a firing it missed while off as soon as the timer starts."""


class ReplyJSON(TypedDict):
    """A reply source as the coordinator sees it (`replies:`)."""

    kind: ReplyKind
    answer_to: list[str]
    """The channels answers to its replies go to (its `answer_to`, else
    coordinator.deliver_to)."""


class CoordinatorSpecJSON(ServiceSpecJSON, FleetCoordinatorJSON):
    coordinator: CoordinatorJSON
    channels: dict[str, ChannelJSON]
    nag: dict[str, NagRuleJSON]
    watches: dict[str, WatchJSON]
    jobs: list[str]
    timers: NotRequired[dict[str, JobTimerJSON]]
    """The jobs with a calendar (not those only started at boot), by name."""
    replies: NotRequired[dict[str, ReplyJSON]]
    """The reply sources, by name: each writes `reply` findings (source `vigil`) into the
    inbox."""
    inhibit: NotRequired[dict[str, InhibitJSON]]
    maintenance: NotRequired[dict[str, MaintenanceJSON]]


# --- the spec of a watch with a timer of its own, and the failure handler's ---------------------


class DeadlineTimerJSON(TypedDict, total=False):
    """What a deadline watch's spec has and a schedule-armed file watch's lacks."""

    window: int | None
    """The deadline's shortest gap between firings, for a calendar the runner cannot read."""
    calendar: CalendarJSON | None
    """The deadline's timer: evidence counts from its previous firing."""


class WatchSpecJSON(ServiceSpecJSON, DeadlineTimerJSON):
    watch_name: str
    watch: WatchJSON


class PauseJSON(TypedDict):
    """Pausing one job that keeps failing."""

    after: int
    """The failures in a row that pause it (`pause_after`, else `release.pause_after`)."""
    timers: list[str]
    """The timers a pause stops and disables: the job's, and its preflight's if it has one."""


class FailureSpecJSON(SpecJSON):
    journal_lines: int
    """How many of the failed unit's journal lines the alert quotes."""
    auto_rollback: NotRequired[bool]
    """release.auto_rollback: a changed job failing its first runs rolls the config back."""
    pause_after: NotRequired[dict[str, PauseJSON]]
    """job -> when and what to pause; jobs that are never paused are absent."""
    notify_recovered: NotRequired[list[str]]
    """The jobs whose failure leaves a marker (state/failing/<job>) for their next successful
    run to announce the recovery."""


# --- a reply source's service (runner.replies) --------------------------------------------------


class TelegramReplyJSON(TypedDict):
    credential: str
    """The credential (LoadCredential=) holding the bot token."""
    chats: list[str]
    """The accepted chat ids, as strings."""
    api: str
    """The Bot API's base URL, without a trailing slash."""


class SignalReplyJSON(TypedDict):
    url: str | None
    """signal-cli daemon --http: its base URL (the events stream is /api/v1/events below it)."""
    socket: str | None
    """signal-cli daemon --socket: the unix socket (`~` not yet expanded)."""
    account: str | None
    numbers: list[str]
    """The accepted senders: numbers or UUIDs."""


class ReplySourceJSON(TypedDict, total=False):
    """Exactly one of these, the one `source_kind` names."""

    telegram: TelegramReplyJSON
    signal: SignalReplyJSON
    command: list[str]
    """The program and its arguments, run without a shell."""


class ReplySpecJSON(ServiceSpecJSON, ReplySourceJSON):
    source: str
    """The reply source's name (`replies:`); its state is state/reply-<source>.json."""
    source_kind: ReplyKind

"""The coordinator: routing, caps, quiet hours, the consolidated message, delivery retries."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from compiler.language.model.jobs import Sandbox
from compiler.language.model.types import (
    TEMPLATE_SCHEMA,
    ClockTime,
    Duration,
    Name,
    Names,
    PositiveDuration,
    StrictModel,
    TimeZone,
    minutes_of,
    plain_placeholders,
    template_fields_from,
)
from runner.contract import (
    COORDINATOR_LINGER,
    COORDINATOR_LINGER_MAX,
    DEFAULT_HEARTBEAT,
    DELIVERY_ATTEMPTS,
    DELIVERY_BACKOFF,
    DELIVERY_MAX_BACKOFF,
)

TitleTemplate = Annotated[str, template_fields_from(("count", "name", "date")), TEMPLATE_SCHEMA]
LineTemplate = Annotated[
    str, template_fields_from(("text", "source", "priority", "ref")), TEMPLATE_SCHEMA
]
DedupTemplate = Annotated[
    str, template_fields_from(None), AfterValidator(plain_placeholders), TEMPLATE_SCHEMA
]
MoreTemplate = Annotated[str, template_fields_from(("more",)), TEMPLATE_SCHEMA]


def _linger_at_most(seconds: int) -> int:
    if seconds > COORDINATOR_LINGER_MAX:
        raise ValueError(f"at most {COORDINATOR_LINGER_MAX // 60}m")
    return seconds


Linger = Annotated[Duration, AfterValidator(_linger_at_most)]


class SourcePolicy(StrictModel):
    """How findings from one source are treated."""

    external: bool = False
    """The source is not a job: something else writes its findings into the inbox."""
    cap: Annotated[int, Field(ge=0)] | None = None
    """At most this many alerts from the source per message; the rest are counted as '+N more'."""
    priority: int = 0
    """Higher goes first when the total cap cuts a message."""
    to: list[Name] | None = None
    """Channels for this source, instead of coordinator.deliver_to."""
    urgent: bool = False
    """Bypass quiet hours."""
    dedup_key: DedupTemplate | None = None
    """What makes two findings of the source the same open item ('{host}:{check}'): the
    condition every run repeats is one item, told once; placeholders are finding fields."""
    notify_recovered: bool | None = None
    """Say once when an open item of the source stops being reported (a failing job that
    succeeds again); default coordinator.notify_recovered."""


class QuietHours(StrictModel):
    """A daily window in which messages are held (never dropped) until it ends."""

    start: ClockTime
    """Start, HH:MM."""
    end: ClockTime
    """End, HH:MM; may be earlier than start (the window spans midnight)."""
    timezone: TimeZone | None = None
    """Defaults to the config's timezone."""

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if minutes_of(self.start) == minutes_of(self.end):  # "9:00" is "09:00"
            raise ValueError("start and end are the same time")
        return self


class Flapping(StrictModel):
    """An item that opens and resolves this often is told once, not at every change."""

    changes: Annotated[int, Field(ge=2)] = 3
    """Opened or resolved more than this many times ..."""
    within: PositiveDuration = 3600
    """... within this long: one line says it is flapping, and it is quiet until it settles."""


class MessageFormat(StrictModel):
    """The consolidated message sent to each channel per run."""

    title: TitleTemplate = "{name}: {count} new"
    """Title; placeholders {count}, {name}, {date}."""
    line: LineTemplate = "• {text}"
    """One line per alert; placeholders {text}, {source}, {priority}, {ref} (the item's code in
    brackets, `[r7]`, for replies; at the end of the line when the template does not place it)."""
    more: MoreTemplate = "+{more} more"
    """Last line when caps cut alerts; placeholder {more}."""


class Delivery(StrictModel):
    """Retries of failed deliveries."""

    attempts: Annotated[int, Field(ge=1, le=100)] = DELIVERY_ATTEMPTS
    """Tries per channel before the message is dead-lettered."""
    backoff: PositiveDuration = DELIVERY_BACKOFF
    """Wait before the first retry; doubles each time."""
    max_backoff: PositiveDuration = DELIVERY_MAX_BACKOFF
    """Longest wait between retries."""
    fallback: Name | None = None
    """Channel that hears about dead-lettered messages."""


class Coordinator(StrictModel):
    """Turns findings into messages: rules, caps, quiet hours, delivery."""

    deliver_to: Annotated[list[Name], Field(min_length=1)]
    """Channels that get messages, unless a source says otherwise."""
    heartbeat: PositiveDuration = DEFAULT_HEARTBEAT
    """How often the coordinator also runs without a new finding (retries, deadlines, pending
    work). It asks only 'is anything due?' and spends no tokens."""
    linger: Linger = COORDINATOR_LINGER
    """After a finding starts it, how long the coordinator stays to handle the next finding at
    once, in the same run (no new start); 0: one pass per start. At most 15m."""
    sources: dict[Name, SourcePolicy] = {}
    """Per-source caps, priorities and routes; also declares external sources."""
    total_cap: Annotated[int, Field(ge=1)] | None = None
    """At most this many alerts per message; the rest are counted."""
    quiet_hours: QuietHours | None = None
    """Hold messages during this window; urgent ones still go out."""
    message: MessageFormat = MessageFormat()
    """Layout of the consolidated message."""
    delivery: Delivery = Delivery()
    """Retries and dead-lettering."""
    notify_recovered: bool = False
    """Say once when an open item stops being reported (a failing job succeeds again, a
    watch is satisfied late); coordinator.sources.<source>.notify_recovered overrides it."""
    flapping: Flapping = Flapping()
    """Damping of items that keep opening and resolving."""
    max_finding_bytes: Annotated[int, Field(ge=256)] = 1024 * 1024
    """Larger inbox files are rejected."""
    hosts: Names | None = None
    """With `fleet:`: the machines that may run the coordinator, in order of preference;
    default: all `hosts` in their order."""
    sandbox: Sandbox = Sandbox()
    """Hardening of the coordinator's service. The directories of `file` channels are writable
    on their own; a `command` channel's agent needs `writable` for what it writes."""

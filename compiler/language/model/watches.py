"""Watches: future conditions with deadlines, matches on findings, expected files, silences."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema, field_validator, model_validator

from compiler.language.model.types import (
    TEMPLATE_SCHEMA,
    Name,
    PathStr,
    PositiveDuration,
    Schedule,
    StrictModel,
    Template,
    TimeZone,
    UnitText,
    template_fields_from,
)

FIELD_PATH = r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$"
FieldPath = Annotated[str, Field(pattern=FIELD_PATH)]
"""A dotted path into a finding, such as `overdue` or `reply.from`."""


def _check_scalar(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a string, number or boolean")


Scalar = Annotated[
    str | int | float | bool,
    PlainValidator(_check_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]

WATCH_FIELDS = ("watch", "key", "state", "evidence", "deadline", "source")
WatchTemplate = Annotated[str, template_fields_from(WATCH_FIELDS), TEMPLATE_SCHEMA]


def _exactly_one(model: StrictModel, keys: tuple[str, ...], what: str) -> None:
    present = [key for key in keys if getattr(model, key) is not None]
    if len(present) != 1:
        listed = ", ".join(f"`{key}`" for key in keys)
        found = f" (found {', '.join(present)})" if present else ""
        raise ValueError(f"{what} needs exactly one of {listed}{found}")


class Deadline(StrictModel):
    """Something must happen by a calendar time: a job succeeds, a finding or a file appears."""

    at: Schedule
    """The deadline, in cron or calendar syntax: '0 3 * * *', '03:00', 'Sun 23:00'."""
    job: Name | None = None
    """This job must succeed between the previous deadline and this one."""
    source: Name | None = None
    """A finding from this source must arrive in that window."""
    file: PathStr | None = None
    """This file (or glob) must be modified in that window."""

    @model_validator(mode="after")
    def _one_target(self) -> Deadline:
        _exactly_one(self, ("job", "source", "file"), "a deadline")
        return self


class Condition(StrictModel):
    """One test on a field of a finding or of one of its items."""

    field: FieldPath
    """Dotted path to the field, such as `priority` or `reply.from`."""
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    contains: str | None = None
    """The field (text or list) contains this."""
    regex: str | None = None
    """The field matches this regular expression (Python syntax, searched anywhere)."""
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        # A field validator, so that the error names `regex` itself, not the condition.
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        operators = ("equals", "not_equals", "contains", "regex", "gt", "gte", "lt", "lte")
        _exactly_one(self, operators, "a condition")
        return self


class Match(StrictModel):
    """A finding from `source` (or one of its items) that meets the conditions."""

    source: Name
    """The source whose findings are examined."""
    items: FieldPath | None = None
    """Where the items are in the finding; each item is tested on its own."""
    key: FieldPath | None = None
    """Item field that tells items apart, so one item fires once."""
    all: list[Condition] = []
    """Every condition must hold."""
    any: list[Condition] = []
    """At least one condition must hold."""

    @model_validator(mode="after")
    def _some_condition(self) -> Match:
        if not self.all and not self.any:
            raise ValueError("a match needs at least one condition under `all` or `any`")
        return self


class ArmedBy(StrictModel):
    """What starts the clock of a file watch."""

    schedule: Schedule | None = None
    """Arm at these times."""
    source: Name | None = None
    """Arm once per finding (or per item) from this source."""
    items: FieldPath | None = None
    """Where the items are in the finding; each item arms its own instance."""
    key: FieldPath | None = None
    """Item field naming the instance (the {key} in `path`)."""

    @model_validator(mode="after")
    def _one_trigger(self) -> ArmedBy:
        _exactly_one(self, ("schedule", "source"), "armed_by")
        if self.schedule is not None and (self.items or self.key):
            raise ValueError("`items` and `key` only apply when armed by a `source`")
        return self


class FileWatch(StrictModel):
    """A file must appear within a duration after the watch is armed."""

    path: Template
    """Absolute path, taken literally (no glob); {field} placeholders come from the arming
    finding's item."""
    roots: Annotated[list[PathStr], Field(min_length=1)] | None = None
    """Directories the file must be in (symlinks resolved; `..` refused). Default: the
    directory `path` starts with before its first placeholder; required when `path` takes its
    directory from a finding (`{expectedFile}`), so a finding cannot point at any file."""
    within: PositiveDuration
    """How long after arming the file may take."""
    armed_by: ArmedBy | None = None
    """Schedule or source that arms the watch; without it, only `vigil watch arm` does."""

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("/", "~/", "{")):
            raise ValueError(
                f"{value!r} must be an absolute path, start with '~/' or with a {{field}}"
            )
        return value

    @model_validator(mode="after")
    def _confined(self) -> FileWatch:
        literal = os.path.dirname(self.path.split("{", 1)[0])
        if self.roots is None and literal in ("", "/", "~"):
            raise ValueError(
                f"path {self.path!r} takes its directory from a finding: declare `roots:`, the "
                "directories the file may be in"
            )
        return self


class Absence(StrictModel):
    """No finding from a source for a period: a dead man's switch."""

    source: Name
    """The source that must keep reporting."""
    for_: PositiveDuration = Field(alias="for")
    """How long a silence is tolerated."""


class Escalation(StrictModel):
    """Where to go when nobody acknowledges."""

    after: PositiveDuration
    """Time without acknowledgement before escalating."""
    to: Annotated[list[Name], Field(min_length=1)]
    """Channels that get the escalated alert."""


class Watch(StrictModel):
    """A future condition. Exactly one of deadline, match, file, absence."""

    description: UnitText | None = None
    deadline: Deadline | None = None
    match: Match | None = None
    file: FileWatch | None = None
    absence: Absence | None = None
    timezone: TimeZone | None = None
    """Timezone of the deadline or arming schedule; defaults to the config's."""
    notify: list[Name] | None = None
    """Channels to alert; defaults to coordinator.deliver_to."""
    handoff: Name | None = None
    """A `command` channel that hands the evidence to an agent."""
    message: WatchTemplate | None = None
    """Alert text; placeholders: {watch}, {key}, {state}, {evidence}, {deadline}, {source}."""
    urgent: bool = False
    """Bypass quiet hours."""
    repeat: PositiveDuration | None = None
    """Alert again at this interval until acknowledged (`vigil ack`)."""
    escalate: Escalation | None = None
    """Escalate to more channels after a period without acknowledgement."""

    @model_validator(mode="after")
    def _one_kind(self) -> Watch:
        _exactly_one(self, ("deadline", "match", "file", "absence"), "a watch")
        return self

    @property
    def kind(self) -> str:
        return next(
            k for k in ("deadline", "match", "file", "absence") if getattr(self, k) is not None
        )

    def condition(self) -> Any:
        return getattr(self, self.kind)

    @property
    def timer(self) -> tuple[str, str] | None:
        """(schedule, what it times) of the watch's own timer and service: a deadline, or the
        schedule that arms a file watch. None for the others: the coordinator evaluates them
        and they have no units of their own."""
        if self.deadline is not None:
            return self.deadline.at, "deadline"
        if self.file is not None and self.file.armed_by and self.file.armed_by.schedule:
            return self.file.armed_by.schedule, "arming"
        return None

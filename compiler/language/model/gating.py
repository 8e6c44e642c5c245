"""Inhibit rules and maintenance windows: which alerts the coordinator holds back, and when.

Both name alerts with a matcher: {field: glob or [globs]} over an alert's source, job, watch,
kind and text; the fields are ANDed, the globs of one field ORed (fnmatch, case-sensitive).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from compiler.language.model.types import (
    ClockTime,
    Line,
    StrictModel,
    TimeZone,
    minutes_of,
    one_or_more,
    to_list,
    unique,
)
from runner.contract import ALERT_KINDS

GLOB_CHARS = "*?["
"""A matcher value with one of these is a pattern, not a name (fnmatch)."""


def is_glob(value: str) -> bool:
    return any(ch in value for ch in GLOB_CHARS)


def _not_empty(values: list[str]) -> list[str]:
    if any(not value for value in values):
        raise ValueError("an empty pattern matches nothing")
    return values


_GLOB_SCHEMA = {"type": "string", "minLength": 1, "description": "A name or an fnmatch glob."}

Globs = Annotated[
    list[Line],
    BeforeValidator(to_list),
    Field(min_length=1),
    AfterValidator(_not_empty),
    one_or_more(_GLOB_SCHEMA),
]
"""One glob or a list of them; the spec always holds a list."""


def _known_kinds(values: list[str]) -> list[str]:
    for value in values:
        if not any(fnmatchcase(kind, value) for kind in ALERT_KINDS):
            kinds = ", ".join(ALERT_KINDS)
            raise ValueError(f"unknown alert kind {value!r}; the kinds are {kinds}")
    return values


Kinds = Annotated[Globs, AfterValidator(_known_kinds)]


class Matcher(StrictModel):
    """Which alerts: every field given must match (a field's globs: any of them)."""

    source: Globs | None = None
    """The finding's source: a job, an external source, or `vigil` for vigil's own alerts."""
    job: Globs | None = None
    """The job an alert is about: its source, or the failed (missed, paused...) job."""
    watch: Globs | None = None
    """The watch whose alert it is."""
    kind: Kinds | None = None
    """failure, paused, missed, budget, rejected, preflight, nag, watch, recovered, finding..."""
    text: Globs | None = None
    """The alert's text, as a glob ('*disk full*')."""

    @model_validator(mode="after")
    def _some_field(self) -> Matcher:
        if all(getattr(self, field) is None for field in type(self).model_fields):
            raise ValueError(
                "a matcher needs at least one of `source`, `job`, `watch`, `kind`, `text`"
            )
        return self


class Inhibit(StrictModel):
    """While an open item matches `while`, alerts matching `hold` are held back (or dropped)."""

    while_: Matcher = Field(alias="while")
    """The condition: an open (unresolved) alert matching this, such as a failing job."""
    hold: Matcher
    """The alerts held back meanwhile; delivered once the condition clears."""
    drop: bool = False
    """Drop them instead (recorded with the reason, `vigil inbox --silenced`)."""


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""In the order of Python's date.weekday() (Monday = 0): the spec holds the numbers."""


class Maintenance(StrictModel):
    """A recurring window in which matching alerts are held until it ends (or dropped)."""

    match: Matcher
    """The alerts the window is about (a job, a source...)."""
    start: ClockTime
    """Start, HH:MM."""
    end: ClockTime
    """End, HH:MM; may be earlier than start (the window spans midnight)."""
    days: Annotated[list[Weekday], Field(min_length=1), AfterValidator(unique)] | None = None
    """The days the window starts on (mon..sun); default every day."""
    timezone: TimeZone | None = None
    """Defaults to the config's timezone."""
    drop: bool = False
    """Drop matching alerts instead of holding them (recorded with the reason)."""

    @model_validator(mode="after")
    def _not_empty(self) -> Maintenance:
        if minutes_of(self.start) == minutes_of(self.end):
            raise ValueError("start and end are the same time")
        return self

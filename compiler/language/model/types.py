"""Value types shared by the config model: names, durations, paths, templates.

Each type validates with a message a user can act on and carries a JSON Schema that editors use
to complete and explain the key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)
from pydantic import BaseModel as _BaseModel

from compiler.language.duration import format_duration as format_duration
from compiler.language.schedule import ScheduleError, check_timezone, parse_schedule


class StrictModel(_BaseModel):
    """Every config mapping: unknown keys are errors, no silent type coercion.

    The docstring under a field is its description in the JSON Schema (schemas.DocumentedSchema
    reads them; validation never needs them). A model's validator is built when it is first
    used: validating a config builds one for the whole config, not one per model as well."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        populate_by_name=True,
        defer_build=True,
    )


# --- names ------------------------------------------------------------------------------------

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


def _check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '-' and '_' (starting with a letter or "
            "digit, at most 64 characters), so it can be part of a unit name without escaping"
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN}),
]
"""A name that becomes part of unit, file and state names."""

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_env_name(value: str) -> str:
    if not _ENV_RE.fullmatch(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]


def _no_control_chars(value: str) -> str:
    if any(ch in value for ch in "\x00\r") or any(
        ord(ch) < 32 and ch not in "\n\t" for ch in value
    ):
        raise ValueError("contains control characters")
    return value


Text = Annotated[str, AfterValidator(_no_control_chars)]
"""Free text: anything printable, newlines allowed."""


def _single_line(value: str) -> str:
    if any(ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise ValueError("must be a single line without control characters")
    return value


Line = Annotated[str, AfterValidator(_single_line)]
"""One line of text: no newlines or control characters."""


# systemd refuses unit-file lines over 1 MiB; a description is one line of a status display.
MAX_UNIT_TEXT = 1000


def _unit_text(value: str) -> str:
    _single_line(value)
    if value.endswith("\\"):
        raise ValueError("must not end with a backslash (it would join lines in a unit file)")
    if value.endswith(" "):
        raise ValueError("must not end with a space (systemd drops it from unit files)")
    if len(value) > MAX_UNIT_TEXT:
        raise ValueError(f"is longer than {MAX_UNIT_TEXT} characters")
    return value


UnitText = Annotated[str, AfterValidator(_unit_text)]
"""A line that is written into unit files (descriptions)."""


# --- durations --------------------------------------------------------------------------------

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^\s*(\d+\s*(w|d|h|min|m|sec|s)\s*)+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"(\d+)\s*(w|d|h|min|m|sec|s)")
MAX_DURATION = 100 * 365 * 86400
"""Far beyond any period a setup needs, and far inside what systemd's microsecond timespans
(and Python's dates) can hold: a longer one would pass validation and break the unit file."""


def parse_duration(value: object) -> int:
    """'90s', '15m', '1h 30m', '2d', '1w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(
            "must be a duration such as '30s', '15m', '2h', '1d' or a number of seconds"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return _at_most_max(value)
    if isinstance(value, str) and _DURATION_RE.fullmatch(value):
        return _at_most_max(sum(int(n) * _UNITS[unit] for n, unit in _PART_RE.findall(value)))
    raise ValueError(
        f"invalid duration {value!r}: use a number with a unit (s, m, h, d, w), "
        "such as '30s', '15m', '1h 30m', '2d', or a number of seconds"
    )


def _at_most_max(seconds: int) -> int:
    if seconds > MAX_DURATION:
        raise ValueError(f"is longer than 100 years ({MAX_DURATION} seconds)")
    return seconds


class Period(int):
    """Seconds that remember whether they were written in whole days or weeks (`7d`, `1w`): such
    a period is counted in calendar days of the config's timezone; `24h` is elapsed time."""

    calendar: bool = False


def parse_period(value: object) -> Period:
    period = Period(parse_duration(value))
    units = {unit for _, unit in _PART_RE.findall(value)} if isinstance(value, str) else set()
    period.calendar = period > 0 and bool(units) and units <= {"d", "w"}
    return period


def is_calendar(period: int | None) -> bool:
    return bool(getattr(period, "calendar", False))


Duration = Annotated[
    int,
    PlainValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "integer", "minimum": 0, "maximum": MAX_DURATION},
            ],
            "description": "A duration: '30s', '15m', '1h 30m', '2d', '1w', or seconds.",
        }
    ),
]


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be longer than zero")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": MAX_DURATION},
    ],
    "description": "A duration: '30s', '15m', '1h 30m', '2d', '1w', or seconds.",
}
CalendarDuration = Annotated[int, PlainValidator(parse_period), WithJsonSchema(_DURATION_SCHEMA)]
"""A Duration that keeps whether it was written in days or weeks (see Period)."""
PositiveCalendarDuration = Annotated[CalendarDuration, AfterValidator(_positive)]


# --- clock times and schedules ----------------------------------------------------------------

CLOCK_PATTERN = r"^([01]?\d|2[0-3]):[0-5]\d$"


def _check_clock(value: str) -> str:
    if not re.fullmatch(CLOCK_PATTERN, value):
        raise ValueError(f"invalid time of day {value!r}: use HH:MM, 24-hour clock")
    return value


ClockTime = Annotated[
    str, AfterValidator(_check_clock), WithJsonSchema({"type": "string", "pattern": CLOCK_PATTERN})
]


def _check_schedule(value: str) -> str:
    try:
        parse_schedule(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


_SCHEDULE_SCHEMA = {
    "type": "string",
    "description": "Cron (5 fields, or @hourly, @daily, @weekly, @monthly, @yearly, @annually, "
    "@midnight, @reboot) or systemd calendar syntax ('Mon..Fri 07:00').",
    "examples": ["*/15 * * * *", "0 9,14,18 * * *", "@daily", "Mon..Fri *-*-* 07:00"],
}

Schedule = Annotated[str, AfterValidator(_check_schedule), WithJsonSchema(_SCHEDULE_SCHEMA)]


def to_list(value: object) -> object:
    """One string written where a list may stand: a list of it."""
    return [value] if isinstance(value, str) else value


def one_or_more(schema: dict[str, object]) -> WithJsonSchema:
    """The JSON Schema of a value written as one item or as a non-empty list of them."""
    return WithJsonSchema({"anyOf": [schema, {"type": "array", "items": schema, "minItems": 1}]})


def minutes_of(clock: str) -> int:
    """HH:MM (or H:MM) -> minutes since midnight."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def plain_placeholders(value: str) -> str:
    """Plain `{name}` placeholders only: the runner fills the rest in ways a key or an
    argument must not depend on (`{host:.2}` would make two hosts one item)."""
    for _literal, field, spec, conversion in string.Formatter().parse(value):
        if field is not None and (spec or conversion):
            raise ValueError(f"placeholder {{{field}}} takes no conversion or format spec here")
    return value


def unique(values: list[str]) -> list[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return values


Schedules = Annotated[
    list[Schedule],
    BeforeValidator(to_list),
    Field(min_length=1),
    AfterValidator(unique),
    one_or_more(_SCHEDULE_SCHEMA),
]
"""One schedule or a list of them; a list fires at the union of its schedules."""

Names = Annotated[list[Name], Field(min_length=1), AfterValidator(unique)]
"""A non-empty list of names, each once (the fleet's hosts)."""


def _check_zone(value: str) -> str:
    try:
        check_timezone(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


TimeZone = Annotated[
    str,
    AfterValidator(_check_zone),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An IANA time zone name.",
            "examples": ["UTC", "America/New_York"],
        }
    ),
]


# --- paths ------------------------------------------------------------------------------------


# systemd refuses longer paths (PATH_MAX, NAME_MAX per component); the margin leaves room for
# what %h expands to and for the "/inbox" a state directory gets.
MAX_PATH_BYTES = 2048
MAX_NAME_BYTES = 255


def _check_path(value: str) -> str:
    _single_line(value)
    shown = repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if "\\" in value:
        raise ValueError(f"{shown}: backslashes are not allowed in paths")
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise ValueError(
            f"{shown} must be an absolute path or start with '~/': units do not run in the "
            "directory you validate from"
        )
    # Units carry paths as written: systemd ignores a setting whose path is not normalized
    # (LoadCredential=, DirectoryNotEmpty=) and strips a trailing space.
    parts = value.split("/")[1:]
    if any(part in (".", "..") for part in parts) or "" in parts[:-1]:
        raise ValueError(f"{shown}: '.', '..' and '//' are not allowed in paths")
    if value.endswith(" "):
        raise ValueError(f"{shown} ends with a space, which systemd would drop")
    if len(value.encode()) > MAX_PATH_BYTES or any(
        len(part.encode()) > MAX_NAME_BYTES for part in parts
    ):
        raise ValueError(
            f"{shown} is too long for a path (at most {MAX_PATH_BYTES} bytes, "
            f"{MAX_NAME_BYTES} per name)"
        )
    return value


PathStr = Annotated[
    str,
    AfterValidator(_check_path),
    WithJsonSchema(
        {"type": "string", "pattern": "^(/|~/|~$)", "description": "An absolute path or ~/..."}
    ),
]


def _check_file_path(value: str) -> str:
    # "~" or "/dir/" would leave nothing to write to (and no parent for the sandbox to open).
    if value in ("~", "/") or value.endswith("/"):
        raise ValueError(f"{value!r} is a directory; name a file")
    return value


FilePathStr = Annotated[PathStr, AfterValidator(_check_file_path)]


# --- URLs -------------------------------------------------------------------------------------


def url_parts(value: str, schemes: Iterable[str]) -> SplitResult | None:
    """`value` split, when it is a URL of one of `schemes` with a host, a valid port if any,
    no query or fragment and nothing unprintable; else None."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return None
    if (
        parts.scheme not in schemes
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
        return None
    return parts


# --- templates --------------------------------------------------------------------------------


MAX_FORMAT_WIDTH = 1000
"""The widest a format spec may pad or cut a field (`{days:>3}`): more is no message."""


def template_fields(template: str) -> list[str]:
    """The field names a `{field}` template uses. Raises ValueError on bad syntax."""
    fields: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"invalid template: {exc} (write a literal brace as '{{{{' or '}}}}')"
        ) from None
    for _literal, field, spec, _conversion in parsed:
        if field is None:
            continue
        if spec and any(int(width) > MAX_FORMAT_WIDTH for width in re.findall(r"\d+", spec)):
            raise ValueError(
                f"template field {{{field}:{spec}}} asks for more than {MAX_FORMAT_WIDTH} "
                "characters"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", field):
            raise ValueError(
                f"invalid template field {{{field}}}: use a plain name such as {{title}} "
                "(no attribute or index access)"
            )
        fields.append(field)
    return fields


TEMPLATE_SCHEMA = WithJsonSchema(
    {"type": "string", "description": "Text with {field} placeholders."}
)


def template_fields_from(allowed: Iterable[str] | None) -> AfterValidator:
    """A validator for `{field}` templates whose placeholders come from `allowed` (None: any)."""
    allowed_set = frozenset(allowed) if allowed is not None else None

    def check(value: str) -> str:
        _no_control_chars(value)
        for field in template_fields(value):
            if allowed_set is not None and field not in allowed_set:
                names = ", ".join("{" + name + "}" for name in sorted(allowed_set))
                raise ValueError(f"unknown template field {{{field}}}; available here: {names}")
        return value

    return AfterValidator(check)


Template = Annotated[str, template_fields_from(None), TEMPLATE_SCHEMA]
"""A `{field}` template whose fields are only known at run time (an item's own fields)."""

"""From a loaded document to a checked Config, or every problem as `FILE:LINE:COL: field: msg`."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from compiler.errors import ConfigError, ConfigIssue
from compiler.language import references
from compiler.language.loader import Document, format_path, load_file
from compiler.language.model import Config
from compiler.language.schedule import CalendarCheckUnavailable, check_calendars, parse_schedule


@dataclass
class Validated:
    document: Document
    config: Config
    warnings: list[str] = field(default_factory=list)


def load_config(path: str | os.PathLike[str], *, check_calendar: bool = True) -> Validated:
    """Load, validate and cross-check one config file. Raises ConfigError with every issue."""
    return validate_document(load_file(path), check_calendar=check_calendar)


def validate_document(document: Document, *, check_calendar: bool = True) -> Validated:
    try:
        config = Config.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError([_issue(document, error) for error in exc.errors()]) from None
    issues = [_at(document, path, message) for path, message in references.check(config)]
    warnings: list[str] = []
    if check_calendar:
        try:
            issues += [_at(document, p, m) for p, m in _calendar_problems(config)]
        except CalendarCheckUnavailable as exc:
            warnings.append(f"calendar expressions not checked: {exc}")
    if issues:
        raise ConfigError(issues)
    return Validated(document, config, warnings + _preflight_warnings(config))


def _preflight_warnings(config: Config) -> list[str]:
    """Preflights the clock skips one day a year: said, since nothing can move them."""
    from compiler.language.preflight import preflight_calendar, skipped

    warnings = []
    today = datetime.now(UTC).date()
    for name, job in config.jobs.items():
        if job.preflight is None:
            continue
        zone = job.timezone or config.timezone
        gap = skipped(preflight_calendar(job.schedule, job.preflight), zone, today)
        if gap is not None:
            warnings.append(
                f"jobs.{name}.preflight: {gap[0]} does not exist in {zone} on {gap[1]} (the "
                "clock springs forward): that day the preflight does not run"
            )
    return warnings


# --- schedules in systemd calendar syntax are checked by systemd itself, in one batch ----------


def schedule_uses(config: Config) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every schedule expression in the config with its path."""
    for name, job in config.jobs.items():
        for i, expression in enumerate(job.schedule):
            path: tuple[str | int, ...] = ("jobs", name, "schedule")
            yield ((*path, i) if len(job.schedule) > 1 else path), expression
    for name, watch in config.watches.items():
        if watch.deadline:
            yield ("watches", name, "deadline", "at"), watch.deadline.at
        if watch.file and watch.file.armed_by and watch.file.armed_by.schedule:
            yield ("watches", name, "file", "armed_by", "schedule"), watch.file.armed_by.schedule


def _calendar_problems(config: Config) -> list[references.Problem]:
    calendars = [(p, e) for p, e in schedule_uses(config) if parse_schedule(e).kind == "calendar"]
    if not calendars:
        return []
    verdicts = check_calendars({expression for _, expression in calendars})
    return [(path, problem) for path, expr in calendars if (problem := verdicts.get(expr))]


# --- pydantic errors, rewritten once into messages a user can act on ---------------------------

_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "nothing (null)",
}


def _describe(value: object) -> str:
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 40:
        return f"{kind} ({value!r})" if not isinstance(value, bool) else f"{str(value).lower()}"
    return kind


def _issue(document: Document, error: ErrorDetails) -> ConfigIssue:
    loc = _written(document.data, tuple(error["loc"]))
    kind = error["type"]
    if kind == "missing":
        issue = _at(document, loc[:-1], f"missing required key {loc[-1]!r}")
        return ConfigIssue(issue.file, issue.line, issue.column, format_path(loc), issue.message)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = (
            references.did_you_mean(str(loc[-1]), allowed, "key") if allowed else "unknown key"
        )
        return document.issue(loc, message, key=True)
    if loc and loc[-1] == "[key]":
        return document.issue(loc[:-1], f"{_message(error)} (in the key)", key=True)
    return _at(document, loc, _message(error))


def _at(document: Document, path: tuple[str | int, ...], message: str) -> ConfigIssue:
    """An issue about a whole mapping points at its key (`hello:`), anything else at the value."""
    is_entry = bool(path) and isinstance(_value_at(document.data, path), dict)
    return document.issue(path, message, key=is_entry)


def _child(data: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(data, dict) and part in data:
        return True, data[part]
    if isinstance(data, list) and isinstance(part, int) and part < len(data):
        return True, data[part]
    return False, None


def _value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        found, data = _child(data, part)
        if not found:
            return None
    return data


def _written(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` cut to what the file actually has: a lone schedule string is validated as a
    one-item list, but the error belongs to the string, not to `schedule[0]`."""
    for depth, part in enumerate(loc):
        found, child = _child(data, part)
        if not found:
            # A missing or extra key is named by the path; anything else stops at the parent.
            return loc if isinstance(data, dict) or part == "[key]" else loc[:depth]
        data = child
    return loc


def _message(error: ErrorDetails) -> str:
    kind, message = error["type"], error["msg"]
    if kind in ("value_error", "assertion_error"):
        return message.split(", ", 1)[1] if ", " in message else message
    got = f", got {_describe(error['input'])}"
    if kind == "bool_type":
        return "must be true or false" + got
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a mapping" + got
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        return f"{_describe(error['input'])} is not valid here (expected {pattern})"
    message = message.replace("Input should be", "must be").replace("List should", "must")
    return message + (got if kind.endswith("_type") or kind == "literal_error" else "")


def _allowed_keys(loc: tuple[str | int, ...]) -> list[str]:
    """Keys the model accepts at `loc`, for "did you mean" on an unknown key."""
    current: Any = Config
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    model = _as_model(current)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    model = _as_model(annotation)
    if model is not None:
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    for candidate in _members(annotation):
        origin = typing.get_origin(candidate)
        if origin is dict and isinstance(part, str):
            return typing.get_args(candidate)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(candidate)[0]
    return None


def _members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _as_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in _members(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None

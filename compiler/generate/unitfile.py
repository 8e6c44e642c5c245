"""Putting config values into unit files safely.

Unit files expand `%` specifiers almost everywhere and join a line ending in a backslash with the
next. Values from the config are single lines (the model rejects control characters); here `%`
becomes `%%`, `~/` becomes `%h/`, and a trailing backslash is refused.
"""

from __future__ import annotations

import re

from compiler.errors import VigilError
from compiler.language.model.types import format_duration


class UnsafeUnitValue(VigilError):
    """A value that cannot be written into a unit file as it is."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def literal(value: str) -> str:
    """A value systemd must read back exactly: specifiers escaped."""
    if _CONTROL.search(value):
        raise UnsafeUnitValue(f"{value!r} contains control characters; units take one line")
    if value.endswith("\\"):
        raise UnsafeUnitValue(f"{value!r} ends with a backslash, which would join unit-file lines")
    return value.replace("%", "%%")


def path(value: str) -> str:
    """A config path for a unit: `~/x` becomes `%h/x` (the service user's home)."""
    if value == "~":
        return "%h"
    if value.startswith("~/"):
        return "%h/" + literal(value[2:])
    return literal(value)


def optional_path(value: str) -> str:
    """A path for ReadWritePaths=, BindPaths= and the like: `-` (skip it if missing), and
    quoted when it holds what those lists split on (whitespace; `:` in BindPaths=)."""
    word = "-" + path(value)
    if any(ch.isspace() or ch in "\"':" for ch in word):
        return '"' + word.replace('"', '\\"') + '"'
    return word


def seconds(value: int) -> str:
    """A time span in the form systemd prints back (`1h 30min`), for readable units."""
    return format_duration(value, minute="min", zero="0")

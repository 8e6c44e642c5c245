"""One error hierarchy and the exit codes it maps to. The CLI turns errors into messages and
exit codes, and prints the warnings layers below it hand over; nothing else prints."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What `vigil` exits with."""

    OK = 0
    FAILED = 1  # anything else that failed
    INVALID = 2  # invalid input: a config error, a bad argument
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


Warn = Callable[[str], None]
"""How a layer below the CLI hands over a warning: the CLI passes the function that prints it."""


class VigilError(Exception):
    """A failure vigil explains to the user without a traceback."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a config file, printed as ``FILE:LINE:COL: field.path: message``."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return _one_line(text)


def _one_line(text: str) -> str:
    """Quoted keys, tags (`!a%0Ab`) and template fields can hold line breaks and other
    unprintable characters: escape them, so that every issue stays exactly one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class ConfigError(VigilError):
    """The input is invalid. Carries every issue found, not just the first."""

    exit_code = ExitCode.INVALID

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class UsageError(VigilError):
    """A bad command-line argument, such as an unknown timezone for `vigil explain`."""

    exit_code = ExitCode.INVALID


def did_you_mean(name: str, candidates: Iterable[str], what: str, plural: str | None = None) -> str:
    import difflib  # only for this message: the inspecting commands start without it

    options = sorted(set(candidates))
    message = f"unknown {what} {name!r}"
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    plural = plural or what + ("es" if what.endswith(("s", "sh", "ch", "x")) else "s")
    if options:
        message += f" ({plural}: {', '.join(options)})"
    else:
        message += f" (no {plural} are defined)"
    return message

"""One error hierarchy. The CLI turns these into messages and exit codes; nothing else prints."""

from __future__ import annotations

from dataclasses import dataclass


class VigilError(Exception):
    """A failure vigil explains to the user without a traceback (exit 1)."""

    exit_code = 1


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
    """The input is invalid (exit 2). Carries every issue found, not just the first."""

    exit_code = 2

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class UsageError(VigilError):
    """A bad command-line argument (exit 2), such as an unknown timezone for `vigil explain`."""

    exit_code = 2

"""Errors and warnings onto stderr, and the exit code each error means, decided in one place."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from compiler.errors import ExitCode, VigilError


@contextmanager
def reported() -> Iterator[None]:
    """Turn vigil's errors into a message on stderr and the exit code; never a traceback.
    SystemExit, not typer's Exit: the inspecting commands answer without typer (cli/main.py),
    and click lets SystemExit through with its code."""
    try:
        yield
    except VigilError as error:
        print(str(error), file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    except OSError as error:
        from runner.fsatomic import describe

        # A full disk, a read-only file system, a permission: what and where, one line.
        print(describe(error), file=sys.stderr)
        raise SystemExit(ExitCode.FAILED) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(ExitCode.INTERRUPTED) from None


def warn(message: str) -> None:
    """Something the user should fix, though the command goes on."""
    print(f"warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Something a command read could not be used as it was (a state file, the spend ledger).
    Its words may quote what it read (a nag key from a finding): control characters are shown
    as `?`, as in the tables."""
    from compiler.cli.tables import printable

    print(f"vigil: {printable(message)}", file=sys.stderr)

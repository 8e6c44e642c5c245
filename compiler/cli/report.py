"""Exit codes, decided in one place: 0 ok, 2 invalid input, 1 anything else that failed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from compiler.errors import VigilError

OK = 0
FAILED = 1
INVALID = 2


@contextmanager
def reported() -> Iterator[None]:
    """Turn vigil's errors into a message on stderr and the exit code; never a traceback."""
    try:
        yield
    except VigilError as error:
        print(str(error), file=sys.stderr)
        raise typer.Exit(error.exit_code) from None
    except OSError as error:
        from runner.fsatomic import describe

        # A full disk, a read-only file system, a permission: what and where, one line.
        print(describe(error), file=sys.stderr)
        raise typer.Exit(FAILED) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)

"""Release discipline: how a changed config goes live, and what happens when a job keeps failing."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from compiler.language.model.types import StrictModel

FailureCount = Annotated[int, Field(ge=1, le=1000)]


class CanaryMode(StrEnum):
    """What a canary apply does with a changed job."""

    TRY = "try"
    """Run the job as its timer would, findings shown but not delivered."""
    CHECK = "check"
    """Run the job's side-effect-free `check:` command instead."""
    SKIP = "skip"
    """Leave the job alone (it has side effects and no check)."""


class Release(StrictModel):
    """How `vigil apply` brings a new generation live, and the default for pausing jobs."""

    canary: bool = False
    """Make `vigil apply` a canary apply (as `--canary`): the new generation is installed
    beside the live one, every new or changed job is tried (or its `check:` run), and the
    switch happens only when all pass."""
    auto_rollback: bool = False
    """When a job changed by the newest generation fails its first scheduled run, go back to
    the previous generation (once: a rollback that fails too is not rolled back again)."""
    pause_after: FailureCount | None = None
    """Default of every job's `pause_after`; off when absent."""

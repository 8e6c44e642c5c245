"""A finding: one JSON object in the inbox. Only the schema is generated from this; the runner
checks findings with its own stdlib code."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Finding(BaseModel):
    """What a job, a watch or another writer reports. Extra keys are the finding's payload."""

    # The docstrings under the fields are their descriptions in the schema (schemas.py).
    model_config = ConfigDict(extra="allow", title="vigil finding")

    source: Annotated[str, Field(min_length=1, max_length=200)]
    """Who reported it: a job name or a declared external source."""
    timestamp: Annotated[str, Field(min_length=1)]
    """When, as ISO 8601 (2026-02-02T09:00:00Z)."""
    message: str | None = None
    """Text delivered as it is when no rule handles the source."""
    priority: int | None = None
    """Higher goes first when caps cut a message."""
    urgent: bool | None = None
    """Bypass quiet hours."""
    id: str | None = None
    """Identifies the finding; repeated ids are delivered once."""

"""Nag rules: escalation ladders per item, and 'mention at most once per period'."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from compiler.language.model.types import (
    CalendarDuration,
    Name,
    PositiveCalendarDuration,
    PositiveDuration,
    StrictModel,
    Template,
)
from compiler.language.model.watches import FieldPath
from runner.contract import NAG_KEY_FIELD, NAG_RESOLVE_MISSING, NAG_RETENTION


class LadderStep(StrictModel):
    """One rung: from the `min_count`-th nag on, once the item is `min_days` overdue."""

    min_count: Annotated[int, Field(ge=1)]
    """The nag number this step starts at (1 = the first nag)."""
    min_days: Annotated[float, Field(ge=0)] = 0
    """Days overdue the item must have before this step nags."""
    message: Template
    """The text, with the item's fields and {days}, {count}, {source}, {key}."""


class NagRule(StrictModel):
    """Nag about the items a source reports, escalating by ladder or at most once per period."""

    source: Name
    """The source whose findings carry the items."""
    items: FieldPath | None = None
    """Where the list of items is in the finding; without it the finding is the one item."""
    key: FieldPath = NAG_KEY_FIELD
    """Item field that identifies an item across findings."""
    days_field: FieldPath | None = None
    """Item field with the days overdue; without it, days since the item was first seen."""
    ladder: list[LadderStep] | None = None
    """Escalation steps, by increasing min_count."""
    stop_after: Annotated[int, Field(ge=1)] | None = None
    """Stop nagging about an item after this many nags."""
    min_interval: CalendarDuration = 0
    """Least time between two nags about the same item."""
    once_per: PositiveCalendarDuration | None = None
    """Instead of a ladder: mention each item at most once per this period."""
    message: Template | None = None
    """With once_per: the text for each mention."""
    priority: int = 0
    """Higher goes first when caps cut a message."""
    resolve_missing: bool = NAG_RESOLVE_MISSING
    """An item missing from a newer finding of the source is marked resolved."""
    retention: PositiveDuration = NAG_RETENTION
    """How long resolved items are kept in state before they are pruned."""

    @model_validator(mode="after")
    def _ladder_or_once(self) -> NagRule:
        if (self.ladder is None) == (self.once_per is None):
            raise ValueError("a nag rule needs either `ladder` or `once_per` (with `message`)")
        if self.once_per is not None:
            if self.message is None:
                raise ValueError("`once_per` needs a `message`")
            if self.stop_after is not None:
                raise ValueError("`stop_after` only applies to a `ladder`")
        if self.ladder is not None:
            if not self.ladder:
                raise ValueError("`ladder` needs at least one step")
            if self.message is not None:
                raise ValueError("with a `ladder`, each step has its own `message`")
            counts = [step.min_count for step in self.ladder]
            if counts[0] != 1:
                raise ValueError("the first ladder step must have min_count: 1")
            if counts != sorted(set(counts)):
                raise ValueError("ladder steps must have strictly increasing min_count")
        return self

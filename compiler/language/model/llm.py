"""Model defaults, prices and token/cost budgets for LLM detectors."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from compiler.language.model.types import Line, Name, PositiveDuration, StrictModel


class Price(StrictModel):
    """What a model costs, in US dollars per million tokens."""

    input: Annotated[float, Field(ge=0)]
    """USD per million input tokens."""
    output: Annotated[float, Field(ge=0)]
    """USD per million output tokens."""


class Budget(StrictModel):
    """A monthly limit. A run that would exceed it calls no model and alerts once per month."""

    monthly_tokens: Annotated[int, Field(gt=0)] | None = None
    """Input plus output tokens per calendar month."""
    monthly_usd: Annotated[float, Field(gt=0)] | None = None
    """Spend per calendar month in US dollars, priced from the price table."""

    @model_validator(mode="after")
    def _one_limit(self) -> Budget:
        if self.monthly_tokens is None and self.monthly_usd is None:
            raise ValueError("set monthly_tokens, monthly_usd or both")
        return self


class ExpectedTokens(StrictModel):
    """Typical tokens per model call, for the monthly cost estimate."""

    input: Annotated[int, Field(ge=0)]
    """Input tokens per call."""
    output: Annotated[int, Field(ge=0)]
    """Output tokens per call."""


class LlmDefaults(StrictModel):
    """Defaults for every job with a `prompt`."""

    model: Line = "claude-haiku-4-5"
    """Anthropic model used when a job does not name one."""
    max_tokens: Annotated[int, Field(gt=0, le=128000)] = 1024
    """Upper bound on the reply's tokens."""
    api_key: Name | None = None
    """Name of the secret holding the Anthropic API key (passed with LoadCredential=)."""
    base_url: Line | None = None
    """Messages API base URL, for a proxy or a local gateway."""
    timeout: PositiveDuration = 60
    """How long one API request may take."""
    prices: dict[Line, Price] = {}
    """Prices per model, overriding vigil's built-in table."""

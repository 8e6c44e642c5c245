"""Built-in prices of current Claude models, in US dollars per million tokens.

A config's `llm.prices` overrides or extends this table. Unknown models are priced at zero and
`vigil cost` says so.
"""

from __future__ import annotations

PRICES: dict[str, tuple[float, float]] = {
    # model: (input, output)
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
}


def price_of(model: str, overrides: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """(input, output) USD per million tokens; dated ids fall back to their family name."""
    for table in (overrides, PRICES):
        if model in table:
            return table[model]
        family = model.rsplit("-", 1)[0]
        if model[len(family) + 1 :].isdigit() and family in table:
            return table[family]
    return None

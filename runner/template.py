"""`{field}` templates from the config, filled with plain names only.

The compiler checked the syntax; here a field that is missing from the data stays visible as
`{field}` instead of failing the whole message, and nothing can reach attributes or indexes.
"""

from __future__ import annotations

# What string.Formatter().parse() calls, without importing `string` (~1 ms of a coordinator's
# start, which fills a template for every message).
from _string import formatter_parser  # type: ignore[import-not-found]
from collections.abc import Mapping


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fill(template: str, values: Mapping[str, object]) -> str:
    out: list[str] = []
    try:
        parsed = list(formatter_parser(template))
    except ValueError:
        return template
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if field not in values or values[field] is None:
            out.append("{" + field + "}")
            continue
        value = values[field]
        try:
            out.append(format(value, spec) if spec else _text(value))
        except (ValueError, TypeError):
            out.append(_text(value))
        del conversion  # !r / !s are not offered in vigil templates
    return "".join(out)


def names(template: str) -> set[str]:
    """The fields `template` names (none when it is malformed: fill leaves it as it is)."""
    try:
        return {field for _, field, _, _ in formatter_parser(template) if field is not None}
    except ValueError:
        return set()


def dig(data: object, path: str | None) -> object:
    """The value at a dotted path (`reply.from`) in nested objects, or None."""
    if not path:
        return data
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data

"""The spec and manifest JSON: byte for byte what json.dumps(indent=2, sort_keys=True,
ensure_ascii=False) writes, errors included."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.generate import jsontext


def standard(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(documents)
def test_json_data_is_written_as_json_dumps_writes_it(data: Any) -> None:
    assert jsontext.dumps(data) == standard(data)


class Level(enum.StrEnum):
    STRICT = "strict"


class Count(enum.IntEnum):
    THREE = 3


@pytest.mark.parametrize(
    "data",
    [
        {Level.STRICT: Count.THREE, "b": [Level.STRICT]},
        {1: "x", 2.5: "y"},
        {"x": {1, 2}},
        {1: 2, "a": 3},
    ],
    ids=["enums", "keys that are not strings", "a set", "keys that do not sort"],
)
def test_anything_else_is_left_to_json_dumps(data: Any) -> None:
    try:
        expected = standard(data)
    except TypeError as error:
        with pytest.raises(TypeError, match=str(error)):
            jsontext.dumps(data)
    else:
        assert jsontext.dumps(data) == expected


def test_a_cycle_is_the_error_json_dumps_raises() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(loop)

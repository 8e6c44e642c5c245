"""The committed JSON Schemas match the model, and the examples satisfy them."""

from __future__ import annotations

import json

import jsonschema
import pytest

from compiler.language import schemas
from compiler.language.loader import load_file
from tests.conftest import EXAMPLES, ROOT

REGENERATE = "python -m compiler.generate.regenerate"


@pytest.mark.parametrize("name", sorted(schemas.render_all()))
def test_committed_schema_is_current(name: str) -> None:
    committed = ROOT / "schemas" / name
    assert committed.exists(), f"schemas/{name} is missing; run `{REGENERATE}`"
    assert committed.read_text() == schemas.render_all()[name], (
        f"schemas/{name} is stale; run `{REGENERATE}` and commit the result"
    )


def test_schema_is_valid_json_schema() -> None:
    for text in schemas.render_all().values():
        jsonschema.Draft202012Validator.check_schema(json.loads(text))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_satisfy_the_schema(path) -> None:
    validator = jsonschema.Draft202012Validator(schemas.config_schema())
    errors = [e.message for e in validator.iter_errors(load_file(path).data)]
    assert errors == []


def test_schema_explains_keys() -> None:
    schema = schemas.config_schema()
    job = schema["$defs"]["Job"]
    assert "description" in job["properties"]["schedule"]
    assert job["additionalProperties"] is False


def test_schema_rejects_a_typo() -> None:
    validator = jsonschema.Draft202012Validator(schemas.config_schema())
    bad = {"name": "x", "coordinator": {"deliver_to": ["a"]}, "jobz": {}}
    assert list(validator.iter_errors(bad))


def test_finding_schema() -> None:
    validator = jsonschema.Draft202012Validator(schemas.finding_schema())
    assert not list(validator.iter_errors({"source": "a", "timestamp": "2026-01-01T00:00:00Z"}))
    assert list(validator.iter_errors({"timestamp": "2026-01-01T00:00:00Z"}))

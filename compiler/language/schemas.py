"""JSON Schemas generated from the model, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic._internal._docs_extraction import extract_docstrings_from_cls
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from compiler.fsutil import atomic_write
from compiler.language.model import Config, Finding

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CONFIG_SCHEMA_FILE = "vigil.schema.json"
FINDING_SCHEMA_FILE = "finding.schema.json"


class DocumentedSchema(GenerateJsonSchema):
    """The docstring under each field is its description, as pydantic's
    `use_attribute_docstrings` makes it. Read here rather than by the models: finding the
    docstrings means reading and parsing each model's source, a third of the model's
    start-up, which every command paid and only the schema needs."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model: type[BaseModel] = schema["cls"]
        properties = json_schema.get("properties", {})
        docstrings = extract_docstrings_from_cls(model, use_inspect=True)
        for name, field in model.model_fields.items():
            key = field.validation_alias if isinstance(field.validation_alias, str) else name
            if field.description is None and name in docstrings and key in properties:
                described = {**properties[key], "description": docstrings[name]}
                properties[key] = self.handle_ref_overrides(described)
        return json_schema


def config_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(mode="validation", schema_generator=DocumentedSchema)
    # Comment lines in YAML are not keys, but yaml-language-server needs nothing else at the top.
    return {"$schema": DRAFT, **schema}


def finding_schema() -> dict[str, Any]:
    schema = Finding.model_json_schema(mode="validation", schema_generator=DocumentedSchema)
    return {"$schema": DRAFT, **schema}


def render_all() -> dict[str, str]:
    """File name -> text, exactly as committed in schemas/."""
    return {
        CONFIG_SCHEMA_FILE: _dump(config_schema()),
        FINDING_SCHEMA_FILE: _dump(finding_schema()),
    }


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    written = []
    for name, text in render_all().items():
        atomic_write(directory / name, text)
        written.append(directory / name)
    return written

"""JSON Schemas generated from the model, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compiler.fsutil import atomic_write
from compiler.language.model import Config, Finding

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CONFIG_SCHEMA_FILE = "vigil.schema.json"
FINDING_SCHEMA_FILE = "finding.schema.json"


def config_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(mode="validation")
    # Comment lines in YAML are not keys, but yaml-language-server needs nothing else at the top.
    return {"$schema": DRAFT, **schema}


def finding_schema() -> dict[str, Any]:
    return {"$schema": DRAFT, **Finding.model_json_schema(mode="validation")}


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

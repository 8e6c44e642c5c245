"""Helpers for coordinator tests: the compiled bruba coordinator spec with a file channel, and a
way to drop findings into the inbox the way writers must (temp file, then rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.coordinator import run
from tests.runner_support import real_spec


def bruba_spec(state: Path) -> dict[str, Any]:
    spec = real_spec("bruba/specs/coordinator.json")
    spec["state_dir"] = str(state)
    spec["channels"]["signal"] = {
        "apprise": None,
        "apprise_secret": None,
        "command": None,
        "file": str(state / "signal.jsonl"),
        "timeout": 30,
    }
    return spec


def drop(state: Path, finding: dict[str, Any], name: str | None = None) -> Path:
    inbox = state / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    name = name or f"{finding['source']}-{os.urandom(4).hex()}.json"
    temp = state / f".{name}.tmp"
    temp.write_text(json.dumps(finding))
    os.rename(temp, inbox / name)
    return inbox / name


def delivered(state: Path, channel: str = "signal") -> list[dict[str, Any]]:
    path = state / f"{channel}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def heartbeat(spec: dict[str, Any], now: datetime) -> dict[str, int]:
    return run(spec, now)


def compiled_spec(vigil: Callable[..., Any], tmp_path: Path, config: str) -> dict[str, Any]:
    """The coordinator spec `vigil compile` makes of `config` (YAML; `{state}` is the state
    directory, tmp_path/state, whose `sink.jsonl` a file channel named sink may write)."""
    source = tmp_path / "vigil.yaml"
    source.write_text(config.replace("{state}", str(tmp_path / "state")))
    result = vigil("compile", source, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    spec: dict[str, Any] = json.loads((tmp_path / "out/specs/coordinator.json").read_text())
    return spec

"""Reading runs.jsonl (and its rotated predecessor) for status and cost. Unreadable lines are
skipped: the file is appended to by every run and may end in a partial line after a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_runs(state: Path) -> Iterator[dict[str, Any]]:
    """Every run record, oldest first."""
    for path in (state / "runs.jsonl.1", state / "runs.jsonl"):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record

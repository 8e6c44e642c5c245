"""What `vigil inbox`, `vigil outbox` and `vigil state` show: the runtime files of one config,
read without changing them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.errors import Warn
from compiler.operate.setup import ConfigView
from runner.alerts import NAG_KEY
from runner.clock import zone
from runner.contract import INBOX, PROCESSING, REFS, REJECTED, STATE
from runner.history import runs
from runner.rules.nag import NagRuleSpec, next_nag
from runner.statefile import StateUnreadable, peek_state
from runner.stateshapes import NAG, Shape
from runner.stateshapes import REFS as REFS_SHAPE


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_checked(state: Path, name: str, shape: Shape, warn: Warn) -> dict[str, Any]:
    """The state file `name` as the runner would use it (its own reader): the entries of a
    known shape, and a warning naming the file and what is wrong with it."""
    path = state / STATE / name
    try:
        usable, problem = peek_state(str(state), name, shape)
    except StateUnreadable as error:
        warn(f"{path} cannot be read ({error.reason}); not shown")
        return {}
    if problem is not None:
        shown = "the rest is shown" if usable else "not shown"
        warn(f"{path} {problem}; {shown}")
    return usable or {}


def inbox_rows(state: Path) -> list[dict[str, Any]]:
    rows = []
    for folder in (INBOX, PROCESSING):
        directory = state / folder
        paths = sorted(directory.iterdir()) if directory.is_dir() else []
        if folder == PROCESSING:  # the runner claims files into processing/claim-*/
            paths = [
                p
                for claim in paths
                for p in (sorted(claim.iterdir()) if claim.is_dir() else [claim])
            ]
        for path in paths:
            finding = _read_json(path) if path.is_file() and not path.is_symlink() else None
            source = finding.get("source") if isinstance(finding, dict) else None
            rows.append({"where": folder, "file": path.name, "source": source, "age_s": _age(path)})
    rejected = state / REJECTED
    for path in sorted(rejected.iterdir()) if rejected.is_dir() else []:
        if path.name.endswith(".reason"):
            continue
        note = path.with_name(path.name + ".reason")
        reason = note.read_text(encoding="utf-8").strip() if note.exists() else None
        rows.append({"where": "rejected", "file": path.name, "reason": reason, "age_s": _age(path)})
    return rows


def _age(path: Path) -> int:
    return int(datetime.now(UTC).timestamp() - path.lstat().st_mtime)


def run_rows(state: Path, job: str) -> list[dict[str, Any]]:
    """`vigil history JOB`: the job's recorded runs and missed firings, oldest first."""
    found = [record for record in runs(str(state)) if record.get("job") == job]
    found.sort(key=lambda record: str(record.get("start")))
    return [{key: record.get(key) for key in RUN_COLUMNS} for record in found]


RUN_COLUMNS = ("start", "result", "duration_s", "reason")


def outbox_rows(state: Path) -> list[dict[str, Any]]:
    from runner.delivery.outbox import outbox_status

    return outbox_status(state)


def open_codes(state: Path, warn: Warn) -> dict[str, str]:
    """Item (a reference code's subject) -> its open code, `r7` (state/refs.json)."""
    codes = read_checked(state, REFS, REFS_SHAPE, warn).get("refs") or {}
    return {
        str(entry.get("subject")): code
        for code, entry in codes.items()
        if entry.get("told") and not entry.get("closed")
    }


def nag_rows(config: ConfigView, state: Path, warn: Warn) -> list[dict[str, Any]]:
    rows = []
    codes = open_codes(state, warn) if config.nag else {}
    for name, spec in config.nag.items():
        rule = NagRuleSpec(name, spec, config.timezone)
        data = read_checked(state, rule.state_file, NAG, warn)
        for key, item in sorted((data.get("items") or {}).items()):
            count = int(item.get("nagCount") or 0)
            fields = item.get("fields") or {}
            rows.append(
                {
                    "code": codes.get(f"{NAG_KEY}{name}:{key}"),
                    "rule": name,
                    "key": key,
                    "title": fields.get("title") or fields.get("name"),
                    "status": item.get("status"),
                    "count": count,
                    "last_nagged": item.get("lastNagged"),
                    "next": _next_step(rule, item),
                }
            )
    return rows


def _next_step(rule: NagRuleSpec, item: dict[str, Any]) -> str:
    """What comes next for the item, and from when, as the runner's rule decides it."""
    coming = next_nag(rule, item)
    if coming is None:
        return "-" if item.get("status") in ("stopped", "resolved") else "stops"
    if coming.mention:
        label = "next mention"
    else:
        label = f"nag {coming.count}"
        label += f" once {coming.min_days:g}+ days overdue" if coming.min_days else ""
    if coming.not_before is not None:
        when = coming.not_before.astimezone(zone(rule.timezone))
        return f"{label}, not before {when:%Y-%m-%d %H:%M %Z}"
    return f"{label}, at the next finding"

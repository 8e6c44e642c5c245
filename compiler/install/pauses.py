"""Jobs the failure handler paused (`pause_after`, runner.pause): apply keeps their timers
stopped, plan and status say since when and why, `vigil enable` ends the pause."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import Warn
from runner.contract import PAUSES, STATE, job_unit, preflight_unit, timer
from runner.pause import pause_records, resume_command
from runner.statefile import StateUnreadable, peek_state
from runner.stateshapes import PAUSES as PAUSES_SHAPE

if TYPE_CHECKING:
    from compiler.generate.render import Tree

FAILURE_SPEC = "specs/failure.json"
"""The spec that names the state directory the handler records pauses in."""


@dataclass(frozen=True)
class Pause:
    job: str
    timers: tuple[str, ...]
    """The job's timer and its preflight's: kept stopped."""
    since: str
    failures: int
    reason: str
    resume: str
    """The command that ends the pause."""

    def words(self) -> str:
        """`since 2026-..Z, after 3 failures: <reason>`."""
        return f"since {self.since}, after {self.failures} failures: {self.reason}"

    def as_json(self) -> dict[str, object]:
        return {"since": self.since, "failures": self.failures, "reason": self.reason}


def read_pauses(state: Path, config: str, scope: str, warn: Warn) -> list[Pause]:
    """The paused jobs recorded in `state`, read without changing anything; a record file of
    another shape is named in a warning (the handler sets it aside when it next runs)."""
    where = state / STATE / PAUSES
    try:
        usable, problem = peek_state(str(state), PAUSES, PAUSES_SHAPE)
    except StateUnreadable as error:
        warn(f"{where} cannot be read ({error.reason}): paused jobs are not known")
        return []
    if problem is not None:
        warn(f"{where} {problem}: the jobs paused there are not known to be paused")
    return [
        Pause(
            job=job,
            timers=(timer(job_unit(config, job)), timer(preflight_unit(config, job))),
            since=str(record.get("since")),
            failures=int(str(record.get("failures"))),
            reason=str(record.get("reason") or "no reason recorded"),
            resume=resume_command(job, scope),
        )
        for job, record in sorted(pause_records(usable or {}).items())
    ]


def tree_pauses(tree: Tree | None, live: bool, warn: Warn) -> list[Pause]:
    """The paused jobs of the config `tree` was rendered from, with the timers it has."""
    spec = tree.get(FAILURE_SPEC) if tree is not None and live else None
    if spec is None:
        return []
    data = json.loads(spec.content)
    state = Path(os.path.expanduser(data["state_dir"]))
    pauses = read_pauses(state, data["config"], data.get("scope", "user"), warn)
    return [
        replace(pause, timers=tuple(t for t in pause.timers if f"units/{t}" in (tree or {})))
        for pause in pauses
    ]

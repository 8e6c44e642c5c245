"""The install workflows behind the CLI: plan, apply, rollback, history, uninstall."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.errors import UsageError, VigilError
from compiler.generate.build import build, units_python
from compiler.generate.packages import Problem, missing, needs
from compiler.generate.render import Tree
from compiler.install.apply import ApplyOutcome, apply, start_flags
from compiler.install.changes import JobChange, changed_job_files, changed_jobs
from compiler.install.generations import NOT_RENDERED_HERE, Installation, resolve_name
from compiler.install.pauses import tree_pauses
from compiler.install.plan import Plan, make_plan
from compiler.install.systemctl import Systemctl
from compiler.language.model import Config
from compiler.layout import Scope
from runner.contract import ROLLBACK_REQUEST, STATE

Confirm = Callable[[Plan, Tree | None], bool]


@dataclass
class Prepared:
    installation: Installation
    plan: Plan
    tree: Tree | None
    meta: dict[str, Any]
    warnings: list[str]
    config: Config | None = None
    missing_packages: tuple[Problem, ...] = ()
    """What the units' interpreter lacks that the config needs: apply refuses."""
    job_changes: tuple[JobChange, ...] = ()
    """The jobs the plan adds or changes (what a canary tries)."""


def prepare(
    config: Path,
    scope: Scope,
    *,
    python: str | None = None,
    revision: str | None = None,
    host: str | None = None,
    content: bytes | None = None,
) -> Prepared:
    """Validate and render a config (for fleet host `host`; `content`: the config to be written
    at `config`) and plan it against what is installed."""
    validated, tree = build(
        config, python=python, system=scope.system, revision=revision, host=host, content=content
    )
    installation = Installation(scope, validated.config.name)
    meta: dict[str, Any] = {
        "reason": f"apply --git {revision}" if revision else "apply",
        "config": str(config.absolute()),
    }
    plan = make_plan(tree, installation)
    warnings = list(validated.warnings)
    plan.paused = tree_pauses(tree, scope.live, warnings.append)
    plan.disabled = [u for u in disabled_by_hand(installation, tree) if u not in plan.held]
    changed: list[JobChange] = []
    if plan.has_changes:  # what a failure after this change will name (`vigil history`)
        changed = changed_jobs(validated.config, tree, installation)
        meta["jobs_changed"] = {change.job: change.words() for change in changed}
    absent = missing(units_python(python), needs(validated.config))
    return Prepared(
        installation,
        plan,
        tree,
        meta,
        warnings,
        validated.config,
        tuple(absent),
        tuple(changed),
    )


def disabled_by_hand(installation: Installation, tree: Tree | None) -> list[str]:
    """Units the installed generation starts and the new one still wants, that someone
    disabled (`vigil disable`, `systemctl disable`)."""
    if not installation.scope.live or installation.current() is None or tree is None:
        return []
    before = start_flags(installation.load_tree(installation.current() or 0))
    wanted = [u for u, on in start_flags(tree).items() if on and before.get(u)]
    try:
        shown = Systemctl(installation.scope).show_many(wanted, "UnitFileState")
    except VigilError:
        return []
    return sorted(u for u in wanted if shown.get(u, {}).get("UnitFileState") == "disabled")


def prepare_rollback(
    scope: Scope, name: str | None, number: int | None, *, auto: bool = False
) -> Prepared | None:
    """A rollback to `number` (default: the generation before the current). `auto`: the one
    the failure handler asked for (release.auto_rollback), None when it no longer applies."""
    installation = Installation(scope, resolve_name(scope, name))
    current = installation.current()
    request = rollback_request(installation) if auto else {}
    if auto and (number is None or request.get("to") != number or request.get("from") != current):
        return None
    numbers = installation.numbers()
    if number is None:
        earlier = [n for n in numbers if current is None or n < current]
        if not earlier:
            raise VigilError(f"{installation.name}: no generation before {current} to go back to")
        number = earlier[-1]
    if number not in numbers:
        listed = ", ".join(map(str, numbers)) or "none"
        raise UsageError(f"{installation.name}: no generation {number} (generations: {listed})")
    reason = f"auto-rollback to {number}: {request.get('reason')}" if auto else None
    foreign = installation.meta(number).get(NOT_RENDERED_HERE)
    if foreign:
        raise VigilError(
            f"{installation.name}: generation {number} came from another machine and could not "
            f"be rendered for this one ({foreign}); its units would run that machine's "
            "interpreter: roll back to another generation, or fix and apply its config.yaml"
        )
    tree = installation.load_tree(number)
    meta = {
        "reason": reason or f"rollback to {number}",
        "config": installation.meta(number).get("config"),
    }
    if current is not None:
        meta["jobs_changed"] = changed_job_files(installation.load_tree(current), tree)
    plan = make_plan(tree, installation)
    warnings: list[str] = []
    plan.paused = tree_pauses(tree, scope.live, warnings.append)
    return Prepared(installation, plan, tree, meta, warnings)


def rollback_request_path(installation: Installation) -> Path | None:
    """Where the failure handler records the automatic rollback it asks for."""
    current = installation.current()
    if current is None:
        return None
    spec = json.loads(installation.load_tree(current)["specs/failure.json"].content)
    return Path(os.path.expanduser(spec["state_dir"])) / STATE / ROLLBACK_REQUEST


def rollback_request(installation: Installation) -> dict[str, Any]:
    """What the failure handler recorded when it asked for an automatic rollback."""
    path = rollback_request_path(installation)
    if path is None:
        return {}
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return request if isinstance(request, dict) else {}


def prepare_uninstall(scope: Scope, name: str) -> Prepared:
    installation = Installation(scope, name)
    if installation.current() is None:
        raise VigilError(f"{name} is not installed ({installation.data_dir})")
    return Prepared(installation, make_plan(None, installation), None, {"reason": "uninstall"}, [])


def run(prepared: Prepared) -> ApplyOutcome:
    outcome = apply(prepared.tree, prepared.installation, meta=prepared.meta, plan=prepared.plan)
    if prepared.tree is None:
        for number in prepared.installation.numbers():
            prepared.installation.remove_generation(number)
    return outcome

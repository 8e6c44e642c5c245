"""Canary applies (`vigil apply --canary`, `release: {canary: true}`): the new generation is
stored beside the live one, every new or changed job of it is tried from there (or its
`check:` run, or skipped: `canary:`), and the switch happens only when every try passed.
Otherwise the stored generation is removed and nothing live was touched: unit files, the
`current` link and `vigil plan` are exactly as before. Ctrl-C ends the try and the canary the
same way."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import VigilError
from compiler.generate.specs import state_dir as configured_state_dir
from compiler.install.apply import ApplyOutcome, apply, store
from compiler.install.changes import JobChange
from compiler.install.trial import Tried, Trier, ending_cleanly
from compiler.install.workflows import Prepared
from compiler.language.model import Config
from compiler.language.model.release import CanaryMode


@dataclass(frozen=True)
class CanaryStep:
    """What the canary does with one new or changed job."""

    job: str
    mode: CanaryMode
    change: JobChange


def canary_steps(prepared: Prepared) -> list[CanaryStep]:
    """The new and changed jobs of a prepared apply, each with what the canary does with it."""
    config = prepared.config
    if config is None:
        return []
    return [
        CanaryStep(change.job, mode_of(config, change.job), change)
        for change in prepared.job_changes
    ]


def mode_of(config: Config, job: str) -> CanaryMode:
    chosen = config.jobs[job].canary
    if chosen is not None:
        return chosen
    return CanaryMode.CHECK if config.jobs[job].check is not None else CanaryMode.TRY


class CanaryFailed(VigilError):
    """A try failed: nothing was switched."""

    def __init__(self, failed: list[Tried], previous: int | None) -> None:
        kept = f"generation {previous} is still live" if previous else "nothing was installed"
        names = ", ".join(tried.job for tried in failed)
        super().__init__(f"canary failed ({names}): {kept}; nothing was changed")
        self.failed = failed


def run_canary(prepared: Prepared, on_try: Callable[[Tried], None]) -> ApplyOutcome:
    """Store, try, then switch (or remove what was stored). `on_try` sees each try as it ends."""
    with ending_cleanly():
        return _run_canary(prepared, on_try)


def _run_canary(prepared: Prepared, on_try: Callable[[Tried], None]) -> ApplyOutcome:
    assert prepared.tree is not None and prepared.config is not None
    installation = prepared.installation
    steps = [s for s in canary_steps(prepared) if s.mode is not CanaryMode.SKIP]
    system = installation.scope.system
    state_dir = Path(os.path.expanduser(configured_state_dir(prepared.config, system)))
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    number = store(prepared.tree, installation, prepared.meta, prepared.plan)
    live = False
    try:
        tree_name = installation.tree_name(number)
        trier = Trier(installation, prepared.config, prepared.tree, tree_name, state_dir)
        busy = [reason for step in steps if (reason := trier.busy(step.job))]
        if busy:
            raise VigilError("\n".join([*busy, "canary not run: nothing was changed"]))
        failed = []
        for step in steps:
            tried = trier.run(step.job, step.mode)
            on_try(tried)
            if not tried.passed:
                failed.append(tried)
        if failed:
            raise CanaryFailed(failed, installation.current())
        outcome = apply(
            prepared.tree,
            installation,
            meta=prepared.meta,
            plan=prepared.plan,
            stored=number,
        )
        live = True
        return outcome
    finally:
        if not live:  # a failed try, Ctrl-C, a failed switch (apply removed it already)
            installation.remove_generation(number)

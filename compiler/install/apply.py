"""Apply a plan: store a new generation, switch the live units to it, and tell systemd.

Only units whose files changed are restarted (restarting an unchanged timer can fire it off
schedule). Removed units are stopped, disabled and reset. If any step fails, the previous
generation is put back, files and runtime state alike, and the error names the step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from compiler.errors import VigilError
from compiler.fsutil import atomic_write, write_all
from compiler.generate.render import UNIT_MODE, Tree
from compiler.generate.verify import verify_tree
from compiler.install.generations import Installation
from compiler.install.plan import Plan, make_plan
from compiler.install.systemctl import Systemctl
from runner.fsatomic import describe  # one wording for the compiler and the runner

WANTED_BY = {".timer": "timers.target", ".path": "paths.target", ".service": "default.target"}


class ApplyError(VigilError):
    def __init__(self, step: str, reason: str, restored: str) -> None:
        super().__init__(f"apply failed at {step}: {reason}\n{restored}")
        self.step = step


@dataclass
class ApplyOutcome:
    """What apply did: the generation now live (None: uninstalled) and the units it touched."""

    plan: Plan
    generation: int | None = None
    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


def start_flags(tree: Tree | None) -> dict[str, bool]:
    """unit -> whether apply enables and starts it, from a tree's manifest."""
    if tree is None:
        return {}
    units = json.loads(tree["manifest.json"].content).get("units", {})
    return {name: bool(entry.get("start")) for name, entry in units.items()}


def apply(
    new: Tree | None,
    installation: Installation,
    *,
    meta: dict[str, Any],
    plan: Plan | None = None,
    verify: bool = True,
    stored: int | None = None,
) -> ApplyOutcome:
    """Make `new` the live generation (None: uninstall). Returns what was done. `stored`: the
    generation `new` was already written as (a canary's, tried before it goes live)."""
    plan = plan or make_plan(new, installation)
    if plan.foreign:
        listed = ", ".join(installation.unit_dir.joinpath(p[6:]).as_posix() for p in plan.foreign)
        raise VigilError(f"refusing to overwrite unit files vigil did not write: {listed}")
    outcome = ApplyOutcome(plan)
    if not plan.has_changes:
        return outcome
    if new is not None and verify:
        problems = verify_tree(new, installation.name, system=installation.scope.system)
        if problems:
            raise ApplyError("verify", "\n  " + "\n  ".join(problems), "nothing was changed")
    previous = installation.current()
    before = start_flags(installation.load_tree(previous)) if previous is not None else {}
    after = start_flags(new)
    number = stored
    if stored is not None:  # a canary's, stored before its tries: it goes live now
        installation.update_meta(stored, created=_now())
    if new is not None and stored is None:
        try:
            number = store(new, installation, meta, plan)
        except OSError as exc:  # a full disk, a read-only file system: nothing is live yet
            kept = f"generation {previous} is still active" if previous else "nothing was changed"
            raise ApplyError("storing the new generation", describe(exc), kept) from None
    outcome.generation = number
    switch = _Switch(installation, plan, before, after, number, previous)
    switch.run(outcome)
    return outcome


def store(new: Tree, installation: Installation, meta: dict[str, Any], plan: Plan) -> int:
    """Write `new` as the next generation, not live yet; returns its number."""
    meta = {**meta, "created": _now()}
    meta["changes"] = plan.summary()
    meta["previous"] = installation.current()
    return installation.write_generation(new, meta)


def _now() -> str:
    """A generation's `created`: when it goes live. Milliseconds: a failure handler tells the
    runs before the switch from the runs after it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Switch:
    """The steps that touch the live system, and how to undo them."""

    def __init__(
        self,
        installation: Installation,
        plan: Plan,
        before: dict[str, bool],
        after: dict[str, bool],
        number: int | None,
        previous: int | None,
    ) -> None:
        self.installation = installation
        self.plan = plan
        self.before, self.after = before, after
        self.number, self.previous = number, previous
        scope = installation.scope
        self.systemd = Systemctl(scope) if scope.live else None

    def run(self, outcome: ApplyOutcome) -> None:
        step = "start"
        try:
            # Templates (failure@.service) have no instance to stop or reset.
            removed = [u for u in self.before if u not in self.after and "@." not in u]
            turned_off = [u for u, on in self.before.items() if on and not self.after.get(u)]
            step = "stopping removed units"
            outcome.stopped = sorted(set(removed) | set(turned_off))
            self._disable(outcome.stopped)
            step = "writing unit files"
            self._write_units()
            step = "switching the current generation"
            self.installation.switch(self.number)
            step = "daemon-reload"
            self._reload()
            step = "starting units"
            outcome.started, outcome.restarted = self._start()
            step = "reset-failed"
            if self.systemd:
                self.systemd.reset_failed(removed)
            step = "checking that units are active"
            self._check_active()
        except BaseException as exc:  # every failure is rolled back, then reported
            restored = self._restore()
            if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: undone, and still an interrupt
                raise
            reason = describe(exc) if isinstance(exc, OSError) else str(exc)
            raise ApplyError(step, reason, restored) from None

    def _disable(self, units: list[str]) -> None:
        if self.systemd:
            self.systemd.disable_now(units)
        else:
            for unit in units:
                self._wants_link(unit, present=False)

    def _write_units(self) -> None:
        # All new unit files are written before any replaces its predecessor: a full disk fails
        # with every unit file as it was.
        unit_dir = self.installation.unit_dir
        write_all(
            (unit_dir / change.unit, change.new, UNIT_MODE)
            for change in self.plan.changes
            if change.unit is not None
            and change.action in ("create", "update")
            and change.new is not None
        )
        for change in self.plan.changes:
            if change.unit is not None and change.action == "delete":
                (unit_dir / change.unit).unlink(missing_ok=True)

    def _reload(self) -> None:
        if self.systemd:
            self.systemd.daemon_reload()

    def _start(self) -> tuple[list[str], list[str]]:
        created = set(self.plan.units("create"))
        updated = set(self.plan.units("update"))
        # A paused job's timer stays stopped, even when its files changed.
        wanted = [u for u, on in sorted(self.after.items()) if on and u not in self.plan.held]
        start = [u for u in wanted if u in created or not self.before.get(u)]
        start += [u for u in self.plan.disabled if u not in start]
        restart = [u for u in wanted if u in updated and u not in start]
        if self.systemd:
            self.systemd.enable_now(start)
            self.systemd.restart(restart)
        else:
            for unit in start:
                self._wants_link(unit, present=True)
        return start, restart

    def _check_active(self) -> None:
        if not self.systemd:
            return
        for unit, on in sorted(self.after.items()):
            if on and unit not in self.plan.held:
                state = self.systemd.active_state(unit)
                if state not in ("active", "activating", "reloading"):
                    raise VigilError(f"{unit} is {state} after starting it")

    def _wants_link(self, unit: str, *, present: bool) -> None:
        target = WANTED_BY.get(unit[unit.rfind(".") :])
        if target is None:
            return
        link = self.installation.unit_dir / f"{target}.wants" / unit
        link.unlink(missing_ok=True)
        if present:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f"../{unit}")

    def _restore(self) -> str:
        """Put the previous generation back; returns a sentence saying how that went."""
        failures: list[str] = []
        attempt = _collector(failures)
        installation = self.installation
        old = installation.load_tree(self.previous) if self.previous is not None else {}
        created = [u for u in self.after if u not in self.before]
        attempt("stop new units", lambda: self._disable(created))
        for change in self.plan.changes:
            if change.unit is None:
                continue
            path = installation.unit_dir / change.unit
            previous = old.get(change.path)
            if previous is not None and _holds(path, previous.content):
                continue  # never replaced (a full disk stopped it): nothing to write back
            if previous is not None:
                attempt(f"restore {change.unit}", partial(atomic_write, path, previous.content))
            else:
                attempt(f"remove {change.unit}", partial(path.unlink, missing_ok=True))
        attempt("switch back", lambda: installation.switch(self.previous))
        attempt("daemon-reload", self._reload)
        wanted = [u for u, on in sorted(self.before.items()) if on and u not in self.plan.held]
        if self.systemd:
            systemd = self.systemd
            attempt("restart previous units", lambda: systemd.enable_now(wanted))
            attempt("reset-failed", lambda: systemd.reset_failed(created))
        else:
            for unit in wanted:
                attempt(f"enable {unit}", partial(self._wants_link, unit, present=True))
        if self.number is not None:
            installation.remove_generation(self.number)
        where = f"generation {self.previous}" if self.previous is not None else "the state before"
        if failures:
            return f"putting back {where} also failed: " + "; ".join(failures)
        return f"{where} is active again"


def _holds(path: Path, content: bytes) -> bool:
    try:
        return path.read_bytes() == content
    except OSError:
        return False


def _collector(failures: list[str]) -> Callable[[str, Callable[[], object]], None]:
    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # restoring goes on; each failure is reported
            failures.append(f"{what}: {exc}")

    return attempt

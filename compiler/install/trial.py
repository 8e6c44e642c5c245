"""`vigil try JOB` and the tries of a canary apply: one run of a job exactly as its timer would
make it, then its findings through the coordinator against a copy of the state.

The run is a copy of the job's generated service, started once by the real manager from the
runtime unit directory: the same sandbox, credentials, environment, working directory, user
and timeouts, so a sandbox or credential problem shows now and not at 07:00. The copy differs
in what the run may not touch: its findings and record go to a try directory (see
runner.trial), its output to a file the report quotes, and no failure alert is raised.

The findings then go through the coordinator's rules and composition in-process, against a
copy of state/ in that directory, with delivery off: the report shows the messages that would
be sent, to which channel, and which state files would change. Nothing real is written but a
model's spend (a try is a real call) and the job's own doings.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.errors import ExitCode, UsageError, VigilError
from compiler.fsutil import write_all
from compiler.generate.render import Tree, service_timeout
from compiler.install.generations import Installation
from compiler.install.systemctl import Systemctl
from compiler.language.model import Config
from compiler.language.model.release import CanaryMode
from compiler.layout import Scope, unit_prefix
from runner.contract import (
    CHECK_ARG,
    INBOX,
    NO_MODEL_ARG,
    STATE,
    TRIES,
    TRY_ARG,
    job_unit,
    service,
    try_unit,
)
from runner.history import last_run

OUTPUT = "output"
"""In a try's directory: what the run printed (the journal would have had it)."""
START_MARGIN = 120
"""Seconds beyond the service's own start timeout that `systemctl start` of a try may take."""
STATE_DIFF_LINES = 40
"""Lines of one state file's diff the report shows."""
BUSY = ("active", "activating", "deactivating", "reloading")


@dataclass
class StateChange:
    """A state file the try's findings would create or change."""

    name: str
    action: str  # create | update | delete
    diff: list[str]


@dataclass
class Tried:
    """One try: how the run ended, what it said, and what the coordinator would do with it."""

    job: str
    unit: str
    mode: CanaryMode
    result: str
    """systemd's Result= of the run (success, exit-code, timeout, signal, ...)."""
    exit_status: int
    record: dict[str, Any] | None
    """The runner's record of the run (None: the runner never got to write one)."""
    output: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    held: int = 0
    """Alerts quiet hours would hold instead of sending now."""
    state: list[StateChange] = field(default_factory=list)
    coordinator_log: str = ""

    @property
    def passed(self) -> bool:
        return self.result == "success" and self.exit_status == 0

    @property
    def exit_code(self) -> int:
        """The job's exit status; a run systemd failed without one (killed, no start) is 1."""
        if self.exit_status:
            return self.exit_status
        return ExitCode.OK if self.result == "success" else ExitCode.FAILED

    @property
    def reason(self) -> str:
        if self.record and self.record.get("reason"):
            return str(self.record["reason"])
        return "" if self.passed else f"{self.result} (exit status {self.exit_status})"

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "unit": self.unit,
            "mode": str(self.mode),
            "passed": self.passed,
            "result": self.result,
            "exit_status": self.exit_status,
            "run": self.record,
            "output": self.output,
            "findings": self.findings,
            "messages": self.messages,
            "held": self.held,
            "state": [
                {"file": change.name, "action": change.action, "diff": change.diff}
                for change in self.state
            ],
        }


@contextlib.contextmanager
def ending_cleanly() -> Iterator[None]:
    """SIGTERM and SIGHUP (a kill, a closed terminal or ssh session) end a try or a canary the
    way Ctrl-C does, so that its cleanup runs: Python runs `finally` blocks only for SIGINT."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    try:
        previous = {n: signal.signal(n, interrupt) for n in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not the main thread: leave signals to it
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def staged_tree(installation: Installation, tree: Tree) -> Iterator[str]:
    """Write `tree` below the data directory for tries (not a generation); yields its name
    relative to the data directory, which the try's units run it from."""
    name = f"{TRIES}/{os.urandom(6).hex()}"
    directory = installation.data_dir / name
    try:
        write_all((directory / relative, f.content, f.mode) for relative, f in tree.items())
        yield name
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            (installation.data_dir / TRIES).rmdir()  # only when no other try is using it


class Trier:
    """Tries jobs of one rendered tree, staged at `tree_name` below the data directory (a
    try's staged copy, or a canary's generation not live yet)."""

    def __init__(
        self,
        installation: Installation,
        config: Config,
        tree: Tree,
        tree_name: str,
        state_dir: Path,
    ) -> None:
        self.installation = installation
        self.config = config
        self.tree = tree
        self.tree_name = tree_name
        self.state_dir = state_dir
        self.systemd = Systemctl(installation.scope)

    def busy(self, job: str) -> str | None:
        """Why `job` cannot be tried now (its timer's run is in progress), or None."""
        unit = service(job_unit(self.installation.name, job))
        shown = self.systemd.show(unit, "ActiveState", "ActiveEnterTimestamp")
        if shown.get("ActiveState") in BUSY:
            since = shown.get("ActiveEnterTimestamp") or "now"
            return f"{unit} is running (since {since}): try again when that run has ended"
        return None

    def run(self, job: str, mode: CanaryMode, *, no_model: bool = False) -> Tried:
        """One try of `job` (mode TRY: the job; CHECK: its `check:` command)."""
        name = self.installation.name
        tag = os.urandom(6).hex()
        unit = service(try_unit(name, job, tag))
        directory = self.state_dir / TRIES / tag
        unit_file = self.installation.scope.runtime_unit_dir() / unit
        try:
            (directory / STATE).mkdir(parents=True, mode=0o700)
            _copy_state(self.state_dir / STATE, directory / STATE)
            flags = [CHECK_ARG] if mode is CanaryMode.CHECK else [NO_MODEL_ARG] if no_model else []
            text = self._unit_text(job, directory, flags)
            write_all([(unit_file, text.encode("utf-8"), 0o644)])
            shown = self._start(unit, self._timeout(job))
            tried = Tried(
                job=job,
                unit=unit,
                mode=mode,
                result=shown.get("Result") or "unknown",
                exit_status=int(shown.get("ExecMainStatus") or 0),
                record=last_run(str(directory), job),
                output=_read_text(directory / OUTPUT),
            )
            if mode is CanaryMode.TRY:
                _dry_run(self.installation.data_dir / self.tree_name, directory, tried)
            return tried
        finally:
            self.systemd.stop([unit])  # Ctrl-C: the run ends with the try
            self.systemd.reset_failed([unit])
            unit_file.unlink(missing_ok=True)
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(OSError):
                (self.state_dir / TRIES).rmdir()

    def _timeout(self, job: str) -> float:
        """The job service's own TimeoutStartSec= (its command, model calls, a chain's wait),
        and time for systemd to stop it."""
        return service_timeout(self.config, self.config.jobs[job]) + START_MARGIN

    def _unit_text(self, job: str, directory: Path, flags: list[str]) -> str:
        """The job's service as generated, run from the staged tree, with the try's output
        and arguments and without the failure alert."""
        name = self.installation.name
        system = self.installation.scope.system
        original = self.tree[f"units/{service(job_unit(name, job))}"].content.decode("utf-8")
        current = unit_prefix(system, name) + "/"
        staged = unit_prefix(system, name, self.tree_name) + "/"
        where = _unit_escape(str(directory))
        lines = []
        for line in original.splitlines():
            if line.startswith("OnFailure="):
                continue
            line = line.replace(current, staged)
            if line.startswith("Description="):
                line += " (vigil try)"
            elif line.startswith("ExecStart="):
                args = [TRY_ARG, str(directory), *flags]
                line += "".join(f' "{_unit_escape(arg, quoted=True)}"' for arg in args)
            lines.append(line)
            if line == "[Service]":
                lines.append(f"StandardOutput=append:{where}/{OUTPUT}")
                lines.append(f"StandardError=append:{where}/{OUTPUT}")
        return "\n".join(lines) + "\n"

    def _start(self, unit: str, timeout: float) -> dict[str, str]:
        """Start the try's unit and wait for its run to end; systemd's word on how it went."""
        started = self.systemd.run("start", unit, check=False, timeout=timeout)
        if "not found" in started.stderr:  # a manager that does not see new files unasked
            self.systemd.daemon_reload()
            started = self.systemd.run("start", unit, check=False, timeout=timeout)
        shown = self.systemd.show(unit, "Result", "ExecMainStatus", "LoadState", "ActiveState")
        if shown.get("LoadState") not in ("loaded", None):
            reason = (started.stderr or started.stdout).strip()
            raise VigilError(f"{unit}: the manager did not load the try's unit: {reason}")
        deadline = time.monotonic() + 10
        while shown.get("ActiveState") in BUSY and time.monotonic() < deadline:
            time.sleep(0.1)  # `start` returned on a signal: let the run wind down
            shown = self.systemd.show(unit, "Result", "ExecMainStatus", "ActiveState")
        return shown


def _unit_escape(text: str, *, quoted: bool = False) -> str:
    """`text` as a unit file value: specifiers (%) doubled; in quotes (an ExecStart=
    argument), \\ and " escaped and $ doubled (systemd expands ${VAR} there)."""
    text = text.replace("%", "%%")
    if quoted:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return text


def _copy_state(source: Path, target: Path) -> None:
    """The state files as they are now (what the coordinator's rules read)."""
    if not source.is_dir():
        return
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith("."):
            with contextlib.suppress(OSError):  # unreadable: the dry run sees it missing
                shutil.copy2(path, target / path.name)


def _dry_run(staged: Path, directory: Path, tried: Tried) -> None:
    """The try's findings through the coordinator of the staged tree, in `directory`."""
    from runner.clock import now
    from runner.coordinator import HELD, load_spec
    from runner.coordinator import run as coordinate
    from runner.delivery.outbox import outbox_dir

    inbox = directory / INBOX
    names = sorted(n for n in os.listdir(inbox) if not n.startswith(".")) if inbox.is_dir() else []
    tried.findings = [_read_json(inbox / n) for n in names]
    if not names:
        return
    spec = load_spec(str(staged / "specs/coordinator.json"))
    spec["state_dir"] = str(directory)
    before = _state_files(directory / STATE)
    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        coordinate(spec, now(), deliver=False)
    tried.coordinator_log = log.getvalue()
    outbox = Path(outbox_dir(str(directory)))
    for path in sorted(outbox.glob("*.json")):
        message = _read_json(path).get("message") or {}
        channels: dict[str, Any] = dict(spec.get("channels") or {})
        channel = channels.get(str(message.get("channel")))
        tried.messages.append({**message, "to": _channel_words(channel or {})})
    after = _state_files(directory / STATE)
    held = _read_json(directory / STATE / HELD).get("alerts")
    tried.held = len(held) if isinstance(held, list) else 0
    tried.state = _changes(before, after)


def _channel_words(channel: dict[str, Any]) -> str:
    """A channel as the report names it; an apprise URL may hold a token, so only its
    scheme is shown."""
    if channel.get("file"):
        return f"file {channel['file']}"
    if channel.get("command"):
        return f"command {channel['command'][0]}"
    if channel.get("apprise"):
        return f"apprise {str(channel['apprise']).partition(':')[0]}://..."
    if channel.get("apprise_secret"):
        return f"apprise (secret {channel['apprise_secret']})"
    return "unknown channel"


def _state_files(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        return {}
    return {p.name: _read_text(p) for p in sorted(directory.iterdir()) if p.is_file()}


def _changes(before: dict[str, str], after: dict[str, str]) -> list[StateChange]:
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        action = "create" if old is None else "delete" if new is None else "update"
        diff = list(
            difflib.unified_diff(
                (old or "").splitlines(),
                (new or "").splitlines(),
                f"state/{name}",
                f"state/{name}",
                lineterm="",
                n=1,
            )
        )
        if len(diff) > STATE_DIFF_LINES:
            diff = [*diff[:STATE_DIFF_LINES], f"... {len(diff) - STATE_DIFF_LINES} more lines"]
        changes.append(StateChange(name, action, diff))
    return changes


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def try_jobs(
    config: Path,
    scope: Scope,
    jobs: list[str],
    *,
    every: bool = False,
    changed: bool = False,
    no_model: bool = False,
    check: bool = False,
    python: str | None = None,
) -> list[Tried]:
    """`vigil try`: the named jobs (or all of them, or those new or changed against the
    installed generation) of `config`, each tried once, in config order."""
    from compiler.generate.build import build
    from compiler.generate.specs import state_dir as configured_state_dir
    from compiler.install.changes import changed_jobs
    from compiler.language.references import did_you_mean

    validated, tree = build(config, python=python, system=scope.system)
    loaded = validated.config
    installation = Installation(scope, loaded.name)
    for job in jobs:
        if job not in loaded.jobs:
            raise UsageError(did_you_mean(job, list(loaded.jobs), "job", "jobs"))
    if every:
        jobs = list(loaded.jobs)
    elif changed:
        jobs = [change.job for change in changed_jobs(loaded, tree, installation)]
    if check:
        missing = [job for job in jobs if loaded.jobs[job].check is None]
        if missing:
            raise UsageError(f"{', '.join(missing)}: no `check:` command to run")
    state_dir = Path(os.path.expanduser(configured_state_dir(loaded, scope.system)))
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = CanaryMode.CHECK if check else CanaryMode.TRY
    with ending_cleanly(), staged_tree(installation, tree) as tree_name:
        trier = Trier(installation, loaded, tree, tree_name, state_dir)
        busy = [reason for job in jobs if (reason := trier.busy(job))]
        if busy:
            raise VigilError("\n".join([*busy, "nothing was tried"]))
        return [trier.run(job, mode, no_model=no_model) for job in jobs]

"""Drives the real coordinator, job runner and watch runner through a World's timeline on
simulated time, and records what came out: the file channel's lines (what the person was told),
the agent's log, the model calls, job results, crashes and errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import traceback
from contextlib import ExitStack, contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import runner.coordinator
import runner.delivery.outbox
import runner.job
from compiler.generate.build import build
from runner.clock import iso
from runner.coordinator import load_spec
from runner.coordinator import run as run_coordinator
from tests.runner_support import API_KEY, ROOT, runner_env
from tests.simulation.api import SimAPI
from tests.simulation.scenario import (
    HEARTBEAT_SECONDS,
    HISTORY_MAX_BYTES,
    Event,
    World,
    config_text,
)

HEARTBEAT = timedelta(seconds=HEARTBEAT_SECONDS)
STATE_FILES = {
    "held-without-text": "held.json",
    "watch-version-2": "watch-urgent-mail.json",
    "nag-garbage": "nag-stale.json",
}


class SimulatedCrash(BaseException):
    """A coordinator run dying between two steps (not an Exception: nothing may catch it)."""


@dataclass
class Observed:
    lines: list[dict[str, Any]] = field(default_factory=list)
    agent: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[tuple[datetime, str, int]] = field(default_factory=list)
    runs: list[datetime] = field(default_factory=list)
    errors: list[tuple[datetime, str]] = field(default_factory=list)
    crashes: int = 0
    loud: list[tuple[datetime, str]] = field(default_factory=list)
    corrupted: list[tuple[datetime, str]] = field(default_factory=list)


class Driver:
    def __init__(self, world: World, root: Path, api: SimAPI) -> None:
        self.world = world
        self.root = root
        self.api = api
        self.seen = Observed()
        self.state = root / "state"
        self.credentials = root / "credentials"
        for directory in (self.state / "inbox", self.credentials, root / "research"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.credentials / "anthropic").write_text(API_KEY + "\n")
        (root / "agent.sh").write_text(
            f'[ -e {root}/agent-down ] && {{ echo "agent down" >&2; exit 1; }}\n'
            f"line=$(printf '%s' \"$2\" | tr '\\n' ' ')\n"
            f'printf \'%s\\t%s\\n\' "$1" "$line" >> {root}/agent.log\n'
        )
        self.specs = self._compile()
        self.coordinator = load_spec(str(self.specs["coordinator"]))
        self.serial = 0

    def _compile(self) -> dict[str, Path]:
        config = self.root / "vigil.yaml"
        config.write_text(config_text(self.world.params, self.root, self.api.url))
        _, tree = build(config)
        out = self.root / "specs"
        out.mkdir()
        paths = {}
        for path, generated in tree.items():
            if not path.startswith("specs/"):
                continue
            spec = json.loads(generated.content)
            if spec["kind"] in ("job", "coordinator"):
                spec["history_max_bytes"] = HISTORY_MAX_BYTES
            name = path.removeprefix("specs/").removesuffix(".json")
            paths[name] = out / f"{name}.json"
            paths[name].write_text(json.dumps(spec))
        return paths

    # -- the timeline ------------------------------------------------------------------------

    def run(self) -> Observed:
        # No power is lost in a simulated crash: fsync (most of a run's time here) is skipped.
        with mock.patch("os.fsync", new=lambda _fd: None):
            return self._run()

    def _run(self) -> Observed:
        for event in [*self.world.events, Event(self.world.end, "end")]:
            # The heartbeat timer (OnUnitActiveSec=) fires an hour after the coordinator last ran.
            while self.seen.runs and self.seen.runs[-1] + HEARTBEAT <= event.at:
                self.coordinate(self.seen.runs[-1] + HEARTBEAT, None)
            if event.kind == "end":
                break
            getattr(self, f"_on_{event.kind}")(event)
            if event.kind in ("drop", "job", "catchup", "deadline", "hostile", "corrupt", "beat"):
                self.coordinate(event.at, event.data.get("crash"))
        self.seen.lines = _read_lines(self.root / "sink.jsonl")
        agent_log = self.root / "agent.log"
        self.seen.agent = agent_log.read_text().splitlines() if agent_log.exists() else []
        self.seen.calls = list(self.api.calls_made)
        return self.seen

    def _on_beat(self, event: Event) -> None:
        pass

    def _on_drop(self, event: Event) -> None:
        for finding in event.data["findings"]:
            body = {"timestamp": iso(finding.at), **finding.body}
            self.serial += 1
            name = f"f{self.serial:07d}.json"
            temp = self.state / "inbox" / f".{name}"
            temp.write_text(json.dumps(body))
            os.rename(temp, self.state / "inbox" / name)

    def _on_job(self, event: Event) -> None:
        job = event.data["job"]
        fails = self.root / "backup-fails"
        if event.data.get("fails"):
            fails.touch()
        else:
            fails.unlink(missing_ok=True)
        self.api.now = event.at
        from runner.__main__ import main

        with (
            _env(
                CREDENTIALS_DIRECTORY=str(self.credentials), NO_PROXY="*", VIGIL_NOW=iso(event.at)
            ),
            _quiet_stderr(),
            _signals_kept(),
        ):
            code = main(["job", str(self.specs[job])])
        self.seen.jobs.append((event.at, job, code))

    def _on_catchup(self, event: Event) -> None:
        """Persistent= catch-up: the prompt jobs start together, each its own process."""
        self.api.now, self.api.delay = event.at, 0.3
        env = runner_env(VIGIL_NOW=iso(event.at), CREDENTIALS_DIRECTORY=str(self.credentials))
        started = [
            (
                job,
                subprocess.Popen(
                    [sys.executable, "-m", "runner", "job", str(self.specs[job])],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
            for job in event.data["jobs"]
        ]
        for job, process in started:
            self.seen.jobs.append((event.at, job, process.wait(timeout=120)))
        self.api.delay = 0.0

    def _on_deadline(self, event: Event) -> None:
        from runner.watch import main

        with _env(VIGIL_NOW=iso(event.at)), _quiet_stderr():
            main(str(self.specs[f"watch-{event.data['watch']}"]))

    def _on_hostile(self, event: Event) -> None:
        path = self.state / "inbox" / f"{event.data['name']}.json"
        kind = event.data["kind"]
        if kind == "directory":
            path.mkdir()
        elif kind == "binary":
            path.write_bytes(bytes(range(256)))
        elif kind == "bad-json":
            path.write_text('{"source": "news", "message": ')
        else:
            path.write_text('"a JSON string, not a finding"')

    def _on_corrupt(self, event: Event) -> None:
        kind = event.data["kind"]
        path = self.state / "state" / STATE_FILES[kind]
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "held-without-text":
            path.write_text(json.dumps({"version": 1, "alerts": [{"source": "news", "key": "k"}]}))
        elif kind == "watch-version-2":
            path.write_text(json.dumps({"version": 2, "instances": [{"key": "mail-x"}]}))
        else:
            path.write_bytes(b"\x00\x01 not json")
        self.seen.corrupted.append((event.at, STATE_FILES[kind]))

    def _on_agent(self, event: Event) -> None:
        down = self.root / "agent-down"
        if event.data["down"]:
            down.touch()
        else:
            down.unlink(missing_ok=True)

    def _on_file(self, event: Event) -> None:
        (self.root / "research" / f"{event.data['key']}.md").write_text("result\n")

    # -- one coordinator run, maybe killed at a chosen step ------------------------------------

    def coordinate(self, now: datetime, crash: str | None) -> None:
        self.seen.runs.append(now)
        for _attempt in range(2):
            stderr = io.StringIO()
            try:
                with _crash_at(crash), redirect_stderr(stderr):
                    run_coordinator(self.coordinator, now)
            except SimulatedCrash:
                self.seen.crashes += 1
                return
            except Exception as error:  # a run that dies on its own: the defect under test
                where = traceback.extract_tb(error.__traceback__)[-1]
                detail = (
                    f"{type(error).__name__}: {error} at {Path(where.filename).name}:{where.lineno}"
                )
                self.seen.errors.append((now, detail))
                self._repair()  # the operator sets the bad file aside; the next run goes on
                crash = None
                continue
            finally:
                self._listen(now, stderr.getvalue())
            return

    def _listen(self, now: datetime, text: str) -> None:
        for line in text.splitlines():
            if any(name in line for name in STATE_FILES.values()):
                self.seen.loud.append((now, line))

    def _repair(self) -> None:
        for _, name in self.seen.corrupted:
            (self.state / "state" / name).unlink(missing_ok=True)


@contextmanager
def _crash_at(point: str | None):  # type: ignore[no-untyped-def]
    if point is None:
        yield
        return
    fired = []

    def after(real, test=lambda *_a, **_k: True):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            result = real(*args, **kwargs)
            if not fired and test(*args, **kwargs):
                fired.append(point)
                raise SimulatedCrash(point)
            return result

        return wrapper

    targets = {
        "claimed": (runner.coordinator, "claim", None),
        "queued": (runner.delivery.outbox, "enqueue", None),
        "appended": (
            runner.delivery.outbox,
            "send",
            lambda _name, channel, *_a: bool(channel.get("file")),
        ),
        "rules-saved": (runner.coordinator, "_save_rule_states", None),
        "held-written": (
            runner.coordinator,
            "write_state",
            lambda _state_dir, name, *_a: name == "held.json",
        ),
    }
    module, name, test = targets[point]
    real = getattr(module, name)
    with mock.patch.object(module, name, after(real, test) if test else after(real)):
        yield


@contextmanager
def _signals_kept():  # type: ignore[no-untyped-def]
    """A job run in-process ignores SIGTERM at its end (a process about to exit); this one
    goes on, and every process it starts later would inherit the ignoring."""
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, handler)


@contextmanager
def _env(**values: str):  # type: ignore[no-untyped-def]
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet_stderr():  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        stack.enter_context(redirect_stderr(io.StringIO()))
        stack.enter_context(mock.patch("sys.stdout", io.StringIO()))
        yield


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

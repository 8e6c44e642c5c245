"""Fault injection: the coordinator killed with SIGKILL at many points while findings flow in.

Each trial starts the real coordinator (`python -I -m runner coordinator SPEC`: a subprocess, so
the kill is a real one) over one state directory, drops findings before and while it runs, and
kills it: after a seeded random delay, or the moment the disk shows it reached a chosen point
(a claim taken in processing/, a message queued in the outbox, a line appended to the channel's
file, an atomic write half done in tmp/). What the kill left is checked (every state file
parses), then the coordinator runs again until the inbox and processing/ are empty. At the end
every finding must have been delivered, none twice.

The seed is printed with the figures; VIGIL_CRASH_SEED=N reruns the same trials (the kill
moments themselves depend on timing, the aims and the findings do not).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.history import runs
from tests.conftest import sized
from tests.runner_support import runner_env

TRIALS = sized(30, 250)
SEED = int(os.environ.get("VIGIL_CRASH_SEED") or 20260202)
AIMS = ("random", "claimed", "queued", "appended", "writing")
"""Where a trial aims its kill (see module docstring); trial i aims at AIMS[i % 5]."""
TRIGGER_TIMEOUT = 20.0
LINE = re.compile(r"flow finding (\d{6})")
CONFIG = """\
name: crash
state_dir: {state}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
  sources:
    flow: {{external: true}}
    reminder-check: {{external: true}}
nag:
  reminders:
    source: reminder-check
    items: overdue
    key: id
    days_field: days_overdue
    min_interval: 20h
    ladder:
      - min_count: 1
        message: "Reminder: {{title}} is overdue"
"""


class Flow:
    """Uniquely numbered findings, renamed into the inbox the two ways writers do it: from a
    directory beside it, or from a dot-name inside it (the coordinator must skip those). Each
    becomes one line, delivered as it is or as a nag rule's first reminder."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.inbox = state / "inbox"
        self.beside = state / "writer"
        self.inbox.mkdir(parents=True)
        self.beside.mkdir()
        self.count = 0
        self.lock = threading.Lock()

    def drop(self, padding: int = 0) -> None:
        with self.lock:
            number = self.count
            self.count += 1
        name = f"flow-{number:06d}.json"
        finding: dict[str, object] = {
            "source": "flow",
            "timestamp": "2026-02-02T09:00:00Z",
            "message": f"flow finding {number:06d}" + " ." * padding,
        }
        if number % 7 == 3:  # one in seven goes through a nag rule (and its state file)
            item = {"id": f"r{number}", "title": f"flow finding {number:06d}", "days_overdue": 1}
            finding = {**finding, "source": "reminder-check", "overdue": [item]}
            del finding["message"]
        temp = (self.inbox / f".{name}.tmp") if number % 2 else (self.beside / name)
        temp.write_text(json.dumps(finding))
        os.rename(temp, self.inbox / name)

    def drop_while(self, count: int, gap: float) -> threading.Thread:
        """Drop `count` findings `gap` seconds apart, in a thread."""

        def write() -> None:
            for _ in range(count):
                self.drop()
                time.sleep(gap)

        thread = threading.Thread(target=write)
        thread.start()
        return thread


class Coordinator:
    def __init__(self, spec: Path) -> None:
        self.argv = [sys.executable, "-I", "-m", "runner", "coordinator", str(spec)]
        self.env = runner_env()

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def run(self) -> float:
        """One whole run, which must succeed; returns how long it took."""
        started = time.monotonic()
        process = self.start()
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode(errors="replace")
        return time.monotonic() - started


def names(directory: Path, pattern: str = "*") -> list[Path]:
    try:
        return sorted(directory.glob(pattern))
    except FileNotFoundError:
        return []


def triggers(state: Path, old_parts: set[Path]) -> dict[str, Callable[[], bool]]:
    deliveries = state / "deliveries.jsonl"
    size = deliveries.stat().st_size if deliveries.exists() else 0
    return {
        "claimed": lambda: bool(names(state / "processing", "claim-*")),
        "queued": lambda: bool(names(state / "outbox", "*.json")),
        "appended": lambda: deliveries.exists() and deliveries.stat().st_size > size,
        "writing": lambda: bool(set(names(state / "tmp", "*.part")) - old_parts),
    }


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TRIGGER_TIMEOUT
    while process.poll() is None and not ready():
        if time.monotonic() > deadline:
            break
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)


def what_is_left(state: Path, old_parts: set[Path]) -> list[str]:
    """What a killed run left on disk (for the coverage figures)."""
    left = []
    if names(state / "processing", "claim-*"):
        left.append("claim")
    queued = names(state / "outbox", "*.json")
    if queued:
        left.append("queued")
    if any("sending" in json.loads(path.read_text()) for path in queued):
        left.append("sending")
    if set(names(state / "tmp", "*.part")) - old_parts:
        left.append("partial write")
    return left or ["nothing"]


def state_problems(state: Path) -> list[str]:
    """Every JSON state file that does not parse, every torn line but a last one in runs.jsonl,
    and any dot-file in the inbox older than a writer would leave it."""
    problems = []
    for pattern in ("state/*.json", "outbox/*.json", "outbox/dead/*.json"):
        for path in state.glob(pattern):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                problems.append(f"{path.relative_to(state)}: {error}")
    for log in ("runs.jsonl", "runs.jsonl.1"):
        path = state / log
        lines = path.read_bytes().split(b"\n") if path.exists() else []
        for number, line in enumerate(lines[:-1], 1):  # the last piece: after the last newline
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{log}:{number}: a torn or bad line: {line[:80]!r}")
    # Readers must take the log as it is, a torn last line included.
    list(runs(str(state)))
    return problems


def delivered_ids(state: Path) -> tuple[Counter[str], int]:
    """How often each finding number was delivered, and how many torn lines the file has."""
    seen: Counter[str] = Counter()
    torn = 0
    for line in (state / "deliveries.jsonl").read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            torn += 1
            continue
        seen.update(LINE.findall(record["body"]))
    return seen, torn


def settle(coordinator: Coordinator, state: Path) -> int:
    """Run the coordinator until the inbox and processing/ are empty; returns the runs."""
    for count in range(1, 6):
        coordinator.run()
        if not names(state / "inbox") and not names(state / "processing"):
            return count
    raise AssertionError(f"not empty after 5 runs: {names(state / 'inbox')[:5]}")


@pytest.mark.slow  # the quick variant in CI, the long one (>= 200 trials) with VIGIL_LONG=1
def test_killed_coordinator(vigil, tmp_path: Path, record_property) -> None:
    killed_at_random(vigil, tmp_path, record_property)


def compiled(vigil, tmp_path: Path) -> tuple[Path, Coordinator, Flow]:
    state = tmp_path / "state"
    config = tmp_path / "crash.yaml"
    config.write_text(CONFIG.format(state=state))
    result = vigil("compile", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    return state, Coordinator(tmp_path / "out" / "specs" / "coordinator.json"), Flow(state)


def killed_at_random(vigil, tmp_path: Path, record_property) -> None:
    state, coordinator, flow = compiled(vigil, tmp_path)
    rng = random.Random(SEED)

    # How long a whole run takes here, so random kills spread over a run's life.
    spans = []
    for _ in range(3):
        for _ in range(30):
            flow.drop()
        spans.append(coordinator.run())
    span = sorted(spans)[1]

    log: list[dict[str, object]] = []
    left: Counter[str] = Counter()
    reruns = 0
    for trial in range(TRIALS):
        aim = AIMS[trial % len(AIMS)]
        before = 400 if trial % 10 == 9 else rng.randint(1, 60)  # now and then many findings
        during = rng.randint(0, 30)
        delay = rng.uniform(0.0, span * 1.2)
        # Now and then a message of about 1 MB, whose append a kill can tear (see below).
        padding = 10_000 if trial % 10 == 8 else 0
        for _ in range(before):
            flow.drop(padding)
        old_parts = set(names(state / "tmp", "*.part"))  # left by earlier kills
        ready = triggers(state, old_parts).get(aim)
        process = coordinator.start()
        writer = flow.drop_while(during, gap=0.002)
        if ready is None:
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
        else:
            kill_when(process, ready)
        _, err = process.communicate(timeout=60)
        writer.join()
        entry = {"trial": trial, "aim": aim, "delay": round(delay, 4), "before": before}
        log.append({**entry, "during": during, "exit": process.returncode})
        # Killed (-9), or finished first (0): never a failure of its own.
        assert process.returncode in (0, -signal.SIGKILL), (entry, err.decode(errors="replace"))
        if process.returncode == 0:
            left["finished before the kill"] += 1
        else:
            left.update(what_is_left(state, old_parts))
        assert state_problems(state) == [], (entry, "after the kill")
        reruns += settle(coordinator, state)

    assert state_problems(state) == []
    written_states = {path.name for path in names(state / "state", "*.json")}
    assert written_states >= {"delivered.json", "sources.json", "nag-reminders.json"}
    assert names(state / "outbox", "*.json") == [] and names(state / "outbox/dead") == []
    assert [path.name for path in names(state / "inbox")] == []  # no temp file left behind
    seen, torn = delivered_ids(state)
    written = {f"{number:06d}" for number in range(flow.count)}
    lost = sorted(written - set(seen))
    duplicates = sum(count - 1 for count in seen.values())
    figures = {
        "seed": SEED,
        "trials": TRIALS,
        "findings": flow.count,
        "lost": len(lost),
        "duplicates": duplicates,
        "torn lines": torn,
        "reruns": reruns,
        "run span s": round(span, 3),
        "kills left": dict(sorted(left.items())),
    }
    print(f"\ncrash figures: {json.dumps(figures)}")
    for key, value in figures.items():
        record_property(key, value)
    assert set(seen) <= written
    assert lost == [], f"lost findings {lost[:20]} (seed {SEED})"
    assert duplicates == 0, f"{duplicates} duplicates (seed {SEED}): {seen.most_common(5)}"
    # The aimed kills did land where they were aimed: in intake (a claim left), after queueing
    # (a message left in the outbox) and between appending and the ledger (a `sending` mark).
    for point in ("claim", "queued", "sending"):
        assert left[point] > 0, (point, figures)

    # The temp files of atomic writes the kills cut short are swept once they are old.
    parts = names(state / "tmp", "*.part")
    for path in parts:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    flow.drop()
    coordinator.run()
    assert names(state / "tmp", "*.part") == []


def test_a_line_torn_by_a_kill_never_swallows_the_next(vigil, tmp_path: Path) -> None:
    """SIGKILL in the middle of a long write() tears it (the kernel stops copying once a fatal
    signal is pending): what is appended next must start on a line of its own, and the torn
    copy must not count as delivered."""
    from runner.clock import iso, utc_now
    from runner.delivery.ledger import DeliveryLedger
    from runner.delivery.message import Message
    from runner.delivery.outbox import enqueue, file_name

    state, coordinator, flow = compiled(vigil, tmp_path)
    flow.drop()
    coordinator.run()
    # What a run killed while appending message m-1 leaves: a queue file marked `sending`, the
    # start of its line without a newline, nothing in the ledger; and a torn run record.
    message = Message("m-1", "sink", "crash: 1 new", "• flow finding 999999", False, "x", ["x"])
    enqueue(str(state), message)
    deliveries = state / "deliveries.jsonl"
    queued = state / "outbox" / file_name("m-1")
    entry = json.loads(queued.read_text())
    entry["sending"] = {"at": iso(utc_now()), "offset": deliveries.stat().st_size}
    queued.write_text(json.dumps(entry))
    with deliveries.open("ab") as stream:
        stream.write(b'{"id": "m-1", "channel": "sink", "title": "crash: 1 ne')
    with (state / "runs.jsonl").open("ab") as stream:
        stream.write(b'{"job":"coordinator","kind":"coordi')

    coordinator.run()
    lines = deliveries.read_bytes().splitlines()
    assert lines[-2] == b'{"id": "m-1", "channel": "sink", "title": "crash: 1 ne'
    assert json.loads(lines[-1])["id"] == "m-1"  # sent again, whole, on its own line
    seen, torn = delivered_ids(state)
    assert seen == Counter({"000000": 1, "999999": 1}) and torn == 1
    assert "m-1" in DeliveryLedger.load(str(state)) and not queued.exists()
    records = list(runs(str(state)))
    assert [record["kind"] for record in records] == ["coordinator", "coordinator"]
    assert (state / "runs.jsonl").read_bytes().splitlines()[
        1
    ] == b'{"job":"coordinator","kind":"coordi'


def poisoned_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict, datetime]:
    """(state, spec, now) after a finding that stops the rules (a bug stands in) has been
    claimed and stopped the coordinator MAX_CLAIM_ATTEMPTS times: the next run quarantines it."""
    from runner import coordinator as module
    from runner.intake import MAX_CLAIM_ATTEMPTS
    from tests.coordinator_support import bruba_spec, drop

    state = tmp_path / "state"
    spec = bruba_spec(state)
    apply_rules = module._apply_rules

    def buggy(spec, claimed, *args, **kwargs):
        if any(item.finding.get("poison") for item in claimed):
            raise RuntimeError("a bug in the rules")
        return apply_rules(spec, claimed, *args, **kwargs)

    monkeypatch.setattr(module, "_apply_rules", buggy)
    now = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)
    drop(state, {"source": "reminder-check", "timestamp": "2026-02-02T14:00:00Z", "poison": 1})
    for _ in range(MAX_CLAIM_ATTEMPTS):  # the run that claims it, then the reruns
        with pytest.raises(RuntimeError):
            module.run(spec, now)
    return state, spec, now


def test_a_claim_that_keeps_stopping_the_coordinator_is_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finding the rules cannot survive (here a bug stands in: any exception, or a SIGKILL
    from running out of memory, counts alike) must not block every later finding forever."""
    from runner import coordinator as module
    from runner.intake import ATTEMPTS
    from tests.coordinator_support import delivered, drop

    state, spec, now = poisoned_claim(tmp_path, monkeypatch)
    stuck = [p.name for p in (state / "processing").iterdir()]
    assert len(stuck) == 1 and stuck[0].startswith("claim-")
    assert json.loads((state / "state" / ATTEMPTS).read_text())["attempts"] == {stuck[0]: 2}

    drop(state, {"source": "vigil", "timestamp": "2026-02-02T14:00:00Z", "message": "later"})
    counts = module.run(spec, now)
    assert counts["messages"] == 1
    body = delivered(state)[-1]["body"]
    assert f"quarantined {stuck[0]}: it stopped the coordinator 3 times in a row" in body
    assert "later" in body  # the inbox is served again, in the same run
    assert list((state / "processing").iterdir()) == []
    kept = state / "rejected" / stuck[0]
    assert len(list(kept.iterdir())) == 1  # the poison finding, kept for inspection
    assert (state / "rejected" / f"{stuck[0]}.reason").read_text() == (
        f"stopped the coordinator 3 times in a row; its 1 file(s) are kept in "
        f"rejected/{stuck[0]}/ and were not delivered\n"
    )
    assert json.loads((state / "state" / ATTEMPTS).read_text()) == {"version": 1, "attempts": {}}


class Killed(BaseException):
    """Stands in for a SIGKILL: nothing after it runs, no `except Exception` catches it."""


def test_a_kill_while_quarantining_a_claim_still_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quarantine alert is in the inbox before the claim moves: a run killed just after
    the move still says so, in the next run."""
    from runner import coordinator as module
    from runner import intake
    from tests.coordinator_support import delivered

    state, spec, now = poisoned_claim(tmp_path, monkeypatch)
    [stuck] = [p.name for p in (state / "processing").iterdir()]

    def killed_after_the_move(_directory: str) -> None:
        raise Killed

    with monkeypatch.context() as kill:
        kill.setattr(intake, "fsync_dir", killed_after_the_move)
        with pytest.raises(Killed):
            module.run(spec, now)
    assert (state / "rejected" / stuck).is_dir()  # moved, and killed before anything else
    module.run(spec, now)
    said = [m for m in delivered(state) if f"quarantined {stuck}: it stopped" in m["body"]]
    assert len(said) == 1
    assert (state / "rejected" / stuck).is_dir()
    assert not list((state / "processing").iterdir())


def test_storage_errors_are_no_strike_against_a_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner import coordinator as module
    from runner.intake import ATTEMPTS, MAX_CLAIM_ATTEMPTS
    from tests.coordinator_support import bruba_spec, delivered, drop

    state = tmp_path / "state"
    spec = bruba_spec(state)
    apply_rules = module._apply_rules
    full = {"disk": True}

    def no_space(spec, claimed, *args, **kwargs):
        if full["disk"]:
            raise OSError(28, "No space left on device", str(state))
        return apply_rules(spec, claimed, *args, **kwargs)

    monkeypatch.setattr(module, "_apply_rules", no_space)
    now = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)
    drop(state, {"source": "vigil", "timestamp": "2026-02-02T14:00:00Z", "message": "kept"})
    for _ in range(MAX_CLAIM_ATTEMPTS + 2):
        with pytest.raises(OSError):
            module.run(spec, now)
    full["disk"] = False
    module.run(spec, now)
    assert "kept" in delivered(state)[-1]["body"]
    assert not (state / "rejected").exists()
    assert json.loads((state / "state" / ATTEMPTS).read_text())["attempts"] == {}

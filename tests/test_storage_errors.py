"""A full disk, a read-only state directory and permission errors, on real file systems.

Each test mounts a small tmpfs in a private mount namespace (tests/private_fs.py), runs the
job runner, the coordinator or `vigil compile`/`apply` against it as real processes, fills it
to the last page (or remounts it read-only, or takes it away from the user), and checks what a
user must be able to rely on: a non-zero exit with one clear line naming the path and the
reason, no traceback, nothing half-written (no temp files, every JSON file and JSONL line
whole, old files as they were), and once the space is back, a rerun that loses nothing.

The last test runs the coordinator under a real systemd user manager with a read-only state
directory: its path unit must not spin (hundreds of starts a second until systemd's trigger
limit stops it for good), and the finding must go out as soon as the directory is writable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.delivery.message import Message
from runner.delivery.outbox import enqueue
from runner.exitcodes import OK, STORAGE
from tests.conftest import ROOT, require_systemd_analyze
from tests.private_fs import PrivateMounts, assert_whole, files_below, private_mounts
from tests.runner_support import (
    API_KEY,
    FakeMessagesAPI,
    fake_api,
    llm_spec,
    real_spec,
    runner_env,
    shell_spec,
)

__all__ = ["fake_api"]  # fixture

MARKER = "finding-7c1e5a"
NO_SPACE = "No space left on device"
READ_ONLY = "Read-only file system"
DENIED = "Permission denied"


@pytest.fixture
def mounts() -> Iterator[PrivateMounts]:
    with private_mounts() as found:
        yield found


@dataclass
class Setup:
    """A state directory on a tmpfs, with a job spec and a coordinator spec for it."""

    fs: PrivateMounts
    disk: Path  # the tmpfs (namespace path)
    state: Path
    deliveries: Path
    job: Path  # spec files, on the host side of the base directory (always readable)
    coordinator: Path

    @property
    def seen(self) -> Path:
        """The state directory as this process reaches it."""
        return self.fs.view(self.state)

    def run_job(self, **kwargs: Any) -> Any:
        return self.fs.runner("job", self.job, **kwargs)

    def run_coordinator(self, **kwargs: Any) -> Any:
        return self.fs.runner("coordinator", self.coordinator, **kwargs)

    def delivered(self) -> list[dict[str, Any]]:
        path = self.fs.view(self.deliveries)
        return (
            [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
        )

    def waiting(self) -> list[dict[str, Any]]:
        """Findings in the inbox or in a claim of processing/, wherever a run left them."""
        paths = [*(self.seen / "inbox").rglob("*"), *(self.seen / "processing").rglob("*")]
        return [json.loads(path.read_bytes()) for path in sorted(paths) if path.is_file()]

    def drop(self, message: str) -> None:
        """A finding renamed into the inbox, as writers must."""
        inbox = self.seen / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        finding = {"source": "disk-check", "timestamp": "2026-02-02T09:00:00Z", "message": message}
        name = f"disk-check-{os.urandom(4).hex()}.json"
        (self.seen / f".{name}").write_text(json.dumps(finding))
        os.rename(self.seen / f".{name}", inbox / name)


def setup(fs: PrivateMounts, *, size: str = "512k", deliveries: Path | None = None) -> Setup:
    disk = fs.tmpfs("disk", size)
    state = disk / "state"
    deliveries = deliveries or disk / "deliveries.jsonl"
    specs = fs.base / "specs"
    specs.mkdir(mode=0o755, exist_ok=True)
    payload = json.dumps({"source": "disk-check", "message": f"{MARKER} {{n}}", "pad": "x" * 3000})
    # Each run reports a numbered finding of about 3 KB: a full tmpfs has no page left for it.
    command = (
        f"n=$(( $(cat {fs.base}/count 2>/dev/null || echo 0) + 1 )); echo $n > {fs.base}/count; "
    )
    command += "echo '" + payload.replace("{n}", "'$n'") + "'"
    job = shell_spec(fs.base, command, state_dir=str(state))
    (fs.base / "count").write_text("0")
    (fs.base / "count").chmod(0o666)  # `nobody` runs the job too
    (specs / "job.json").write_text(json.dumps(job))
    coordinator = real_spec("bruba/specs/coordinator.json")
    coordinator["state_dir"] = str(state)
    coordinator["channels"]["signal"].update(file=str(deliveries), apprise_secret=None)
    (specs / "coordinator.json").write_text(json.dumps(coordinator))
    for path in specs.iterdir():
        path.chmod(0o644)
    return Setup(fs, disk, state, deliveries, specs / "job.json", specs / "coordinator.json")


def one_line_error(stderr: str, *needles: str) -> str:
    """The single stderr line holding every needle; never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, f"one line with {needles} expected in:\n{stderr}"
    return lines[0]


def delivered_lines(s: Setup) -> list[str]:
    return sorted(line for m in s.delivered() for line in m["body"].splitlines())


def runs(s: Setup) -> list[dict[str, Any]]:
    path = s.seen / "runs.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def pad_runs_to_page_end(s: Setup, room: int) -> None:
    """runs.jsonl ends `room` bytes before a page boundary: the next record straddles it, and
    a full disk lets only the first `room` bytes of it through (a short write)."""
    path = s.seen / "runs.jsonl"
    size = path.stat().st_size if path.exists() else 0
    filler = {"job": "padding", "kind": "note", "notes": ""}
    base = len(json.dumps(filler, separators=(",", ":"))) + 1
    want = (-(size + room)) % 4096
    while want < base:
        want += 4096
    filler["notes"] = "p" * (want - base)
    with open(path, "ab") as handle:
        handle.write(json.dumps(filler, separators=(",", ":")).encode() + b"\n")
    assert (path.stat().st_size + room) % 4096 == 0


# --- (a) the job runner -----------------------------------------------------------------------


@pytest.mark.parametrize("record", ["fits", "torn"])
def test_a_job_on_a_full_disk_fails_with_storage_and_keeps_its_finding(
    mounts: PrivateMounts, record: str
) -> None:
    s = setup(mounts)
    first = s.run_job()
    assert first.returncode == OK, first.stderr
    # The record of the next run: fits in the last page of runs.jsonl, or is cut short there.
    if record == "torn":
        pad_runs_to_page_end(s, room=100)
    before = files_below(s.seen)
    mounts.fill(s.disk)

    failed = s.run_job()
    assert failed.returncode == STORAGE == 8
    line = one_line_error(failed.stderr, "storage:", NO_SPACE)
    assert line.startswith("vigil: reminder-check: storage: state directory: ")
    assert f"{NO_SPACE}: {s.state}/inbox/disk-check-" in line
    # The finding is not lost without a trace: the journal has it, whole.
    kept = one_line_error(failed.stderr, "unwritten finding:")
    assert json.loads(kept.split("unwritten finding: ", 1)[1])["message"] == f"{MARKER} 2"

    after = assert_whole(s.seen)
    assert [f["message"] for f in s.waiting()] == [f"{MARKER} 1"]
    recorded = runs(s)
    if record == "fits":
        assert (recorded[-1]["result"], recorded[-1]["exit_status"]) == ("storage", 8)
        assert f"{NO_SPACE}: {s.state}/inbox/" in recorded[-1]["reason"]
    else:
        # The short write was cut back off: runs.jsonl is byte for byte what it was.
        assert after["runs.jsonl"] == before["runs.jsonl"]
        one_line_error(
            failed.stderr, "could not record the run", f"{NO_SPACE}: {s.state}/runs.jsonl"
        )

    mounts.free(s.disk)
    again = s.run_job()
    assert again.returncode == OK, again.stderr
    assert [f["message"] for f in s.waiting()] == [f"{MARKER} 1", f"{MARKER} 3"]
    assert runs(s)[-1]["result"] == "ok"
    assert_whole(s.seen)


def test_an_llm_job_on_a_full_disk_does_not_pay_for_an_answer_it_cannot_store(
    mounts: PrivateMounts, fake_api: FakeMessagesAPI
) -> None:
    s = setup(mounts)
    spec = llm_spec(mounts.base, fake_api, "echo 'two reminders overdue'")
    spec["state_dir"] = str(s.state)
    s.job.write_text(json.dumps(spec))
    credentials = mounts.base / "credentials"
    credentials.mkdir(mode=0o755)
    (credentials / "anthropic").write_text(API_KEY)
    (credentials / "anthropic").chmod(0o644)
    assert s.run_job(CREDENTIALS_DIRECTORY=str(credentials)).returncode == OK  # creates the dirs
    mounts.fill(s.disk)

    failed = s.run_job(CREDENTIALS_DIRECTORY=str(credentials))
    assert failed.returncode == STORAGE
    line = one_line_error(failed.stderr, "model not called", NO_SPACE)
    assert f"{s.state}/inbox" in line
    assert fake_api.calls == 1  # only the first run's
    assert runs(s)[-1]["tokens_in"] == 0

    mounts.free(s.disk)
    assert s.run_job(CREDENTIALS_DIRECTORY=str(credentials)).returncode == OK
    assert fake_api.calls == 2
    assert len(s.waiting()) == 2


def test_the_failure_handler_on_a_full_disk_keeps_its_alert_in_the_journal(
    mounts: PrivateMounts,
) -> None:
    s = setup(mounts)
    assert s.run_job().returncode == OK  # lays out the state directory
    spec = real_spec("bruba/specs/failure.json")
    spec.update(state_dir=str(s.state), journal_lines=0)
    path = mounts.base / "specs" / "failure.json"
    path.write_text(json.dumps(spec))
    path.chmod(0o644)
    mounts.fill(s.disk)
    env = {"MONITOR_UNIT": "bruba-reminder-check.service", "MONITOR_SERVICE_RESULT": "exit-code"}
    handled = mounts.runner("failure", path, "bruba-reminder-check.service", **env)
    assert handled.returncode == STORAGE
    line = one_line_error(handled.stderr, "cannot write the alert to the inbox", NO_SPACE)
    assert f"{NO_SPACE}: {s.state}/inbox/vigil-" in line
    alert = one_line_error(handled.stderr, "vigil: alert: ")
    assert json.loads(alert.split("vigil: alert: ", 1)[1])["unit"] == "bruba-reminder-check.service"
    assert_whole(s.seen)


# --- (b) the coordinator ----------------------------------------------------------------------


def test_the_coordinator_on_a_full_disk_fails_cleanly_and_delivers_once_space_returns(
    mounts: PrivateMounts,
) -> None:
    s = setup(mounts)
    s.drop("first")
    assert s.run_coordinator().returncode == OK
    assert [m["body"] for m in s.delivered()] == ["• first [r1]"]
    s.drop("second")
    mounts.fill(s.disk)

    failed = s.run_coordinator()
    assert failed.returncode == STORAGE
    line = one_line_error(failed.stderr, "vigil: coordinator: storage:", NO_SPACE)
    assert f"{NO_SPACE}: {s.state}/" in line and "nothing is lost" in line
    assert_whole(s.seen)
    assert [f["message"] for f in s.waiting()] == ["second"]  # claimed, kept for the rerun
    assert [m["body"] for m in s.delivered()] == ["• first [r1]"]

    recorded = runs(s)[-1]  # runs.jsonl still had room in its last page
    assert (recorded["kind"], recorded["result"], recorded["exit_status"]) == (
        "coordinator",
        "storage",
        8,
    )
    # A heartbeat while still full: the same clean failure, nothing changes.
    assert s.run_coordinator().returncode == STORAGE
    mounts.free(s.disk)
    again = s.run_coordinator()
    assert again.returncode == OK, again.stderr
    assert [m["body"] for m in s.delivered()] == ["• first [r1]", "• second [r2]"]
    assert s.waiting() == []
    assert_whole(s.seen)
    assert [r["result"] for r in runs(s) if r["kind"] == "coordinator"][-1] == "ok"


def test_a_queued_message_waits_in_the_outbox_while_the_disk_is_full(mounts: PrivateMounts) -> None:
    s = setup(mounts)
    assert s.run_coordinator().returncode == OK  # lays out the state directory
    created = datetime.now(UTC).isoformat(timespec="seconds")
    queued = Message("m-queued", "signal", "Bruba: 1 new", "• queued", False, created, ["x"])
    enqueue(s.seen, queued)
    entry = s.seen / "outbox" / "m-queued.json"
    before = entry.read_bytes()
    mounts.fill(s.disk)

    failed = s.run_coordinator()
    assert failed.returncode == STORAGE
    one_line_error(failed.stderr, "vigil: coordinator: storage:", NO_SPACE)
    assert entry.read_bytes() == before  # not even an attempt counted against it
    assert s.delivered() == []
    assert_whole(s.seen)

    mounts.free(s.disk)
    assert s.run_coordinator().returncode == OK
    assert [m["id"] for m in s.delivered()] == ["m-queued"]
    assert not entry.exists()


def test_a_file_channel_on_a_full_disk_is_retried_and_never_left_with_a_torn_line(
    mounts: PrivateMounts,
) -> None:
    # The channel's file on a disk of its own: the state directory keeps room for bookkeeping.
    other = mounts.tmpfs("channel", "64k")
    s = setup(mounts, deliveries=other / "deliveries.jsonl")
    seen = mounts.view(s.deliveries)
    # An earlier line ends 100 bytes before a page boundary: the message's line straddles it.
    earlier = {"id": "earlier", "body": ""}
    earlier["body"] = "e" * (4096 - 100 - len(json.dumps(earlier)) - 1)
    seen.write_text(json.dumps(earlier) + "\n")
    s.drop("through a full disk")
    mounts.fill(other)

    first = s.run_coordinator()
    assert first.returncode == OK, first.stderr  # a channel that fails is retried, not a crash
    assert f"cannot append to {s.deliveries}: {NO_SPACE}" in first.stderr
    assert seen.read_text() == json.dumps(earlier) + "\n"  # the short write was cut back off
    [entry] = (s.seen / "outbox").glob("*.json")
    queued = json.loads(entry.read_bytes())
    assert queued["attempts"] == 1 and NO_SPACE in queued["last_error"]

    mounts.free(other)
    later = datetime.now(UTC) + timedelta(hours=1)
    again = s.run_coordinator(VIGIL_NOW=later.isoformat())
    assert again.returncode == OK, again.stderr
    earlier_line, message = s.delivered()
    assert (earlier_line["id"], message["body"]) == ("earlier", "• through a full disk [r1]")
    assert_whole(mounts.view(other))
    assert_whole(s.seen)


# --- (c) a read-only state directory ----------------------------------------------------------


def test_a_read_only_state_directory_fails_jobs_and_coordinator_until_it_is_writable(
    mounts: PrivateMounts,
) -> None:
    s = setup(mounts)
    assert s.run_job().returncode == OK  # finding 1 in the inbox
    before = files_below(s.seen)
    mounts.remount(s.disk, read_only=True)

    job = s.run_job()
    assert job.returncode == STORAGE
    line = one_line_error(job.stderr, "storage:", READ_ONLY)
    assert line == (
        f"vigil: reminder-check: storage: state directory: {READ_ONLY}: {s.state}; "
        "the command was not run"
    )
    one_line_error(job.stderr, "could not record the run", f"{READ_ONLY}: {s.state}/runs.jsonl")

    # Not under systemd: the coordinator fails at once (no retries), the inbox as it was.
    began = time.monotonic()
    coordinator = s.run_coordinator()
    assert coordinator.returncode == STORAGE
    assert time.monotonic() - began < 10
    line = one_line_error(coordinator.stderr, "vigil: coordinator: storage:", READ_ONLY)
    assert f"{READ_ONLY}: {s.state}/" in line
    assert files_below(s.seen) == before

    mounts.remount(s.disk, read_only=False)
    assert s.run_job().returncode == OK
    assert s.run_coordinator().returncode == OK
    # The finding written before the directory turned read-only, and the next run's.
    assert delivered_lines(s) == [f"• {MARKER} 1 [r1]", f"• {MARKER} 2 [r2]"]
    assert s.waiting() == []
    assert_whole(s.seen)


def test_under_systemd_the_coordinator_carries_on_once_the_inbox_can_be_emptied(
    mounts: PrivateMounts,
) -> None:
    s = setup(mounts)
    assert s.run_coordinator().returncode == OK  # lays out the state directory
    s.drop("after the remount")
    mounts.remount(s.disk, read_only=True)
    # As systemd starts it (INVOCATION_ID set): it keeps trying instead of failing at once.
    env = runner_env(INVOCATION_ID="0" * 32, VIGIL_STORAGE_RETRY="60")
    command = [*mounts.prefix(), sys.executable, "-m", "runner", "coordinator", s.coordinator]
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as run:
        time.sleep(2)
        assert run.poll() is None, "the coordinator gave up instead of retrying"
        mounts.remount(s.disk, read_only=False)
        _, stderr = run.communicate(timeout=30)
    assert run.returncode == OK, stderr
    assert "the inbox cannot be emptied: trying again every 5s for 60s" in stderr
    assert "the state directory takes writes again" in stderr
    assert delivered_lines(s) == ["• after the remount [r1]"]


# --- (d) a state directory the user may not write ---------------------------------------------


def test_a_state_directory_of_another_user_fails_cleanly_until_it_is_given_back(
    mounts: PrivateMounts,
) -> None:
    s = setup(mounts)
    assert s.run_job().returncode == OK  # as root: the state directory belongs to root
    s.drop("waiting for nobody")
    before = files_below(s.seen)

    job = s.run_job(nobody=True)
    assert job.returncode == STORAGE, job.stderr
    line = one_line_error(job.stderr, "storage:", DENIED)
    assert f"{DENIED}: {s.state}; the command was not run" in line
    coordinator = s.run_coordinator(nobody=True)
    assert coordinator.returncode == STORAGE, coordinator.stderr
    line = one_line_error(coordinator.stderr, "vigil: coordinator: storage:", DENIED)
    assert f"{DENIED}: {s.state}/" in line
    assert files_below(s.seen) == before

    mounts.must("chown", "-R", "nobody:nogroup", s.state, s.disk)
    assert s.run_job(nobody=True).returncode == OK
    delivered = s.run_coordinator(nobody=True)
    assert delivered.returncode == OK, delivered.stderr
    # Codes go in the order of the inbox's names: the job's two (time-ordered) in order, the
    # dropped one's (random) anywhere among them.
    assert delivered_lines(s) in (
        [f"• {MARKER} 1 [r{one}]", f"• {MARKER} 2 [r{two}]", f"• waiting for nobody [r{drop}]"]
        for one, two, drop in ((1, 2, 3), (1, 3, 2), (2, 3, 1))
    )
    assert s.waiting() == []


# --- (e) vigil compile and apply --------------------------------------------------------------


MINIMAL = ROOT / "examples" / "minimal.yaml"


def two_versions(tmp_path: Path) -> tuple[Path, str, str]:
    config = tmp_path / "demo.yaml"
    v1 = MINIMAL.read_text()
    v2 = v1.replace('"*/15 * * * *"', '"*/20 * * * *"')
    assert v1 != v2
    return config, v1, v2


def test_compile_into_a_full_disk_changes_nothing_and_says_where(
    mounts: PrivateMounts, tmp_path: Path
) -> None:
    require_systemd_analyze()
    config, v1, v2 = two_versions(tmp_path)
    disk = mounts.tmpfs("disk", "512k")
    out = disk / "out"
    config.write_text(v1)
    assert mounts.vigil("compile", config, "--out", out).returncode == 0
    before = files_below(mounts.view(out))
    config.write_text(v2)
    mounts.fill(disk)

    failed = mounts.vigil("compile", config, "--out", out)
    assert failed.returncode == 1
    line = one_line_error(failed.stderr, NO_SPACE)
    assert line.startswith(f"{NO_SPACE}: {out}/")
    assert assert_whole(mounts.view(out)) == before  # every file the old one, none added

    mounts.free(disk)
    assert mounts.vigil("compile", config, "--out", out).returncode == 0
    fresh = tmp_path / "fresh"
    assert mounts.vigil("compile", config, "--out", fresh).returncode == 0
    assert files_below(mounts.view(out)) == files_below(fresh)


@pytest.mark.parametrize("full", ["everything", "unit directory"])
def test_apply_into_a_full_disk_keeps_the_previous_generation(
    mounts: PrivateMounts, tmp_path: Path, full: str
) -> None:
    require_systemd_analyze()
    config, v1, v2 = two_versions(tmp_path)
    disk = mounts.tmpfs("root", "1m")
    root = disk
    units = root / ".config/systemd/user"
    if full == "unit directory":
        # The generation has room, the unit files do not: the switch itself fails.
        units = mounts.tmpfs("root/.config/systemd/user", "64k")
    data = root / ".local/share/vigil/demo"
    config.write_text(v1)
    assert mounts.vigil("apply", config, "--root", root, "--yes").returncode == 0
    seen_units, seen_data = mounts.view(units), mounts.view(data)
    units_before = files_below(seen_units)
    assert os.readlink(seen_data / "current") == "generations/1"
    config.write_text(v2)
    mounts.fill(units if full == "unit directory" else disk)

    failed = mounts.vigil("apply", config, "--root", root, "--yes")
    assert failed.returncode == 1
    step = "writing unit files" if full == "unit directory" else "storing the new generation"
    line = one_line_error(failed.stderr, f"apply failed at {step}: {NO_SPACE}: ")
    assert f"{root}/" in line
    assert (
        "generation 1 is active again"
        if full == "unit directory"
        else "generation 1 is still active"
    ) in failed.stderr
    assert sorted(p.name for p in (seen_data / "generations").iterdir()) == ["1"]
    assert os.readlink(seen_data / "current") == "generations/1"
    assert assert_whole(seen_units) == units_before
    assert_whole(seen_data)

    mounts.free(units if full == "unit directory" else disk)
    applied = mounts.vigil("apply", config, "--root", root, "--yes")
    assert applied.returncode == 0, applied.stderr
    assert os.readlink(seen_data / "current") == "generations/2"
    assert files_below(seen_units) != units_before


# --- (c) under systemd: no crash loop of the path unit ----------------------------------------


ROFS = """\
name: rofs
state_dir: {state}
jobs:
  idle:
    schedule: "0 0 1 1 *"
    run: "true"
channels:
  sink: {{file: {deliveries}}}
coordinator:
  deliver_to: [sink]
"""


@pytest.mark.systemd
def test_a_read_only_state_directory_does_not_make_the_path_unit_spin(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    manager = vigil_manager
    state, deliveries = tmp_path / "state", tmp_path / "deliveries.jsonl"
    # The state directory is a tmpfs of the manager's namespace: a remount changes it for the
    # services' own namespaces too, as a file system turning read-only does.
    state.mkdir()
    manager.in_namespace("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", state)
    seen = Path(f"/proc/{manager.pids['journald']}/root") / state.relative_to("/")
    service, path_unit = "rofs-coordinator.service", "rofs-coordinator.path"
    # Each start retries for 2 s instead of a minute: the test sees several starts quickly.
    manager.systemctl("set-environment", "VIGIL_STORAGE_RETRY=2")
    try:
        config = tmp_path / "rofs.yaml"
        config.write_text(ROFS.format(state=state, deliveries=deliveries))
        applied = vigil("apply", config, "--yes")
        assert applied.exit_code == 0, applied.stderr
        manager.systemctl("stop", path_unit)
        finding = {"source": "late", "timestamp": "2026-02-02T09:00:00Z", "message": "late"}
        (seen / ".late.json").write_text(json.dumps(finding))
        os.rename(seen / ".late.json", seen / "inbox" / "late.json")
        manager.in_namespace("mount", "-o", "remount,ro", state)
        manager.systemctl("start", path_unit)  # the inbox is not empty: it starts the service

        manager.wait_for_journal(service, "the inbox cannot be emptied", timeout=15)
        time.sleep(5)
        # Without the retries: ~200 failed starts in two seconds, then trigger-limit-hit and a
        # path unit that never starts the coordinator again.
        shown = manager.show(path_unit, "ActiveState", "Result")
        assert (shown["ActiveState"], shown["Result"]) == ("active", "success")
        journal = manager.journal(service)
        assert 1 <= journal.count(f"Starting {service}") <= 4, journal
        assert f"Read-only file system: {state}/" in journal
        assert "vigil: coordinator: storage: Read-only file system" in journal
        assert "Traceback" not in journal
        assert not deliveries.exists()

        manager.in_namespace("mount", "-o", "remount,rw", state)

        def settled() -> bool:
            return deliveries.exists() and not any(seen.glob("inbox/*"))

        manager.wait_for(settled, timeout=20, what="the delivery once writable")
        manager.systemctl("stop", service)  # the run that delivered lingers for the next
        assert manager.show(service, "Result")["Result"] == "success"
        assert manager.show(path_unit, "ActiveState")["ActiveState"] == "active"
        lines = [
            line
            for m in map(json.loads, deliveries.read_text().splitlines())
            for line in m["body"].splitlines()
        ]
        late = [line for line in lines if line.startswith("• late [")]
        assert late in (["• late [r1]"], ["• late [r2]"]), lines
        # A failure handler that ran once the directory was writable again alerts, at most
        # once (the failing coordinator's alerts are rate-limited); the others could not write.
        alerts = [line for line in lines if line not in late]
        assert len(alerts) <= 1, lines
        # Which of the two is taken first is not set: between them they have r1 and r2.
        assert sorted(line[-4:] for line in lines) == ["[r1]", "[r2]"][: len(lines)], lines
        assert all(line.startswith("• rofs-coordinator failed (") for line in alerts), alerts
    finally:
        manager.systemctl("unset-environment", "VIGIL_STORAGE_RETRY")
        manager.clean()  # units stopped before their state directory goes
        manager.in_namespace("umount", state, check=False)

"""Inbox entries beyond hostile files: directories the coordinator (as `nobody`, for whom
permissions hold) cannot simply move, a writer's temp file still being written, the size limit
to the byte, and the claim directory's mode. Real files, the real coordinator and intake."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.intake import STALE_TEMP_SECONDS, claim
from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

GOOD = {"source": "probe", "timestamp": "2026-02-02T09:00:00Z", "message": "a good finding"}
NOW_ENV = {"VIGIL_NOW": "2026-02-02T14:00:00Z"}


def bodies(state: Path) -> list[str]:
    return [line for message in delivered(state) for line in message["body"].splitlines()]


def as_nobody(fs, state: Path):  # type: ignore[no-untyped-def]
    spec = fs.base / "coordinator.json"
    spec.write_text(json.dumps(bruba_spec(state)))
    spec.chmod(0o644)
    return fs.runner("coordinator", spec, nobody=True, **NOW_ENV)


def test_a_read_only_directory_goes_to_rejected_and_findings_after_it_flow() -> None:
    from tests.private_fs import private_mounts

    with private_mounts() as fs:
        state = fs.base / "state"
        (state / "inbox" / "a-dir" / "inner").mkdir(parents=True)
        drop(state, GOOD, "zz-after.json")
        fs.must("chown", "-R", "nobody:nogroup", state)
        for path in (state / "inbox" / "a-dir" / "inner", state / "inbox" / "a-dir"):
            path.chmod(0o555)
        result = as_nobody(fs, state)
        assert result.returncode == 0, result.stderr
        assert "• a good finding [r2]" in bodies(state)  # r1 is the directory's rejection
        [alert] = [line for line in bodies(state) if "a-dir" in line]
        assert "rejected inbox file a-dir: it is a directory" in alert
        assert (state / "rejected" / "a-dir" / "inner").is_dir()
        assert os.listdir(state / "inbox") == []


def test_a_directory_that_cannot_be_moved_is_ignored_with_one_alert() -> None:
    from tests.private_fs import private_mounts

    with private_mounts() as fs:
        state = fs.base / "state"
        (state / "inbox").mkdir(parents=True)
        drop(state, GOOD)
        fs.must("chown", "-R", "nobody:nogroup", state)
        (state / "inbox" / "roots-dir").mkdir(mode=0o755)  # nobody can neither write nor chmod it
        first = as_nobody(fs, state)
        assert first.returncode == 0, first.stderr
        [hidden] = os.listdir(state / "inbox")
        assert hidden.startswith(".unmovable-") and hidden.endswith("-roots-dir")
        drop(state, {**GOOD, "message": "a later finding"})
        fs.must("chown", "nobody:nogroup", *(state / "inbox").glob("probe-*"))
        second = as_nobody(fs, state)
        assert second.returncode == 0, second.stderr
        lines = bodies(state)
        assert [line for line in lines if "finding" in line] == [
            "• a good finding [r2]",
            "• a later finding [r3]",
        ]
        [alert] = [line for line in lines if "roots-dir" in line]
        assert "cannot be moved out of the inbox (Permission denied)" in alert
        assert os.listdir(state / "inbox") == [hidden]  # only the ignored dot-name is left


# -- intake details a mutant could change unnoticed ----------------------------------------------


def test_a_writers_fresh_temp_file_is_left_alone_and_a_stale_one_rejected(tmp_path: Path) -> None:
    state = tmp_path / "state"
    inbox = state / "inbox"
    inbox.mkdir(parents=True)
    fresh, stale = inbox / ".writing.tmp", inbox / ".abandoned.tmp"
    fresh.write_text('{"source": "probe", "timest')  # half-written
    stale.write_text('{"source": "probe"')
    old = time.time() - STALE_TEMP_SECONDS - 5
    os.utime(stale, (old, old))
    young = time.time() - STALE_TEMP_SECONDS + 20
    os.utime(fresh, (young, young))
    drop(state, GOOD)
    heartbeat(bruba_spec(state), datetime.now(UTC))
    assert os.listdir(inbox) == [".writing.tmp"]
    assert fresh.read_text() == '{"source": "probe", "timest'
    rejected = sorted(os.listdir(state / "rejected"))
    assert rejected == [".abandoned.tmp", ".abandoned.tmp.reason"]
    assert not [line for line in bodies(state) if ".writing" in line]


def padded(size: int) -> bytes:
    data = json.dumps({**GOOD, "pad": ""}).encode()
    return json.dumps({**GOOD, "pad": "x" * (size - len(data))}).encode()


@pytest.mark.parametrize(("extra", "accepted"), [(0, True), (1, False)])
def test_the_size_limit_holds_to_the_byte(tmp_path: Path, extra: int, accepted: bool) -> None:
    limit = 4096
    state = tmp_path / "state"
    (state / "inbox").mkdir(parents=True)
    data = padded(limit + extra)
    assert len(data) == limit + extra
    (state / "inbox" / "f.json").write_bytes(data)
    intake = claim(str(state), limit)
    assert (len(intake.findings), len(intake.rejected)) == ((1, 0) if accepted else (0, 1))
    if not accepted:
        assert intake.rejected[0].reason == f"is {limit + 1} bytes, more than the limit of {limit}"


def test_the_claim_directory_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    drop(state, GOOD)
    previous = os.umask(0)  # a lax umask must not widen it
    try:
        intake = claim(str(state), 1 << 20)
    finally:
        os.umask(previous)
    assert intake.claim is not None
    mode = (state / "processing" / intake.claim).stat().st_mode & 0o7777
    assert oct(mode) == oct(0o700)


def test_what_a_claim_takes_and_where_its_rejects_go_when_names_collide(tmp_path: Path) -> None:
    """A file an older version left loose in processing/ with an inbox file's name, and a
    rejected file whose name rejected/ already holds: both keep their content under a
    suffixed name. An entry already set aside in place is never claimed again; a finding
    without a timestamp says so."""
    from runner.intake import UNMOVABLE_PREFIX, done

    state = tmp_path / "state"
    drop(state, GOOD, "same.json")
    (state / "processing").mkdir()
    (state / "processing" / "same.json").write_text(json.dumps({**GOOD, "message": "loose"}))
    hidden = state / "inbox" / f"{UNMOVABLE_PREFIX}abc123-theirs"
    hidden.mkdir()
    drop(state, {"source": "probe", "message": "no time"}, "bad.json")
    drop(state, {"timestamp": "2026-02-02T09:00:00Z", "message": "from nowhere"}, "anon.json")
    first = claim(str(state), 1 << 20)
    assert sorted(f.finding["message"] for f in first.findings) == ["a good finding", "loose"]
    assert [(r.name, r.reason) for r in first.rejected] == [
        ("anon.json", "is not a finding: has no `source`"),
        ("bad.json", "is not a finding: has no `timestamp`"),
    ]
    assert os.listdir(state / "inbox") == [hidden.name]
    done(str(state), first)
    drop(state, {"source": "probe", "message": "no time again"}, "bad.json")
    done(str(state), claim(str(state), 1 << 20))
    rejected = state / "rejected"
    files = sorted(n for n in os.listdir(rejected) if n.startswith("bad") and "reason" not in n)
    assert files[0] == "bad.json" and len(files) == 2
    assert {json.loads((rejected / name).read_text())["message"] for name in files} == {
        "no time",
        "no time again",
    }
    assert all(
        (rejected / f"{name}.reason").read_text() == "is not a finding: has no `timestamp`\n"
        for name in files
    )


def test_run_counts_of_claims_left_behind_are_kept_until_each_is_finished(tmp_path: Path) -> None:
    """Each claim's count survives another claim being finished; a count whose claim is gone
    (finished by an older version) is dropped."""
    from runner.intake import ATTEMPTS, attempt, forget, left_behind

    state = tmp_path / "state"
    forget(str(state), "claim-never-taken-up")  # nothing counted: nothing written
    assert not (state / "state" / ATTEMPTS).exists()
    names = []
    for n in range(3):
        drop(state, GOOD)
        names.append(claim(str(state), 1 << 20, now=datetime(2027, 1, 1, n, tzinfo=UTC)).claim)
    assert left_behind(str(state)) == names
    for name in (*names, names[0]):
        attempt(str(state), name)
    assert json.loads((state / "state" / ATTEMPTS).read_text()) == {
        "version": 1,
        "attempts": {names[0]: 2, names[1]: 1, names[2]: 1},
    }
    os.rename(state / "processing" / names[2], tmp_path / "gone")
    forget(str(state), names[1])
    counts = json.loads((state / "state" / ATTEMPTS).read_text())
    assert counts == {"version": 1, "attempts": {names[0]: 2}}
    assert attempt(str(state), names[0]) == 3  # read back as written


def test_a_claim_names_the_moment_of_the_run_that_made_it(tmp_path: Path) -> None:
    from runner.intake import claim_moment

    state = tmp_path / "state"
    drop(state, GOOD)
    moment = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    name = claim(str(state), 1 << 20, now=moment).claim
    assert name is not None and claim_moment(name) == moment
    for other in (
        "claim-",
        "claim-yesterday-abcd",
        "processing",
        "claim-20271302T000000000000Z-ab",
    ):
        assert claim_moment(other) is None


def test_a_writers_fresh_temp_file_holds_up_none_of_the_files_beside_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "inbox").mkdir(parents=True)
    (state / "inbox" / ".writing.tmp").write_text("{")
    for n in range(100):  # the directory's order is its own: the temp file is rarely last
        drop(state, {**GOOD, "message": f"finding {n}"}, f"f{n:03}.json")
    intake = claim(str(state), 1 << 20)
    assert len(intake.findings) == 100 and intake.rejected == []
    assert os.listdir(state / "inbox") == [".writing.tmp"]


@pytest.mark.parametrize("swapped_for", ["symlink", "fifo"])
def test_an_entry_swapped_after_its_check_is_never_followed_or_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped_for: str
) -> None:
    """The check (lstat) saw a small regular file; by the time it is opened it is a link or
    a FIFO. The open neither follows nor blocks, and the second check, on the open file,
    says what it is."""
    import threading

    from runner import intake as module

    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(GOOD))
    entry = tmp_path / "entry.json"
    if swapped_for == "symlink":
        entry.symlink_to(secret)
    else:
        os.mkfifo(entry)
    real_lstat = os.lstat
    monkeypatch.setattr(
        module.os,
        "lstat",
        lambda path: real_lstat(secret) if path == str(entry) else real_lstat(path),
    )
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(module._read(str(entry), 1 << 20)))
    reader.daemon = True
    reader.start()
    reader.join(10)
    if swapped_for == "fifo" and reader.is_alive():
        with open(entry, "w"):  # release the blocked open, then fail
            pass
        pytest.fail("opening the FIFO blocked")
    [(finding, reason)] = result
    assert finding is None
    assert (
        reason
        == {
            "symlink": "cannot be read (Too many levels of symbolic links)",
            "fifo": "is not a regular file (never opened)",
        }[swapped_for]
    )

"""File-watch paths: literal (no glob), confined to the watch's roots (symlinks resolved, `..`
refused), regular files only, opened without blocking. The real coordinator in-process, real
files, FIFOs and symlinks; the config check through `vigil validate`."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.coordinator_support import bruba_spec, delivered, drop, heartbeat

NOW = datetime(2026, 2, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    return results


def spec_for(state: Path, results: Path) -> dict[str, Any]:
    spec = bruba_spec(state)
    spec["watches"]["research-result"]["file"]["roots"] = [str(results)]
    return spec


def dispatch(state: Path, **tasks: str) -> None:
    items = [{"id": key, "expectedFile": path} for key, path in tasks.items()]
    drop(
        state, {"source": "research-dispatch", "timestamp": "2026-02-02T15:00:00Z", "tasks": items}
    )


def bodies(state: Path) -> list[str]:
    return [line for message in delivered(state) for line in message["body"].splitlines()]


def test_a_name_with_brackets_is_matched_literally(tmp_path: Path, roots: Path) -> None:
    state = tmp_path / "state"
    (roots / "notes[draft].md").write_text("Draft notes\n")
    (roots / "notesd.md").write_text("a file the glob would match instead\n")
    dispatch(state, t1=str(roots / "notes[draft].md"), t2=str(roots / "notes*.md"))
    heartbeat(spec_for(state, roots), NOW)
    lines = bodies(state)
    assert any(
        line.startswith("• Research t1: satisfied") and "Draft notes" in line for line in lines
    )
    assert not any("t2" in line for line in lines)  # `notes*.md` is a name, and there is none


@pytest.mark.parametrize("where", ["outside", "dotdot", "symlink", "relative"])
def test_a_finding_cannot_point_a_watch_at_any_file(
    tmp_path: Path, roots: Path, where: str
) -> None:
    state = tmp_path / "state"
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-TOKEN-123\n")
    path = {
        "outside": str(secret),
        "dotdot": f"{roots}/../secret.txt",
        "symlink": str(roots / "link.md"),
        "relative": "secret.txt",  # relative to wherever the runner happens to be
    }[where]
    (roots / "link.md").symlink_to(secret)
    dispatch(state, t1=path)
    heartbeat(spec_for(state, roots), NOW)
    [line] = bodies(state)
    assert line.startswith("• Research t1: expired (refused ")
    assert "SECRET-TOKEN" not in line
    reasons = {
        "outside": f"is outside the watch's roots ({roots})",
        "dotdot": "contains `..`",
        "symlink": f"is outside the watch's roots ({roots})",
        "relative": "is not an absolute path",
    }
    assert line.endswith(f": it {reasons[where]}) [r1]")


def test_a_symlink_inside_the_root_is_followed(tmp_path: Path, roots: Path) -> None:
    state = tmp_path / "state"
    (roots / "real.md").write_text("Real result\n")
    (roots / "alias.md").symlink_to(roots / "real.md")
    dispatch(state, t1=str(roots / "alias.md"))
    heartbeat(spec_for(state, roots), NOW)
    assert "Real result" in bodies(state)[0]


def test_a_fifo_never_blocks_a_run_and_is_not_the_file(tmp_path: Path, roots: Path) -> None:
    state = tmp_path / "state"
    os.mkfifo(roots / "pipe.md")
    dispatch(state, t1=str(roots / "pipe.md"))
    spec = spec_for(state, roots)
    done = threading.Event()

    def runs() -> None:
        heartbeat(spec, NOW)
        heartbeat(spec, NOW + timedelta(minutes=16))
        done.set()

    threading.Thread(target=runs, daemon=True).start()
    assert done.wait(30), "a run blocked on the FIFO"
    [line] = bodies(state)
    assert line.startswith("• Research t1: expired (no ")


def test_only_the_first_bytes_are_read(tmp_path: Path, roots: Path) -> None:
    state = tmp_path / "state"
    big = roots / "big.md"
    big.write_bytes(b"first line\n" + b"x" * (8 << 20) + b"\nTAIL-MARKER\n")
    dispatch(state, t1=str(big))
    heartbeat(spec_for(state, roots), NOW)
    [line] = bodies(state)
    assert "first line" in line and "TAIL-MARKER" not in line


CONFIG = """\
name: demo
channels: {sink: {file: /tmp/x.jsonl}}
coordinator: {deliver_to: [sink]}
watches:
  task:
    file: {path: "%s", within: 15m}
"""


def test_a_path_whose_directory_comes_from_a_finding_needs_roots(vigil, tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text(CONFIG % "{expectedFile}")
    result = vigil("validate", config)
    assert result.exit_code == 2
    assert "takes its directory from a finding: declare `roots:`" in result.stderr
    config.write_text(CONFIG % "~/results/{key}.md")
    assert vigil("validate", config).exit_code == 0

"""File watches on their own (runner/rules/pending.py), in-process with real files: arming by
finding and by hand, the deadline, satisfied and expired, roots, the summary, pruning. Paths an
attacker chooses are in test_file_watch_paths.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.rules.pending import FileWatchSpec, arm, arm_key, check, pending, prune, roots_of

NOW = datetime(2027, 3, 1, 14, 0, tzinfo=UTC)


def watch(tmp_path: Path, **extra: Any) -> FileWatchSpec:
    condition = {
        "path": f"{tmp_path}/{{key}}.md",
        "within": 900,
        "armed_by": {"source": "dispatch", "items": "tasks", "key": "id"},
        **extra,
    }
    return FileWatchSpec("research", {"file": condition, "message": "{key}: {state} ({evidence})"})


def dispatch(*ids: str) -> dict[str, Any]:
    return {"source": "dispatch", "id": "f1", "tasks": [{"id": i, "n": 1} for i in ids]}


def test_a_finding_arms_one_instance_per_item_and_its_clock_does_not_restart(
    tmp_path: Path,
) -> None:
    w = watch(tmp_path)
    state: dict[str, Any] = {}
    arm(w, {**dispatch("t1", "t2"), "tasks": [{"id": "t1"}, "junk", {"id": "t2"}]}, state, NOW)
    assert sorted(state["instances"]) == ["t1", "t2"] and state["version"] == 1
    t1 = state["instances"]["t1"]
    assert t1 == {
        "state": "armed",
        "armedAt": "2027-03-01T14:00:00Z",
        "deadline": "2027-03-01T14:15:00Z",
        "path": f"{tmp_path}/t1.md",
        "evidence": {"finding": "f1"},
    }
    # t1 again, first in the list: its clock stays, and t3 after it is armed
    arm(w, dispatch("t1", "t3"), state, NOW + timedelta(minutes=10))
    assert state["instances"]["t1"]["deadline"] == "2027-03-01T14:15:00Z"
    assert state["instances"]["t3"]["deadline"] == "2027-03-01T14:25:00Z"
    assert pending(state)


def test_without_items_or_key_the_finding_itself_is_the_instance(tmp_path: Path) -> None:
    w = FileWatchSpec(
        "report",
        {
            "file": {
                "path": f"{tmp_path}/{{name}}-{{key}}.txt",
                "within": 60,
                "armed_by": {"source": "dispatch"},
            }
        },
    )
    state: dict[str, Any] = {}
    arm(w, {"source": "dispatch", "id": "f9", "name": "weekly"}, state, NOW)
    assert state["instances"]["f9"]["path"] == f"{tmp_path}/weekly-f9.txt"
    arm(w, {"source": "dispatch", "timestamp": "t", "name": "daily"}, state, NOW)
    assert state["instances"]["2027-03-01T14:00:00Z"]["evidence"] == {"finding": "t"}


def test_armed_by_hand_with_its_own_time_limit(tmp_path: Path) -> None:
    w = watch(tmp_path)
    state: dict[str, Any] = {}
    arm_key(w, state, "k", NOW, 120)
    assert state == {
        "version": 1,
        "instances": {
            "k": {
                "state": "armed",
                "armedAt": "2027-03-01T14:00:00Z",
                "deadline": "2027-03-01T14:02:00Z",
                "within": 120,
                "path": f"{tmp_path}/k.md",
                "evidence": {"text": "armed by vigil watch arm"},
            }
        },
    }
    arm_key(w, state, "k", NOW + timedelta(minutes=1))  # armed already: unchanged
    assert state["instances"]["k"]["deadline"] == "2027-03-01T14:02:00Z"
    arm_key(w, state, "d", NOW)
    assert state["instances"]["d"]["within"] == 900  # the watch's own


def test_satisfied_when_the_file_is_there_expired_after_the_deadline(tmp_path: Path) -> None:
    w = watch(tmp_path)
    state: dict[str, Any] = {}
    arm(w, dispatch("t1", "t2", "t3"), state, NOW)
    (tmp_path / "t1.md").write_text("\n  # Findings  \n\nline two\nline three\nline four\n")
    assert [a.text for a in check(w, state, NOW + timedelta(minutes=5))] == [
        f"t1: satisfied ({tmp_path}/t1.md: # Findings / line two / line three)"
    ]
    assert check(w, state, NOW + timedelta(minutes=14, seconds=59)) == []
    (tmp_path / "t3.md").write_text("")
    texts = [a.text for a in check(w, state, NOW + timedelta(minutes=15))]
    assert texts == [
        f"t2: expired (no {tmp_path}/t2.md after 15 min; the task may be stuck)",
        f"t3: satisfied ({tmp_path}/t3.md)",  # an empty file: its path alone
    ]
    assert not pending(state)
    assert check(w, state, NOW + timedelta(hours=1)) == []  # each says it once


def test_a_time_limit_that_is_not_whole_minutes_says_seconds(tmp_path: Path) -> None:
    w = watch(tmp_path)
    state: dict[str, Any] = {}
    arm_key(w, state, "k", NOW, 90)
    [late] = check(w, state, NOW + timedelta(seconds=90))
    assert late.text == f"k: expired (no {tmp_path}/k.md after 90s; the task may be stuck)"


def test_roots_are_declared_or_the_literal_directory_before_a_placeholder(tmp_path: Path) -> None:
    assert roots_of(f"{tmp_path}/out/{{key}}.md", None) == [str(tmp_path.resolve() / "out")]
    assert roots_of("{dir}/{key}.md", None) == []
    assert roots_of("/{key}.md", None) == []
    assert roots_of("x", [str(tmp_path)]) == [str(tmp_path.resolve())]
    w = watch(tmp_path, path="{dir}/{key}.md")
    state: dict[str, Any] = {}
    arm(w, {**dispatch(), "tasks": [{"id": "t", "dir": str(tmp_path)}]}, state, NOW)
    [refused] = check(w, state, NOW)
    assert refused.text.endswith(
        ": it has no root to be confined to (declare the watch's `roots:`))"
    )
    assert state["instances"]["t"]["state"] == "expired"
    # an empty `roots:` is no declaration: the literal directory again
    assert roots_of(f"{tmp_path}/out/{{key}}.md", []) == [str(tmp_path.resolve() / "out")]


def test_a_root_is_a_directory_whatever_its_name_ends_in(tmp_path: Path) -> None:
    from runner.rules.pending import outside

    first, second = tmp_path / "reportX", tmp_path / "other/"
    assert outside(f"{first}/t1.md", [str(first)]) is None
    assert outside(f"{first}Y/t1.md", [str(first)]) == f"is outside the watch's roots ({first})"
    both = [str(first), str(second)]
    assert outside("/etc/passwd", both) == f"is outside the watch's roots ({first}, {second})"


def test_a_result_file_is_summed_up_whatever_its_bytes_and_named_in_the_evidence(
    tmp_path: Path,
) -> None:
    w = watch(tmp_path)
    state: dict[str, Any] = {}
    arm(w, dispatch("t0", "t1", "t2"), state, NOW)
    (tmp_path / "t2.md").write_bytes(b"caf\xe9 notes\n")  # Latin-1, not UTF-8
    state["instances"]["t0"]["state"] = "satisfied"  # done earlier: skipped, not the end
    [found] = check(w, state, NOW + timedelta(minutes=1))
    t2 = state["instances"]["t2"]
    assert t2["state"] == "satisfied"
    assert t2["evidence"] == {
        "text": f"{tmp_path}/t2.md: caf\ufffd notes",
        "file": f"{tmp_path}/t2.md",
    }
    assert found.key.startswith("watch:research:t2:satisfied")
    assert state["instances"]["t1"]["state"] == "armed"  # still waiting: not the end either


def test_a_result_swapped_for_a_link_after_its_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """outside() resolved the path; if it became a link since, the open does not follow."""
    from runner.rules import pending as module

    secret = tmp_path / "secret.md"
    secret.write_text("SECRET")
    link = tmp_path / "t1.md"
    link.symlink_to(secret)
    monkeypatch.setattr(module.os.path, "realpath", lambda path: path)  # resolved before the swap
    assert module.read_head(str(link)) is None
    assert module.read_head(str(secret)) == "SECRET"


def test_finished_instances_are_forgotten_after_a_month() -> None:
    state = {
        "instances": {
            "done": {"state": "satisfied", "at": "2027-01-01T00:00:00Z"},
            "acked": {"state": "acknowledged", "at": "2027-03-01T00:00:00Z"},
            "open": {"state": "expired", "at": "2027-01-01T00:00:00Z"},
            "undated": {"state": "satisfied"},
        }
    }
    prune(state, NOW)
    assert sorted(state["instances"]) == ["acked", "open"]
    prune(state, datetime(2027, 3, 31, 0, 0, tzinfo=UTC))  # exactly 30 days: kept
    assert "acked" in state["instances"]
    prune(state, datetime(2027, 3, 31, 0, 0, 1, tzinfo=UTC))
    assert sorted(state["instances"]) == ["open"]

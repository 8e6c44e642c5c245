"""State files of another version or shape, or that cannot be read: one bad file never stops
unrelated delivery. A file that does not parse or is of an unknown version/shape is set aside in
state/rejected/ with an alert naming it and why; a file that exists but cannot be read stops
only the rule that needs it, loudly, and is never overwritten as if it were empty. The real
coordinator in-process (and as `nobody` for the permission case), real files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.coordinator import run
from tests.coordinator_support import bruba_spec, delivered, drop

NOW = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)
OUTAGE = {"source": "uptime", "timestamp": "2026-02-02T14:00:00Z", "message": "api is down"}
REMINDER = {
    "source": "reminder-check",
    "timestamp": "2026-02-02T14:00:00Z",
    "overdue": [{"id": "A", "title": "Call dentist", "days_overdue": 1}],
}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "state" / "state").mkdir(parents=True)
    return tmp_path / "state"


def write(state: Path, name: str, data: Any) -> Path:
    path = state / "state" / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def bodies(state: Path) -> list[str]:
    return [line for message in delivered(state) for line in message["body"].splitlines()]


def set_aside(state: Path, name: str) -> list[Path]:
    rejected = state / "state" / "rejected"
    return sorted(p for p in rejected.glob(f"{name}-*") if not p.name.endswith(".reason"))


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("watch-research-result.json", {"version": 2, "instances": {}}, "is version 2"),
        ("watch-urgent-reply.json", {"version": 1, "instances": []}, "another shape"),
        (
            "watch-urgent-reply.json",
            {"version": 1, "instances": {"m1": {"state": "snoozed"}}},
            "(m1: `state` 'snoozed' is not one of armed, satisfied, fired, expired, delivered, ack",
        ),
        ("held.json", "{not json", "is not valid JSON"),
        ("nag-reminders.json", {"version": 1, "items": {"A": {"nagCount": "x"}}}, "`nagCount`"),
        ("sources.json", ["a list"], "is not a JSON object"),
        ("delivered.json", {"delivered": {"m": {"at": 5}}}, "`at` is int"),
        ("claims.json", {"version": 3}, "is version 3"),
    ],
)
def test_a_state_file_of_another_shape_is_set_aside_and_delivery_goes_on(
    state: Path, name: str, content: Any, why: str
) -> None:
    original = write(state, name, content).read_bytes()
    if name == "claims.json":  # read when a run left a claim behind
        claim = state / "processing" / "claim-20260202T135900000000Z-0000"
        claim.mkdir(parents=True)
        (claim / "uptime.json").write_text(json.dumps(OUTAGE))
    else:
        drop(state, OUTAGE)
    drop(state, REMINDER)  # nag state is read for a finding of its source
    run(bruba_spec(state), NOW)
    lines = bodies(state)
    # A claim left behind is taken first, alone: its outage is r1. Otherwise the reminder's
    # file (reminder-check-*) is taken before the outage's (uptime-*).
    assert ("• api is down [r1]" if name == "claims.json" else "• api is down [r2]") in lines
    [alert] = [line for line in lines if f"state/{name}" in line]
    assert why in alert and "set aside" in alert
    [kept] = set_aside(state, name)
    assert kept.read_bytes() == original
    assert why in kept.with_name(kept.name + ".reason").read_text()
    # The next runs, idle heartbeats included, neither fail nor alert again.
    run(bruba_spec(state), NOW + timedelta(hours=1))
    assert len([line for line in bodies(state) if f"state/{name}" in line]) == 1
    assert not list((state / "inbox").iterdir())


def test_a_held_alert_without_text_costs_only_itself(state: Path) -> None:
    good = {"text": "held from last night", "source": "x", "key": "k1", "heldSince": "2026-02-02"}
    write(state, "held.json", {"version": 1, "alerts": [{"source": "x", "key": "k2"}, good]})
    run(bruba_spec(state), NOW)  # a heartbeat: nothing new, outside quiet hours
    lines = bodies(state)
    assert "• held from last night [r1]" in lines
    [alert] = [line for line in lines if "state/held.json" in line]
    assert "1 entry of another shape (0: no `text`)" in alert
    assert "kept" in alert
    assert len(set_aside(state, "held.json")) == 1


def test_a_watch_file_of_a_newer_version_no_longer_stops_every_run(state: Path) -> None:
    write(state, "watch-urgent-reply.json", {"version": 2, "instances": {"x": {"state": 7}}})
    for hour in range(3):
        run(bruba_spec(state), NOW + timedelta(hours=hour))
    mail = {
        "source": "mail",
        "timestamp": "2026-02-02T17:00:00Z",
        "messages": [{"id": "m1", "subject": "URGENT: outage"}],
    }
    drop(state, mail)
    run(bruba_spec(state), NOW + timedelta(hours=3))
    lines = bodies(state)
    assert any("state/watch-urgent-reply.json is version 2" in line for line in lines)
    assert any(line.startswith("• Urgent reply:") for line in lines)  # the watch works again


def test_a_watch_state_file_of_the_previous_version_reads_back_unchanged(
    state: Path, tmp_path: Path
) -> None:
    """Instances in every state, as the version whose states were plain strings wrote them: a
    run with nothing due rewrites both files byte for byte, and `vigil ack` moves one of them."""
    results = tmp_path / "results"
    results.mkdir()
    spec = bruba_spec(state)
    spec["watches"]["research-result"]["file"]["roots"] = [str(results)]
    hour, day = "2026-02-02T13:00:00Z", "2026-02-01T14:00:00Z"

    def finished(steps: str, at: str, **extra: Any) -> dict[str, Any]:
        history = [{"at": at, "evidence": {"text": s}, "state": s} for s in steps.split()]
        last = history[-1]
        return {
            "at": at,
            "evidence": last["evidence"],
            "history": history,
            "state": last["state"],
        } | extra

    research = {
        "version": 1,
        "instances": {
            "t1": {
                "armedAt": hour,
                "deadline": "2026-02-02T14:10:00Z",
                "evidence": {"finding": hour},
                "path": str(results / "t1.md"),
                "state": "armed",
            },
            "t2": finished("satisfied", day),
            "t3": finished("expired", hour, alerts=1, lastAlert=hour, messages={"signal": "q3"}),
            "t4": finished("expired delivered", hour, alerts=1, lastAlert=hour),
            "t5": finished("expired acknowledged", day),
        },
    }
    alerted = {"alerts": 1, "escalated": hour, "lastAlert": "2026-02-02T13:50:00Z"}
    urgent = {
        "version": 1,
        "instances": {
            "m1": finished("fired", hour, messages={"signal": "q1"}, **alerted),
            "m2": finished("fired delivered", hour, **alerted),
            "m3": finished("fired acknowledged", day),
        },
    }
    files = {"watch-research-result.json": research, "watch-urgent-reply.json": urgent}
    old = {name: json.dumps(data, indent=1, sort_keys=True) + "\n" for name, data in files.items()}
    for name, text in old.items():
        write(state, name, text)
    run(spec, NOW)  # a heartbeat: nothing due, nothing to settle
    for name, text in old.items():
        assert (state / "state" / name).read_text() == text
    assert not (state / "state" / "rejected").exists()
    assert delivered(state) == []
    ack = {"source": "vigil", "kind": "ack", "watch": "urgent-reply", "key": "m1"}
    drop(state, {**ack, "timestamp": "2026-02-02T14:05:00Z"})
    run(spec, NOW + timedelta(minutes=5))
    now = json.loads((state / "state" / "watch-urgent-reply.json").read_text())["instances"]
    assert now["m1"]["state"] == "acknowledged"
    assert [step["state"] for step in now["m1"]["history"]] == ["fired", "acknowledged"]
    assert {key: now[key] for key in ("m2", "m3")} == {
        key: urgent["instances"][key] for key in ("m2", "m3")
    }


def test_a_watch_instance_in_a_state_this_vigil_does_not_know_costs_only_itself(
    state: Path,
) -> None:
    """A state a later version (or a hand) wrote: refused and kept aside with the file (see
    above); the watch goes on with the instances it knows."""
    fired = {"state": "fired", "at": "2026-02-02T13:00:00Z", "lastAlert": "2026-02-02T13:50:00Z"}
    instances = {"m1": fired, "m2": {"state": "snoozed", "at": "2026-02-02T13:00:00Z"}}
    write(state, "watch-urgent-reply.json", {"version": 1, "instances": instances})
    run(bruba_spec(state), NOW)  # a heartbeat
    rewritten = json.loads((state / "state" / "watch-urgent-reply.json").read_text())
    assert rewritten["instances"] == {"m1": fired}
    assert len(set_aside(state, "watch-urgent-reply.json")) == 1


def test_a_nag_state_of_an_unknown_version_starts_again_loudly(state: Path) -> None:
    write(state, "nag-reminders.json", {"version": 9, "items": {}})
    drop(state, REMINDER)
    run(bruba_spec(state), NOW)
    lines = bodies(state)
    assert "• Reminder: Call dentist is overdue [r1]" in lines
    [alert] = [line for line in lines if "nag-reminders.json" in line]
    assert "is version 9; this vigil reads version 1" in alert
    assert "every item's nag count starts again" in alert
    record = json.loads((state / "state" / "nag-reminders.json").read_text())["items"]["A"]
    assert record["nagCount"] == 1


def test_set_aside_names_do_not_collide_and_keep_both(state: Path) -> None:
    for hour in range(2):
        write(state, "sources.json", "[]")
        drop(state, OUTAGE)
        run(bruba_spec(state), NOW + timedelta(hours=hour))
    assert len(set_aside(state, "sources.json")) == 2
    assert os.listdir(state / "inbox") == []


def test_a_nag_state_it_cannot_read_stops_only_that_rule_and_is_never_reset() -> None:
    """After an accidental `sudo` run: a root-owned 0600 nag state, the coordinator as `nobody`."""
    from tests.private_fs import private_mounts

    with private_mounts() as fs:
        state = fs.base / "state"
        (state / "state").mkdir(parents=True)
        history = {"version": 1, "items": {"A": {"nagCount": 2, "status": "active"}}}
        nag = write(state, "nag-reminders.json", history)
        nag.chmod(0o600)  # root's
        fs.must("chown", "-R", "nobody:nogroup", state)
        os.chown(nag, 0, 0)
        spec = fs.base / "coordinator.json"
        spec.write_text(json.dumps(bruba_spec(state)))
        spec.chmod(0o644)
        env = {"VIGIL_NOW": "2026-02-02T14:00:00Z"}
        for _ in range(2):  # the second run alerts no more: once per file and day
            drop(state, OUTAGE)
            drop(state, REMINDER)
            fs.must("chown", "-R", "nobody:nogroup", state / "inbox")
            result = fs.runner("coordinator", spec, nobody=True, **env)
            assert result.returncode == 0, result.stderr
            assert "state/nag-reminders.json cannot be read (Permission denied)" in result.stderr
        lines = bodies(state)
        assert lines.count("• api is down [r1]") == 2  # the same item, told by both runs
        [alert] = [line for line in lines if "nag-reminders.json" in line]
        assert "nag rule reminders is stopped until it can be" in alert
        assert not [line for line in lines if "Call dentist" in line]
        assert json.loads(nag.read_text()) == history and nag.stat().st_uid == 0
        os.chown(nag, *fs_ids("nobody", "nogroup"))  # given back: the ladder goes on at nag 3
        drop(
            state,
            {**REMINDER, "overdue": [{"id": "A", "title": "Call dentist", "days_overdue": 9}]},
        )
        fs.must("chown", "-R", "nobody:nogroup", state / "inbox")
        later = {"VIGIL_NOW": "2026-02-12T14:00:00Z"}
        assert fs.runner("coordinator", spec, nobody=True, **later).returncode == 0
        assert json.loads(nag.read_text())["items"]["A"]["nagCount"] == 3


def fs_ids(user: str, group: str) -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


class Killed(BaseException):
    """Stands in for a SIGKILL: nothing after it runs, no `except Exception` catches it."""


def test_a_kill_while_setting_a_file_aside_still_says_so(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert is in the inbox before the file moves: a run killed just after the move still
    says so, in the next run."""
    from runner import statefile

    write(state, "sources.json", ["a list"])
    drop(state, OUTAGE)

    def killed_after_the_move(_directory: str) -> None:
        raise Killed

    monkeypatch.setattr(statefile, "fsync_dir", killed_after_the_move)
    with pytest.raises(Killed):
        run(bruba_spec(state), NOW)
    monkeypatch.undo()
    run(bruba_spec(state), NOW + timedelta(minutes=1))
    lines = bodies(state)
    assert "• api is down [r1]" in lines
    assert len([line for line in lines if "state/sources.json" in line]) == 1
    assert len(set_aside(state, "sources.json")) == 1


def test_a_kill_after_the_set_aside_reason_finishes_the_move_without_a_second_alert(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alert, reason, move: killed after the reason, the next run moves the file under the
    name the alert already gave, and says nothing twice."""
    from runner import statefile

    write(state, "sources.json", ["a list"])
    drop(state, OUTAGE)
    real = statefile.os.rename

    def killed_at_the_move(_source: str, _target: str) -> None:
        raise Killed

    monkeypatch.setattr(statefile.os, "rename", killed_at_the_move)
    with pytest.raises(Killed):
        run(bruba_spec(state), NOW)
    monkeypatch.setattr(statefile.os, "rename", real)
    run(bruba_spec(state), NOW + timedelta(minutes=1))
    run(bruba_spec(state), NOW + timedelta(minutes=2))
    assert len([line for line in bodies(state) if "state/sources.json" in line]) == 1
    [kept] = set_aside(state, "sources.json")
    assert kept.with_name(kept.name + ".reason").exists()
    assert len(list((state / "state" / "rejected").glob("sources.json-*.reason"))) == 1


def test_a_kill_after_the_unreadable_alert_still_says_it_that_day(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert before the once-a-day marker: killed as it alerts, the next run says it
    (a marker made first would have kept it quiet all day)."""
    from runner import statefile

    drop(state, OUTAGE)
    run(bruba_spec(state), NOW)
    real_peek, real_alert = statefile.peek_state, statefile.own_alert

    def unreadable_held(state_dir: str, name: str, shape: Any) -> Any:
        if name == "held.json":
            raise statefile.StateUnreadable(name, PermissionError(13, "Permission denied"))
        return real_peek(state_dir, name, shape)

    def killed_as_it_alerts(*_args: Any) -> None:
        raise Killed

    monkeypatch.setattr(statefile, "peek_state", unreadable_held)
    monkeypatch.setattr(statefile, "own_alert", killed_as_it_alerts)
    with pytest.raises(Killed):
        run(bruba_spec(state), NOW + timedelta(minutes=1))
    monkeypatch.setattr(statefile, "own_alert", real_alert)
    for minutes in (2, 3, 4):
        run(bruba_spec(state), NOW + timedelta(minutes=minutes))
    said = [line for line in bodies(state) if "state/held.json cannot be read" in line]
    assert len(said) == 1

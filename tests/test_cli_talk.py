"""`vigil snooze`, `vigil silence add|list|expire` and `vigil inbox --silenced`: what they drop
into the inbox for the coordinator, what they read from its state, and bad input (exit 2,
nothing written)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_inspect import config_for

NOW = "2026-12-07T14:00:00Z"  # Monday 09:00 in New York, the reference workload's zone


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_NOW", NOW)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return config_for(tmp_path, tmp_path / "state")


def dropped(tmp_path: Path) -> list[dict[str, Any]]:
    inbox = tmp_path / "state" / "inbox"
    paths = sorted(inbox.iterdir(), key=lambda p: p.stat().st_mtime_ns) if inbox.is_dir() else []
    return [json.loads(path.read_text()) for path in paths]


def write_state(tmp_path: Path, name: str, data: object) -> None:
    directory = tmp_path / "state" / "state"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data))


# --- snooze ------------------------------------------------------------------------------------


def open_codes(tmp_path: Path, *codes: str, closed: str = "") -> None:
    told = {"subject": "nag:reminders:a", "told": "2026-12-07T13:00:00Z"}
    refs = {code: {**told, "subject": f"nag:reminders:{code}"} for code in codes}
    if closed:
        refs[closed] = {**told, "closed": "2026-12-07T13:30:00Z", "why": "done"}
    write_state(tmp_path, "refs.json", {"version": 1, "refs": refs})


def test_snooze_a_code_for_a_while(vigil, tmp_path: Path, config: Path) -> None:
    open_codes(tmp_path, "r7")
    result = vigil("snooze", "r7", "--for", "2h", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert "r7: snoozed until Mon 7 Dec 11:00 EST" in result.stderr
    [finding] = dropped(tmp_path)
    assert finding["source"] == "vigil"
    assert {k: finding[k] for k in ("kind", "ref", "until")} == {
        "kind": "snooze",
        "ref": "r7",
        "until": "2026-12-07T16:00:00Z",
    }


def test_snooze_until_a_wall_time_across_the_clock_change(
    vigil, tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_NOW", "2026-03-07T14:00:00Z")  # Saturday 09:00 EST
    open_codes(tmp_path, "r3")
    result = vigil("snooze", "r3", "--until", "tomorrow 9:00", "-c", config)
    assert result.exit_code == 0, result.stderr
    assert "r3: snoozed until Sun 8 Mar 09:00 EDT" in result.stderr
    assert dropped(tmp_path)[0]["until"] == "2026-03-08T13:00:00Z"


def test_snooze_of_a_code_that_is_not_open_says_so_and_writes_nothing(
    vigil, tmp_path: Path, config: Path
) -> None:
    open_codes(tmp_path, "r2", "r10", closed="r3")
    result = vigil("snooze", "r3", "--for", "2h", "-c", config)
    assert result.exit_code == 2
    assert "r3 is closed (done); open: r2, r10" in result.stderr
    result = vigil("snooze", "r4", "--for", "2h", "-c", config)
    assert result.exit_code == 2
    assert "r4 is no item's code; open: r2, r10" in result.stderr
    assert dropped(tmp_path) == []


def test_snooze_a_watch_and_one_of_its_instances(vigil, tmp_path: Path, config: Path) -> None:
    result = vigil("snooze", "urgent-reply", "--for", "1d", "-c", config)
    assert result.exit_code == 2  # nothing told about it: nothing to snooze
    assert "urgent-reply has no open alert to snooze" in result.stderr
    told = {"subject": "watch:urgent-reply:m1", "told": "2026-12-07T13:00:00Z"}
    write_state(tmp_path, "refs.json", {"version": 1, "refs": {"r4": told}})
    assert vigil("snooze", "urgent-reply", "--for", "1d", "-c", config).exit_code == 0
    fired = {"state": "fired", "at": "2026-12-07T13:00:00Z"}
    write_state(tmp_path, "watch-urgent-reply.json", {"instances": {"m1": fired}})
    result = vigil("snooze", "urgent-reply", "m1", "--until", "mon 8:00", "-c", config)
    assert result.exit_code == 0, result.stderr
    assert "urgent-reply m1: snoozed until Mon 14 Dec 08:00 EST" in result.stderr
    whole, one = dropped(tmp_path)
    assert (whole["watch"], whole["key"], whole["until"]) == (
        "urgent-reply",
        None,
        "2026-12-08T14:00:00Z",
    )
    assert (one["watch"], one["key"], one["until"]) == (
        "urgent-reply",
        "m1",
        "2026-12-14T13:00:00Z",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("r7",), "give one of --for (2h, 1d) and --until"),
        (("r7", "--for", "2h", "--until", "9:00"), "give one of --for"),
        (("r7", "--for", "tomorrow"), "--for: 'tomorrow' is not a duration"),
        (("r7", "--until", "someday"), "--until: 'someday' is not a time"),
        (("r7", "k", "--for", "2h"), "r7 is a reference code: it takes no KEY"),
        (
            ("urgnt-reply", "--for", "2h"),
            "unknown watch 'urgnt-reply'; did you mean 'urgent-reply'?",
        ),
        (("urgent-reply", "m9", "--for", "2h"), "urgent-reply has no instance 'm9'"),
    ],
)
def test_snooze_refuses_bad_input_and_writes_nothing(
    vigil, tmp_path: Path, config: Path, args: tuple[str, ...], message: str
) -> None:
    result = vigil("snooze", *args, "-c", config)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert dropped(tmp_path) == []


# --- silence add -------------------------------------------------------------------------------


def test_silence_add_prints_the_id_and_drops_the_silence(
    vigil, tmp_path: Path, config: Path
) -> None:
    result = vigil(
        "silence", "add", "job=mail-*", "kind=failure", "job=calendar-prep",
        "--for", "3h", "--comment", "gateway work", "-c", config,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    silence_id = result.stdout.strip()
    assert re.fullmatch(r"s[0-9a-f]{4}", silence_id)
    assert f"{silence_id}: silenced until Mon 7 Dec 12:00 EST" in result.stderr
    assert "matches nothing" not in result.stderr  # calendar-prep is a job
    [finding] = dropped(tmp_path)
    assert finding["kind"] == "silence-add"
    assert finding["silence"] == {
        "id": silence_id,
        "matchers": {"job": ["mail-*", "calendar-prep"], "kind": ["failure"]},
        "starts": NOW,
        "ends": "2026-12-07T17:00:00Z",
        "comment": "gateway work",
        "by": "cli",
    }


def test_silence_add_flags_a_matcher_that_names_nothing(vigil, config: Path) -> None:
    result = vigil("silence", "add", "source=nobody", "--until", "18:00", "-c", config)
    assert result.exit_code == 0, result.stderr
    assert "its source matches nothing in the config" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sorce=mail", "--for", "1h"), "unknown field 'sorce'; the fields are source, job, watch"),
        (("job", "--for", "1h"), "matcher 'job': write FIELD=GLOB"),
        (("job=", "--for", "1h"), "matcher 'job=': write FIELD=GLOB"),
        (("kind=failed", "--for", "1h"), "matcher 'kind=failed': no alert kind matches it"),
        (("job=x",), "give one of --for"),
        (("job=x", "--for", "0m"), "--for: '0m' is not in the future"),
    ],
)
def test_silence_add_refuses_bad_input_and_writes_nothing(
    vigil, tmp_path: Path, config: Path, args: tuple[str, ...], message: str
) -> None:
    result = vigil("silence", "add", *args, "-c", config)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert dropped(tmp_path) == []


# --- silence list and expire -------------------------------------------------------------------


def silence(silence_id: str, ends: str, **more: Any) -> dict[str, Any]:
    return {
        "id": silence_id,
        "matchers": {"job": ["reminder-check"]},
        "starts": "2026-12-01T00:00:00Z",
        "ends": ends,
        "comment": None,
        "by": "cli",
        "created": "2026-12-01T00:00:00Z",
        "expired": None,
        "matched": 0,
        **more,
    }


@pytest.fixture
def silences(vigil, tmp_path: Path, config: Path) -> Path:
    """An active silence, one expired an hour ago (by `expire`), one ended three days ago, a
    bad entry, and a silence added and an expire still waiting in the inbox."""
    write_state(
        tmp_path,
        "silences.json",
        {
            "version": 1,
            "silences": [
                silence("s1111", "2026-12-07T20:00:00Z", matched=4, comment="deploy"),
                silence("s2222", "2026-12-08T00:00:00Z", expired="2026-12-07T13:00:00Z"),
                silence("s3333", "2026-12-04T00:00:00Z", matchers={"watch": ["gone-*"]}),
                {"id": 5},
            ],
        },
    )
    assert vigil("silence", "add", "text=*disk*", "--for", "1h", "-c", config).exit_code == 0
    return config


def test_silence_list_shows_states_ends_and_counts(vigil, silences: Path) -> None:
    result = vigil("silence", "list", "-c", silences)
    assert result.exit_code == 0, result.stderr
    assert "silences.json has 1 entry of another shape" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "MATCHERS", "ENDS", "MATCHED", "COMMENT", "NOTE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert len(rows) == 3 and {"s1111", "s2222"} <= rows.keys()  # s3333 ended 3 days ago
    assert re.match(r"s1111\s+active\s+job=reminder-check\s+in 6h \(Mon 7 Dec 15:00 EST\)\s+4"
                    r"\s+deploy", rows["s1111"])  # fmt: skip
    assert "expired" in rows["s2222"] and "1h ago (Mon 7 Dec 08:00 EST)" in rows["s2222"]
    [pending] = [line for key, line in rows.items() if key not in ("s1111", "s2222")]
    assert "pending" in pending and "text=*disk*" in pending
    shown = json.loads(vigil("silence", "list", "--all", "--json", "-c", silences).stdout)
    assert [row["id"] for row in shown][:3] == ["s1111", "s2222", "s3333"]
    old = shown[2]
    assert old["state"] == "expired"
    assert old["matchers"] == {"watch": ["gone-*"]}
    assert old["note"] == "matches nothing in the config"


def test_silence_expire(vigil, tmp_path: Path, silences: Path) -> None:
    before = len(dropped(tmp_path))
    result = vigil("silence", "expire", "s9999", "-c", silences)
    assert result.exit_code == 2
    # s1111 and the one `silence add` made, whose random id sorts before or after it
    known = result.stderr.split("no silence 's9999'; known: ")[1].split("\n")[0].split(", ")
    assert len(known) == 2 and "s1111" in known, result.stderr
    result = vigil("silence", "expire", "s2222", "-c", silences)
    assert result.exit_code == 2
    assert "silence s2222 has expired already" in result.stderr
    assert len(dropped(tmp_path)) == before
    result = vigil("silence", "expire", "s1111", "-c", silences)
    assert result.exit_code == 0, result.stderr
    assert dropped(tmp_path)[-1]["kind"] == "silence-expire"
    assert dropped(tmp_path)[-1]["silence_id"] == "s1111"
    rows = json.loads(vigil("silence", "list", "--json", "-c", silences).stdout)
    assert next(row for row in rows if row["id"] == "s1111")["state"] == "pending"


def test_silence_list_of_nothing(vigil, config: Path) -> None:
    result = vigil("silence", "list", "-c", config)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no silences" in result.stderr


# --- inbox --silenced --------------------------------------------------------------------------


def test_inbox_silenced_lists_what_was_held_back_newest_last(
    vigil, tmp_path: Path, config: Path
) -> None:
    entry = {"source": "mail-check", "key": "k", "text": "mail down", "action": "held"}
    write_state(
        tmp_path,
        "silenced.json",
        {
            "version": 1,
            "entries": [
                {**entry, "at": "2026-12-07T13:00:00Z", "by": "inhibit:gateway-down"},
                {**entry, "at": "2026-12-07T12:00:00Z", "by": "silence:s1111", "action": "dropped"},
                {"at": "2026-12-07T12:30:00Z", "action": "held"},
            ],
        },
    )
    result = vigil("inbox", "--silenced", "-c", config)
    assert result.exit_code == 0, result.stderr
    assert "silenced.json has 1 entry of another shape" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["AT", "BY", "ACTION", "SOURCE", "TEXT"]
    assert "silence:s1111" in lines[1] and "dropped" in lines[1]
    assert "inhibit:gateway-down" in lines[2] and "mail down" in lines[2]
    rows = json.loads(vigil("inbox", "--silenced", "--json", "-c", config).stdout)
    assert [row["by"] for row in rows] == ["silence:s1111", "inhibit:gateway-down"]


def test_help_lists_the_commands(vigil) -> None:
    result = vigil("--help")
    assert "snooze" in result.stdout and "silence" in result.stdout


def test_on_a_fleet_the_commands_say_they_are_not_supported_yet(vigil) -> None:
    from tests.conftest import ROOT

    fleet = ROOT / "examples" / "fleet.yaml"
    for args in (
        ["snooze", "r1", "--for", "2h"],
        ["silence", "add", "job=*", "--for", "1h"],
        ["silence", "list"],
        ["silence", "expire", "s1234"],
        ["inbox", "--silenced"],
    ):
        result = vigil(*args, "-c", fleet)
        assert result.exit_code == 2, (args, result.stderr)
        assert "not supported on a fleet yet" in result.stderr, args


def test_a_comment_with_control_characters_stays_one_line_in_the_table(
    vigil, tmp_path: Path, config: Path
) -> None:
    hostile = silence("s4444", "2026-12-07T20:00:00Z", comment="deploy\n\x1b[2Jgone")
    write_state(tmp_path, "silences.json", {"version": 1, "silences": [hostile]})
    result = vigil("silence", "list", "-c", config)
    assert result.exit_code == 0, result.stderr
    [_header, row] = result.stdout.splitlines()
    assert "deploy??[2Jgone" in row and "\x1b" not in result.stdout

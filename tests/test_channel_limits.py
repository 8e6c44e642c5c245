"""Per-channel limits: a message is fitted to what its channel can carry (argv's NUL and size
limits, a service's length), cut at a line with a notice that says so, never dead-lettered for
its size or bytes. Real commands and a real loopback receiver; time is injected."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.delivery.fit import MAX_ARG_STRLEN, NUL_STAND_IN, cut, default_max_chars
from runner.delivery.outbox import enqueue, outbox_status
from tests.runner_support import WebhookReceiver
from tests.test_delivery import T0, coordinator_spec, dead, deliver, lines, message

RECORD_ARGV = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
CUT = "more lines cut: the whole message is in "


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().serving() as server:
        yield server


def recorder(out: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-c", RECORD_ARGV, str(out), *arguments]


def items(count: int, width: int = 200) -> str:
    return "\n".join(f"• item {n:05d} " + "x" * width for n in range(count))


def test_a_nul_byte_is_shown_and_the_rest_of_the_message_still_goes_out(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    spec = coordinator_spec({"agent": {"command": recorder(out, "{message}", "{title}")}})
    state = tmp_path / "state"
    body = "• backup: disk full\0 (from a detector)\n• outage: api.example.com is down"
    enqueue(state, message(channel="agent", title="Bruba\0 2 new", body=body))
    report = deliver(spec, state, T0)
    assert (report.delivered, report.retrying, dead(state)) == (1, 0, [])
    text, title = json.loads(out.read_text())
    assert text == f"Bruba{NUL_STAND_IN} 2 new\n" + body.replace("\0", NUL_STAND_IN)
    assert "outage: api.example.com is down" in text
    assert title == f"Bruba{NUL_STAND_IN} 2 new"


def test_ten_thousand_items_are_cut_to_fit_argv_and_the_whole_text_is_kept(
    tmp_path: Path,
) -> None:
    out = tmp_path / "argv.json"
    command = recorder(out, "{message}", "--again={message}", "{title}")
    spec = coordinator_spec({"agent": {"command": command, "max_chars": 50_000_000}})
    state = tmp_path / "state"
    body = items(10_000)  # 2 MB: more than one argument, and than all of argv, may hold
    enqueue(state, message(channel="agent", body=body))
    report = deliver(spec, state, T0)
    assert (report.delivered, dead(state)) == (1, [])
    first, again, title = json.loads(out.read_text())
    assert again == f"--again={first}"
    assert title == "Bruba: 2 new"
    assert len(first.encode()) + 1 <= MAX_ARG_STRLEN
    kept, notice = first.rsplit("\n", 1)
    assert kept.startswith("Bruba: 2 new\n• item 00000 ")
    assert kept.splitlines()[-1].endswith("x" * 200)  # whole lines only
    shown = len(kept.splitlines()) - 1
    assert notice.startswith(f"… {10_000 - shown:,} {CUT}")
    whole = Path(notice.split(CUT)[1].split(" for ")[0])
    assert whole.parent == state / "tmp"
    assert whole.read_text() == "Bruba: 2 new\n" + body


def test_a_command_channel_cuts_at_its_max_chars(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    spec = coordinator_spec({"agent": {"command": recorder(out, "{message}"), "max_chars": 1000}})
    enqueue(tmp_path / "state", message(channel="agent", body=items(100, 20)))
    deliver(spec, tmp_path / "state", T0)
    [text] = json.loads(out.read_text())
    assert len(text) <= 1000
    assert text.splitlines()[-1].startswith("… ")
    assert f"{CUT}" in text


def test_a_file_channel_has_no_limit_unless_it_sets_one(tmp_path: Path) -> None:
    whole, short = tmp_path / "whole.jsonl", tmp_path / "short.jsonl"
    spec = coordinator_spec(
        {"whole": {"file": str(whole)}, "short": {"file": str(short), "max_chars": 500}}
    )
    state = tmp_path / "state"
    body = items(5_000)
    enqueue(state, message("m1", channel="whole", body=body))
    enqueue(state, message("m2", channel="short", body=body))
    assert deliver(spec, state, T0).delivered == 2
    assert lines(whole)[0]["body"] == body
    [record] = lines(short)
    assert len(record["title"]) + 1 + len(record["body"]) <= 500
    assert record["body"].splitlines()[-1].startswith("… ")


def test_an_apprise_channel_gets_the_services_limit(
    tmp_path: Path,
    receiver: WebhookReceiver,
) -> None:
    url = f"json://127.0.0.1:{receiver.port}/hook"
    spec = coordinator_spec({"push": {"apprise": url, "max_chars": 2000}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push", body=items(1_000, 40)))
    assert deliver(spec, state, T0).delivered == 1
    [posted] = receiver.received
    assert len(posted["title"]) + 1 + len(posted["message"]) <= 2000
    assert CUT in posted["message"].splitlines()[-1]
    assert outbox_status(state) == []


@pytest.mark.parametrize(
    ("channel", "limit"),
    [
        ({"apprise": "tgram://123:abc/-100"}, 4096),
        ({"apprise": "TGRAM://123:abc/-100"}, 4096),
        ({"apprise": "discord://a/b"}, 2000),
        ({"apprise": "someservice://x"}, 4000),
        ({"apprise_secret": "telegram"}, 4000),
        ({"command": ["agent"]}, 100_000),
        ({"file": "x.jsonl"}, None),
    ],
)
def test_default_limits_per_kind(channel: dict[str, object], limit: int | None) -> None:
    assert default_max_chars(channel) == limit


def test_cut_keeps_text_at_the_limit_and_cuts_one_over() -> None:
    text = "one\ntwo\nthree"
    assert cut(text, len(text)) == text
    shorter = cut(text + "!", len(text), where="x")
    assert len(shorter) <= len(text)
    assert shorter != text + "!"


def test_cut_of_one_enormous_line_keeps_its_start_and_says_so() -> None:
    text = "y" * 10_000 + "\nsecond\nthird"
    shorter = cut(text, 300, where="see the file")
    assert len(shorter) <= 300
    assert shorter.startswith("yyy")
    assert shorter.endswith("… 2 more lines cut: see the file")
    assert cut("z" * 10_000, 5) == "zzzz…"


def test_nothing_is_written_when_nothing_is_cut(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    spec = coordinator_spec({"agent": {"command": recorder(out, "{message}")}})
    enqueue(tmp_path / "state", message(channel="agent"))
    deliver(spec, tmp_path / "state", T0)
    assert not [n for n in os.listdir(tmp_path / "state" / "tmp") if "message" in n]

"""The person answers from chat, end to end: a real reply source process (`python -m runner
reply SPEC`) polls a loopback server speaking the Telegram Bot API or signal-cli's JSON-RPC and
writes what a listed sender says into the inbox; the real coordinator, on a simulated clock,
applies it and answers. Nag items are told with their code, "done r1" resolves one (the next
heartbeat does not nag it), "snooze r1 2h" says it again after two hours and not before, a
stranger changes nothing, and a reply read twice (the service stopped before storing its
offset) is applied once."""

from __future__ import annotations

import json
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.coordinator import run
from tests.signal_server import ACCOUNT, SignalDaemon, envelope
from tests.telegram_server import TelegramServer
from tests.test_replies import (
    PERSON,
    STRANGER,
    TOKEN,
    Service,
    compile_spec,
    inbox,
    wait_until,
)

PERSON_NUMBER = "+15550002222"
MONDAY_9AM = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York
CONFIG = """\
name: ans
timezone: America/New_York
state_dir: {state}
secrets: {{bot: {state}/bot-token}}
channels: {{sink: {{file: {state}/deliveries.jsonl}}}}
coordinator:
  deliver_to: [sink]
  sources: {{todo: {{external: true}}}}
nag:
  todo:
    source: todo
    items: open
    key: id
    min_interval: 20h
    ladder: [{{min_count: 1, message: "{{title}} is due"}}]
replies:
{replies}
"""


class Setup:
    def __init__(self, spec: dict[str, Any], state: Path, start: Any) -> None:
        self.spec, self.state, self.start = spec, state, start

    def report(self, now: datetime, *items: tuple[str, str]) -> list[str]:
        """The detector reports its open items; the coordinator runs: what it delivered."""
        finding = {
            "source": "todo",
            "timestamp": now.isoformat(),
            "open": [{"id": key, "title": title} for key, title in items],
        }
        (self.state / "inbox").mkdir(parents=True, exist_ok=True)
        temp = self.state / ".todo.tmp"
        temp.write_text(json.dumps(finding))
        temp.rename(self.state / "inbox" / f"todo-{now.timestamp():.0f}.json")
        return self.heartbeat(now)

    def heartbeat(self, now: datetime) -> list[str]:
        before = len(self.delivered())
        run(self.spec, now)
        return self.delivered()[before:]

    def delivered(self) -> list[str]:
        path = self.state / "deliveries.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line)["body"] for line in lines]

    def nag_item(self, key: str) -> dict[str, Any]:
        items = json.loads((self.state / "state/nag-todo.json").read_text())["items"]
        return dict(items[key])


def _compiled(vigil, tmp_path: Path, replies: str, source: str) -> tuple[dict[str, Any], Path]:
    """(coordinator spec, spec of reply source `source`) of CONFIG with `replies`."""
    reply_spec, _state = compile_spec(vigil, tmp_path, source, replies, CONFIG)
    spec = json.loads((tmp_path / "out/specs/coordinator.json").read_text())
    return spec, reply_spec


@contextmanager
def _services(spec_path: Path, state: Path, credentials: Path) -> Iterator[Any]:
    started: list[Service] = []

    def start() -> Service:
        started.append(Service(spec_path, state, credentials))
        return started[-1]

    try:
        yield start
    finally:
        for service in started:
            if service.process.poll() is None:
                service.stop(signal.SIGKILL)


@pytest.fixture
def telegram(vigil, tmp_path: Path) -> Iterator[tuple[TelegramServer, Setup]]:
    with TelegramServer(TOKEN) as server:
        replies = f"phone:\n  telegram: {{token: bot, chats: [{PERSON}], api: '{server.url}'}}\n"
        spec, spec_path = _compiled(vigil, tmp_path, replies, "phone")
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "bot").write_text(TOKEN + "\n")
        with _services(spec_path, tmp_path / "state", credentials) as start:
            yield server, Setup(spec, tmp_path / "state", start)


def _arrived(setup: Setup, count: int = 1) -> None:
    """Until the reply source has written `count` reply findings into the inbox."""
    wait_until(
        lambda: len([f for f in inbox(setup.state).values() if f["kind"] == "reply"]) >= count
    )


def test_done_from_telegram_resolves_the_item_and_the_next_heartbeat_does_not_nag_it(
    telegram,
) -> None:
    server, setup = telegram
    assert setup.report(MONDAY_9AM, ("a", "Pay rent")) == ["• Pay rent is due [r1]"]
    setup.start()
    server.send(PERSON, "done r1")
    _arrived(setup)
    assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=2)) == ["• r1 done: Pay rent is due"]
    for day in range(1, 6):
        assert setup.report(MONDAY_9AM + timedelta(days=day), ("a", "Pay rent")) == []
        assert setup.heartbeat(MONDAY_9AM + timedelta(days=day, hours=1)) == []
    assert setup.nag_item("a")["status"] == "stopped"


def test_snooze_from_telegram_says_it_again_after_two_hours_and_not_before(telegram) -> None:
    server, setup = telegram
    setup.report(MONDAY_9AM, ("a", "Pay rent"))
    setup.start()
    server.send(PERSON, "snooze r1 2h")
    _arrived(setup)
    answer = setup.heartbeat(MONDAY_9AM + timedelta(minutes=1))
    assert answer == ["• r1 snoozed until Mon 2 Feb 11:01 EST: Pay rent is due"]
    for minutes in (15, 30, 60, 90, 120):
        assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=minutes)) == []
    again = setup.heartbeat(MONDAY_9AM + timedelta(minutes=121))
    assert again == ["• (snoozed) Pay rent is due [r1]"]
    assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=150)) == []


def test_a_stranger_on_telegram_changes_nothing(telegram) -> None:
    server, setup = telegram
    setup.report(MONDAY_9AM, ("a", "Pay rent"))
    before = setup.nag_item("a")
    setup.start()
    stranger = server.send(STRANGER, "done r1")
    server.wait_for_poll(stranger + 1)  # read, and passed over
    assert inbox(setup.state) == {}
    assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=5)) == []
    assert setup.nag_item("a") == before
    later = setup.report(MONDAY_9AM + timedelta(days=1), ("a", "Pay rent"))
    assert later == ["• Pay rent is due [r1]"]  # still nagged


def test_a_reply_read_again_after_a_stop_before_its_offset_is_applied_once(telegram) -> None:
    """The reply source writes the finding, and the coordinator applies it, but the offset
    cannot be stored (a directory stands where the state file goes): the service is killed and
    started again, reads the same update again and writes the same reply id once more."""
    server, setup = telegram
    setup.report(MONDAY_9AM, ("a", "Pay rent"), ("b", "Call mum"))
    blocker = setup.state / "state" / "reply-phone.json"
    (blocker / "in-the-way").mkdir(parents=True)
    service = setup.start()
    update = server.send(PERSON, "done r1")
    _arrived(setup)
    first = setup.heartbeat(MONDAY_9AM + timedelta(minutes=1))
    assert first == ["• r1 done: Pay rent is due"]
    wait_until(lambda: server.handed(update) >= 2)  # read again: no offset stored
    service.stop(signal.SIGKILL)
    (blocker / "in-the-way").rmdir()
    blocker.rmdir()
    setup.start()
    server.wait_for_poll(update + 1)
    _arrived(setup)  # the same reply, written again
    assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=3)) == []  # not applied twice
    assert inbox(setup.state) == {}
    after = setup.report(MONDAY_9AM + timedelta(days=1), ("a", "Pay rent"), ("b", "Call mum"))
    assert after == ["• Call mum is due [r2]"]


@pytest.mark.parametrize("endpoint", ["socket", "http"])
def test_done_from_signal_resolves_the_item(vigil, tmp_path: Path, endpoint: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sig") as short, SignalDaemon(short, 0.2) as daemon:
        where = f"url: '{daemon.url}'" if endpoint == "http" else f"socket: {daemon.socket_path}"
        replies = (
            f"sig:\n  signal: {{{where}, account: '{ACCOUNT}', numbers: ['{PERSON_NUMBER}']}}\n"
        )
        spec, spec_path = _compiled(vigil, tmp_path, replies, "sig")
        with _services(spec_path, tmp_path / "state", tmp_path) as start:
            setup = Setup(spec, tmp_path / "state", start)
            setup.report(MONDAY_9AM, ("a", "Pay rent"))
            start()
            daemon.wait_connected()
            daemon.deliver(envelope("+15559999999", "done r1"))  # not a listed number
            daemon.deliver(envelope(PERSON_NUMBER, "Done [r1]."))
            _arrived(setup)
            assert setup.heartbeat(MONDAY_9AM + timedelta(minutes=1)) == [
                "• r1 done: Pay rent is due"
            ]
            assert setup.report(MONDAY_9AM + timedelta(days=1), ("a", "Pay rent")) == []

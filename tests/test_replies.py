"""Reply sources as real processes (`python -m runner reply SPEC`) against loopback servers
that speak the Telegram Bot API and signal-cli's JSON-RPC: replies from listed senders become
reply findings in the inbox, strangers are counted and never acted on, offsets survive
restarts and a service killed between writing a finding and storing its offset writes the
same reply id again."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.signal_server import ACCOUNT, SignalDaemon, envelope
from tests.telegram_server import TelegramServer

TOKEN = "123456:TEST-token-never-in-a-log"
PERSON = 111
STRANGER = 999
CONFIG = """\
name: rp
state_dir: {state}
secrets: {{bot: {state}/bot-token}}
channels: {{sink: {{file: {state}/deliveries.jsonl}}}}
coordinator: {{deliver_to: [sink]}}
replies:
{replies}
"""


def compile_spec(
    vigil, tmp_path: Path, source: str, replies: str, template: str = CONFIG
) -> tuple[Path, Path]:
    """(spec of reply source `source`, state directory) of a config (`template`, with
    `{state}` and `{replies}`) with `replies`; compiled into tmp_path/out."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config = tmp_path / "vigil.yaml"
    config.write_text(template.format(state=state, replies=textwrap.indent(replies, "  ")))
    result = vigil("compile", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    return tmp_path / "out" / "specs" / f"reply-{source}.json", state


class Service:
    """One run of a reply source's service; its output is kept in a file."""

    def __init__(self, spec: Path, state: Path, credentials: Path) -> None:
        self.log = state.parent / "service.log"
        env = {**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runner", "reply", str(spec)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, how: int = signal.SIGTERM) -> int:
        self.process.send_signal(how)
        return self.process.wait(10)


@pytest.fixture
def telegram(vigil, tmp_path: Path) -> Iterator[tuple[TelegramServer, Callable[[], Service]]]:
    with TelegramServer(TOKEN) as server:
        replies = f"phone:\n  telegram: {{token: bot, chats: [{PERSON}], api: '{server.url}'}}\n"
        spec, state = compile_spec(vigil, tmp_path, "phone", replies)
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "bot").write_text(TOKEN + "\n")
        started: list[Service] = []

        def start() -> Service:
            started.append(Service(spec, state, credentials))
            return started[-1]

        yield server, start
        for service in started:
            if service.process.poll() is None:
                service.stop(signal.SIGKILL)


def inbox(state: Path) -> dict[str, dict[str, Any]]:
    directory = state / "inbox"
    names = sorted(os.listdir(directory)) if directory.is_dir() else []
    return {name: json.loads((directory / name).read_text()) for name in names}


def reply_state(state: Path, source: str = "phone") -> dict[str, Any]:
    path = state / "state" / f"reply-{source}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_until(check: Callable[[], object], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_a_reply_from_a_listed_chat_becomes_a_reply_finding(telegram, tmp_path: Path) -> None:
    server, start = telegram
    service = start()
    update = server.send(PERSON, "done r7")
    server.wait_for_poll(update + 1)
    [finding] = inbox(tmp_path / "state").values()
    assert finding == {
        "source": "vigil",
        "kind": "reply",
        "id": f"reply-phone-{update}",
        "via": "phone",
        "from": str(PERSON),
        "text": "done r7",
        "timestamp": finding["timestamp"],
    }
    stored = reply_state(tmp_path / "state")
    assert stored["offset"] == update + 1
    assert stored["received"] == 1 and stored["lastReply"] == finding["timestamp"]
    assert service.stop() == 0  # SIGTERM in a held poll: a clean stop
    assert TOKEN not in service.output()


def test_a_stranger_changes_nothing_and_is_counted(telegram, tmp_path: Path) -> None:
    server, start = telegram
    service = start()
    first = server.send(STRANGER, "done r7 (a stranger's words)")
    second = server.send(STRANGER, "stop r1")
    server.wait_for_poll(second + 1)
    assert first < second
    assert inbox(tmp_path / "state") == {}
    stored = reply_state(tmp_path / "state")
    assert stored["ignored"] == {str(STRANGER): 2} and stored["received"] == 0
    sticker = server.send(PERSON, sticker=True)  # the person, but no text: passed over
    server.wait_for_poll(sticker + 1)
    assert inbox(tmp_path / "state") == {}
    service.stop()
    log = service.output()
    assert f"ignored a message from {STRANGER}" in log
    assert "stranger's words" not in log and "stop r1" not in log


def test_offsets_survive_a_restart(telegram, tmp_path: Path) -> None:
    server, start = telegram
    state = tmp_path / "state"
    service = start()
    updates = [server.send(PERSON, f"done r{n}") for n in range(3)]
    server.wait_for_poll(updates[-1] + 1)
    assert len(inbox(state)) == 3
    assert service.stop() == 0
    for name in inbox(state):  # taken by the coordinator
        os.unlink(state / "inbox" / name)
    polls = len(server.polls)
    service = start()
    wait_until(lambda: len(server.polls) > polls)
    assert server.polls[polls].offset == updates[-1] + 1
    later = server.send(PERSON, "snooze r1 2h")
    server.wait_for_poll(later + 1)
    assert [f["id"] for f in inbox(state).values()] == [f"reply-phone-{later}"]
    assert all(server.handed(update) == 1 for update in updates)
    assert reply_state(state)["received"] == 4


def test_killed_between_finding_and_offset_writes_the_same_reply_again(
    telegram, tmp_path: Path
) -> None:
    """The state file cannot be replaced (a directory stands in its way): the service has
    written the finding and is stuck before storing the offset, as one killed right there."""
    server, start = telegram
    state = tmp_path / "state"
    blocker = state / "state" / "reply-phone.json"
    (blocker / "in-the-way").mkdir(parents=True)
    service = start()
    update = server.send(PERSON, "done r7")
    wait_until(lambda: server.handed(update) >= 2)  # read again: the offset was not stored
    [(name, finding)] = inbox(state).items()
    assert finding["id"] == f"reply-phone-{update}"
    service.stop(signal.SIGKILL)
    (blocker / "in-the-way").rmdir()
    blocker.rmdir()
    service = start()
    server.wait_for_poll(update + 1)
    assert inbox(state) == {name: finding}  # the same file, the same reply id
    assert reply_state(state)["offset"] == update + 1
    assert "cannot record a reply" in service.output()


def test_killed_at_random_moments_no_reply_is_lost_and_each_keeps_its_id(
    telegram, tmp_path: Path
) -> None:
    server, start = telegram
    state = tmp_path / "state"
    rounds = 12
    updates = []
    rng = random.Random(19)
    service = start()
    for n in range(rounds):
        updates.append(server.send(PERSON, f"done r{n}"))
        wait_until(lambda: server.handed(updates[-1]) >= 1)
        time.sleep(rng.choice([0, 0, 0.001, 0.003, 0.01, 0.05]))
        service.stop(signal.SIGKILL)
        service = start()
    server.wait_for_poll(updates[-1] + 1)
    ids = [finding["id"] for finding in inbox(state).values()]
    assert sorted(ids) == sorted(f"reply-phone-{u}" for u in updates)  # each once, none lost
    assert reply_state(state)["offset"] == updates[-1] + 1


def test_a_refused_token_exits_with_a_clear_line(telegram) -> None:
    server, start = telegram
    server.status = (401, "Unauthorized")
    service = start()
    assert service.process.wait(20) == 1
    log = service.output()
    assert "refused the bot token (401: Unauthorized)" in log
    assert TOKEN not in log
    state = service.log.parent / "state"
    [alert] = inbox(state).values()  # said once in the inbox, not at every restart
    assert alert["kind"] == "reply-stopped" and "refused the bot token" in alert["message"]
    assert TOKEN not in json.dumps(alert)
    assert start().process.wait(20) == 1  # systemd's next start: the same reason, not again
    assert len(inbox(state)) == 1
    server.status = None
    update = server.send(PERSON, "done r7")
    start()
    wait_until(lambda: len(inbox(state)) == 2)  # it works again: its state says so
    server.wait_for_poll(update + 1)
    assert reply_state(state)["stopped"] is None


@pytest.mark.parametrize("written", [f"{TOKEN}\nsecond line", f"{TOKEN[:7]} {TOKEN[7:]}", "x"])
def test_a_credential_that_is_no_token_stops_without_showing_it(
    telegram, tmp_path: Path, written: str
) -> None:
    """A token with a space or a second line would go into the URL: urllib's error quotes
    the URL, and the service would print it with every retry."""
    _server, start = telegram
    (tmp_path / "credentials" / "bot").write_text(written)
    service = start()
    assert service.process.wait(20) == 1
    log = service.output()
    assert "is not a bot token" in log
    assert TOKEN[7:] not in log and "second line" not in log


def test_a_transient_error_backs_off_and_goes_on(telegram, tmp_path: Path) -> None:
    server, start = telegram
    server.status = (502, "Bad Gateway")
    service = start()
    wait_until(lambda: "again in 2s" in service.output(), timeout=10)
    assert service.process.poll() is None
    server.status = None
    update = server.send(PERSON, "done r7")
    server.wait_for_poll(update + 1, timeout=30)
    assert len(inbox(tmp_path / "state")) == 1


# --- signal-cli ---------------------------------------------------------------------------------

PERSON_NUMBER = "+15550002222"
STRANGER_NUMBER = "+15550009999"


@contextmanager
def signal_service(
    vigil, tmp_path: Path, endpoint: str
) -> Iterator[tuple[SignalDaemon, Callable[[], Service]]]:
    # A short directory: a unix socket's path has at most 107 bytes.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sig") as short, SignalDaemon(short, 0.2) as daemon:
        where = f"url: '{daemon.url}'" if endpoint == "http" else f"socket: {daemon.socket_path}"
        replies = (
            f"sig:\n  signal: {{{where}, account: '{ACCOUNT}', numbers: ['{PERSON_NUMBER}']}}\n"
        )
        spec, state = compile_spec(vigil, tmp_path, "sig", replies)
        started: list[Service] = []

        def start() -> Service:
            started.append(Service(spec, state, tmp_path))
            return started[-1]

        try:
            yield daemon, start
        finally:
            for service in started:
                if service.process.poll() is None:
                    service.stop(signal.SIGKILL)


@pytest.mark.parametrize("endpoint", ["socket", "http"])
def test_signal_replies_from_listed_numbers(vigil, tmp_path: Path, endpoint: str) -> None:
    state = tmp_path / "state"
    with signal_service(vigil, tmp_path, endpoint) as (daemon, start):
        service = start()
        daemon.wait_connected()
        stamp = int(time.time() * 1000)
        daemon.deliver(envelope(STRANGER_NUMBER, "done r7", stamp - 5))
        daemon.deliver(envelope(PERSON_NUMBER, "done r7", stamp))
        daemon.deliver(envelope(PERSON_NUMBER, None, stamp + 1))  # a reaction: no text
        [finding] = wait_until(lambda: list(inbox(state).values()))
        person = PERSON_NUMBER.lstrip("+")
        assert finding["id"] == f"reply-sig-{stamp}-{person}"
        assert (finding["from"], finding["text"], finding["via"]) == (
            PERSON_NUMBER,
            "done r7",
            "sig",
        )
        wait_until(lambda: reply_state(state, "sig").get("offset") == stamp + 1)
        assert reply_state(state, "sig")["ignored"] == {STRANGER_NUMBER: 1}
        service.stop()
        wait_until(lambda: daemon.connected() == 0)
        for name in inbox(state):
            os.unlink(state / "inbox" / name)
        start()
        daemon.wait_connected()
        daemon.deliver(envelope(PERSON_NUMBER, "done r7", stamp))  # again: the same reply id
        daemon.deliver(envelope(PERSON_NUMBER, "snooze r8 2h", stamp + 10))
        daemon.deliver(envelope(PERSON_NUMBER, "stop r9", stamp - 5_000))  # a lagging device
        daemon.deliver(envelope(PERSON_NUMBER, "done r1", stamp - 90_000_000))  # a day old
        found = wait_until(lambda: len(inbox(state)) >= 3 and list(inbox(state).values()))
        time.sleep(0.3)  # the day-old one would be here by now
        assert sorted(f["id"] for f in inbox(state).values()) == sorted(
            f"reply-sig-{n}-{person}" for n in (stamp, stamp + 10, stamp - 5_000)
        ), found
        assert reply_state(state, "sig")["offset"] == stamp + 10


def test_signal_daemon_going_away_is_reconnected(vigil, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with signal_service(vigil, tmp_path, "socket") as (daemon, start):
        service = start()
        daemon.wait_connected()
        with daemon.lock:
            for connection, _ in daemon.clients:
                connection.shutdown(2)
        wait_until(lambda: "signal-cli closed the connection" in service.output())
        wait_until(lambda: daemon.connected() == 0)
        daemon.wait_connected()
        stamp = int(time.time() * 1000)
        daemon.deliver(envelope(PERSON_NUMBER, "done r7", stamp))
        wait_until(lambda: inbox(state))
        assert service.process.poll() is None


# --- a program's JSON lines --------------------------------------------------------------------

PROGRAM = """\
import json, os, sys, time
runs = os.path.join(sys.argv[1], "runs")
with open(runs, "a") as handle:
    handle.write("run\\n")
count = sum(1 for _ in open(runs))
print(json.dumps({"text": "done r7", "from": "agent", "id": "m-1"}), flush=True)
print("not json", flush=True)
print(json.dumps({"text": f"snooze r{count} 2h", "from": "agent"}), flush=True)
print(json.dumps({"text": "status", "from": "agent"}), flush=True)  # the same line each run
sys.exit(3)
"""


def test_command_replies_and_restarts(vigil, tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    replies = f"agent:\n  command: ['{sys.executable}', '{program}', '{tmp_path}']\n"
    spec, state = compile_spec(vigil, tmp_path, "agent", replies)
    service = Service(spec, state, tmp_path)
    try:

        def asked_twice() -> bool:
            return sum(f["text"] == "status" for f in inbox(state).values()) >= 2

        wait_until(asked_twice)
        findings = list(inbox(state).values())
        asked = [f["id"] for f in findings if f["text"] == "status"]
        assert len(asked) >= 2 and len(set(asked)) == len(asked)  # each run's: a new reply
        ids = {f["id"] for f in findings}
        assert "reply-agent-m-1" in ids  # its own id: the same reply each run
        texts = sorted(f["text"] for f in findings if f["text"].startswith("snooze"))
        assert texts[:2] == ["snooze r1 2h", "snooze r2 2h"]
        assert all(f["from"] == "agent" and f["kind"] == "reply" for f in findings)
        assert reply_state(state, "agent")["offset"] is None
        assert "exited with status 3; again in 1s" in service.output()
        assert "line 2 of" in service.output()
    finally:
        assert service.stop() == 0

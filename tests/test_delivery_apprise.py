"""Apprise channels against real loopback servers: `json://` to an HTTP server and `mailto://`
to an SMTP server. The URL, which carries tokens, never reaches output or state files."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message as Email
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from runner.delivery.apprise_channel import redact, scheme_only, within
from runner.delivery.outbox import deliver_due, enqueue, outbox_status
from tests.runner_support import WebhookReceiver
from tests.test_delivery import T0, coordinator_spec, message, queued

MARKER = "MARKER-TOKEN-4f9c2a71"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().serving() as server:
        yield server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Email] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def check_login(
    _server: object, _session: object, _envelope: object, _mechanism: str, data: Any
) -> Any:
    ok = (data.login, data.password) == (b"vigil", MARKER.encode())
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 235 or 535


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,  # plain SMTP on loopback: apprise's mode=insecure
        authenticator=check_login,
    )
    controller.start()
    yield mailbox, port
    controller.stop()


def everything_written(state: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())


def test_json_url_posts_title_and_body(tmp_path: Path, receiver: WebhookReceiver) -> None:
    spec = coordinator_spec({"push": {"apprise": f"json://127.0.0.1:{receiver.port}/hook"}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    assert deliver_due(spec, state, T0, None).delivered == 1
    [body] = receiver.received
    assert (body["title"], body["message"], body["type"]) == (
        "Bruba: 2 new",
        "• first\n• second",
        "info",
    )
    assert receiver.paths == ["/hook"]


def test_urgent_messages_are_warnings(tmp_path: Path, receiver: WebhookReceiver) -> None:
    spec = coordinator_spec({"push": {"apprise": f"json://127.0.0.1:{receiver.port}/"}})
    enqueue(tmp_path / "state", message(channel="push", urgent=True))
    deliver_due(spec, tmp_path / "state", T0, None)
    assert receiver.received[0]["type"] == "warning"


def test_http_500_three_times_then_200_delivers_exactly_once(
    tmp_path: Path, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.statuses = [500, 500, 500]
    url = f"json://127.0.0.1:{receiver.port}/{MARKER}"
    spec = coordinator_spec({"push": {"apprise": url}}, attempts=5, backoff=10)
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    now, errors = T0, []
    for _ in range(6):
        report = deliver_due(spec, state, now, None)
        errors += [row["last_error"] for row in outbox_status(state)]
        now = report.next_retry or now + timedelta(minutes=5)
    assert len(receiver.received) == 4  # three refused, one accepted, none after
    assert queued(state) == []
    # apprise returned False and logged why; that log is the error text.
    assert errors[0] == (
        "json://[redacted] failed: Failed to send JSON POST notification: "
        "Internal server error., error=500."
    )
    assert MARKER not in "".join(capsys.readouterr()) + everything_written(state)


def test_mailto_reaches_a_plain_smtp_server(
    tmp_path: Path, smtp: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    mailbox, port = smtp
    url = (
        f"mailto://vigil:{MARKER}@127.0.0.1:{port}"
        "?from=vigil@example.com&to=me@example.com&mode=insecure"
    )
    spec = coordinator_spec({"mail": {"apprise": url}})
    state = tmp_path / "state"
    enqueue(state, message(channel="mail"))
    assert deliver_due(spec, state, T0, None).delivered == 1
    [mail] = mailbox.mails
    assert mail["Subject"] == "Bruba: 2 new"
    assert mailbox.envelopes == [("vigil@example.com", ["me@example.com"])]
    plain = next(part for part in mail.walk() if part.get_content_type() == "text/plain")
    assert "• first" in plain.get_payload(decode=True).decode()
    assert MARKER not in "".join(capsys.readouterr()) + everything_written(state)


def test_a_rejected_smtp_login_is_a_failed_attempt_without_the_password(
    tmp_path: Path, smtp: tuple[Mailbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    _, port = smtp
    url = f"mailto://vigil:wrong-{MARKER}@127.0.0.1:{port}?from=a@example.com&to=b@example.com&mode=insecure"
    spec = coordinator_spec({"mail": {"apprise": url}})
    state = tmp_path / "state"
    enqueue(state, message(channel="mail"))
    assert deliver_due(spec, state, T0, None).retrying == 1
    [row] = outbox_status(state)
    assert row["last_error"] == (
        'mailto://[redacted] failed: Connection error while submitting email to "[redacted]"; '
        "Socket Exception: (535, b'5.7.8 Authentication credentials invalid')"
    )
    assert MARKER not in "".join(capsys.readouterr()) + everything_written(state)


def secret_dir(tmp_path: Path, url: str) -> Path:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "push_url").write_text(url + "\n")
    return credentials


def test_apprise_secret_is_read_from_the_credentials_directory(
    tmp_path: Path, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = secret_dir(tmp_path, f"json://user:{MARKER}@127.0.0.1:{receiver.port}/{MARKER}")
    spec = coordinator_spec({"push": {"apprise_secret": "push_url"}}, backoff=5)
    state = tmp_path / "state"
    receiver.statuses = [503]
    enqueue(state, message(channel="push"))
    assert deliver_due(spec, state, T0, credentials).retrying == 1
    assert deliver_due(spec, state, T0 + timedelta(seconds=5), credentials).delivered == 1
    assert receiver.paths == [f"/{MARKER}", f"/{MARKER}"]
    assert MARKER not in "".join(capsys.readouterr()) + everything_written(state)


def test_apprise_secret_falls_back_to_the_credentials_environment(
    tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = secret_dir(tmp_path, f"json://127.0.0.1:{receiver.port}/")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    spec = coordinator_spec({"push": {"apprise_secret": "push_url"}})
    enqueue(tmp_path / "state", message(channel="push"))
    assert deliver_due(spec, tmp_path / "state", T0, None).delivered == 1


def test_a_missing_secret_is_a_failed_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    spec = coordinator_spec({"push": {"apprise_secret": "push_url"}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    deliver_due(spec, state, T0, None)
    deliver_due(spec, state, T0 + timedelta(hours=1), tmp_path / "empty")
    [row] = outbox_status(state)
    assert row["attempts"] == 2
    assert row["last_error"] == "apprise_secret 'push_url': cannot read: No such file or directory"


@pytest.mark.parametrize(
    "url", [f"nosuchscheme://{MARKER}@host/x", f"json://{MARKER}:notaport/", MARKER]
)
def test_an_invalid_url_is_a_failed_attempt_without_the_url(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = coordinator_spec({"push": {"apprise_secret": "push_url"}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    deliver_due(spec, state, T0, secret_dir(tmp_path, url))
    [row] = outbox_status(state)
    assert row["last_error"].startswith("invalid apprise URL")
    assert MARKER not in "".join(capsys.readouterr()) + everything_written(state)


def test_a_refused_connection_is_a_failed_attempt(tmp_path: Path) -> None:
    spec = coordinator_spec({"push": {"apprise": f"json://127.0.0.1:{free_port()}/"}})
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    assert deliver_due(spec, state, T0, None).retrying == 1
    [row] = outbox_status(state)
    assert row["last_error"].startswith("json://[redacted] failed: A Connection error occurred")


def test_a_slow_server_is_cut_off_by_the_channel_timeout(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    receiver.delay = 3.0
    spec = coordinator_spec(
        {"push": {"apprise": f"json://127.0.0.1:{receiver.port}/", "timeout": 0.5}}
    )
    state = tmp_path / "state"
    enqueue(state, message(channel="push"))
    started = time.monotonic()
    assert deliver_due(spec, state, T0, None).retrying == 1
    assert time.monotonic() - started < 2.5
    [row] = outbox_status(state)
    assert row["last_error"].startswith("json://[redacted] failed")
    assert "Read timed out. (read timeout=0.5)" in row["last_error"]


def test_a_notify_that_hangs_past_every_timeout_is_abandoned() -> None:
    started = time.monotonic()
    finished, result, problem = within(0.2, lambda: time.sleep(5) or True)
    assert (finished, result, problem) == (False, False, None)
    assert time.monotonic() - started < 1


def test_redaction_keeps_the_scheme_and_drops_every_part_of_the_url() -> None:
    url = f"tgram://123456789:{MARKER}/-100200300?format=text"
    text = f"POST https://api.example/bot123456789:{MARKER}/send for chat -100200300 ({url})"
    assert redact(text, url) == ("POST https://[redacted] for chat [redacted] (tgram://[redacted])")
    assert scheme_only(url) == "tgram://[redacted]"

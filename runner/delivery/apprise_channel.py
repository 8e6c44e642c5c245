"""Apprise channels: `apprise: URL` inline, or `apprise_secret: NAME` read from
`$CREDENTIALS_DIRECTORY/NAME` (systemd's LoadCredential=).

`apprise` costs ~0.2 s to import, so it is imported inside `notify`, by a run that has an apprise
message to send. The URL carries tokens and passwords: it never reaches stdout, stderr, the
outbox or the ledger. apprise reports a failure by returning False (or a falsy result) and
logging why; that log is the error text, with every URL cut to its scheme and every part of
this URL (user, password, host, token path) replaced.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from runner.delivery.message import DeliveryOutcome
from runner.redact import REDACTED, cut_urls

if TYPE_CHECKING:
    from runner.delivery.message import Message
    from runner.spectypes import ChannelJSON

LOGGER = "apprise"
GRACE = 5.0
"""Seconds past the channel timeout before a hung notify is given up on."""
MIN_SECRET_PIECE = 4
"""Parts of the URL at least this long are replaced in error text; shorter ones are too
common as words to replace, and too short to be a token."""
_URL_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")


class SecretError(Exception):
    """The credential holding the URL is missing, unreadable or empty."""


def send_apprise(
    channel: ChannelJSON,
    message: Message,
    credentials_dir: str | os.PathLike[str] | None,
    timeout: float,
) -> DeliveryOutcome:
    try:
        url = channel_url(channel, credentials_dir)
    except SecretError as error:
        return DeliveryOutcome(False, str(error))
    try:
        return notify(url, message, timeout)
    except Exception as error:  # apprise or a plugin raised: still only a failed attempt
        return DeliveryOutcome(
            False, redact(f"apprise raised {type(error).__name__}: {error}", url)
        )


def channel_url(channel: ChannelJSON, credentials_dir: str | os.PathLike[str] | None) -> str:
    inline = channel.get("apprise")
    if inline:
        return str(inline)
    secret = str(channel.get("apprise_secret"))
    directory = credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise SecretError(
            f"apprise_secret {secret!r}: $CREDENTIALS_DIRECTORY is not set (the unit passes the "
            f"URL with LoadCredential={secret}:FILE)"
        )
    try:
        url = Path(directory, secret).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretError(f"apprise_secret {secret!r}: cannot read: {error.strerror}") from None
    if not url:
        raise SecretError(f"apprise_secret {secret!r} is empty")
    return url


def notify(url: str, message: Message, timeout: float) -> DeliveryOutcome:
    from runner.packages import MissingPackage, load

    try:
        apprise = load("apprise", "an apprise channel")
    except MissingPackage as error:
        return DeliveryOutcome(False, str(error))

    with captured_log() as log:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return DeliveryOutcome(
                False, _with_log(f"invalid apprise URL {scheme_only(url)}", log, url)
            )
        limit_socket_timeouts(notifier, timeout)
        finished, sent, problem = within(
            timeout + GRACE,
            lambda: bool(
                notifier.notify(
                    title=message.title,
                    body=message.body or message.title,
                    notify_type="warning" if message.urgent else "info",
                )
            ),
        )
    if not finished:
        return DeliveryOutcome(False, f"{scheme_only(url)} timed out after {timeout:g}s")
    if problem is not None:
        raise problem
    if sent:
        return DeliveryOutcome(True)
    return DeliveryOutcome(False, _with_log(f"{scheme_only(url)} failed", log, url))


def limit_socket_timeouts(notifier: Any, timeout: float) -> None:
    """Plugins carry their own connect/read timeouts (4 s, 15 s for SMTP): never above ours."""
    for plugin in notifier:
        for name in ("socket_connect_timeout", "socket_read_timeout"):
            value = getattr(plugin, name, None)
            if isinstance(value, int | float) and value > timeout:
                setattr(plugin, name, timeout)


def within(seconds: float, call: Callable[[], bool]) -> tuple[bool, bool, Exception | None]:
    """Run `call` in a daemon thread: (finished, result, exception). A call that hangs past its
    plugin timeouts is abandoned (it dies with the process) and counts as failed: if it still
    gets through, the retry is a duplicate, never a loss."""
    outcome: list[bool] = []
    problems: list[Exception] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            problems.append(error)

    worker = threading.Thread(target=run, name="apprise-notify", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return False, False, None
    return True, bool(outcome and outcome[0]), problems[0] if problems else None


@contextmanager
def captured_log() -> Iterator[io.StringIO]:
    """apprise's warnings and errors for one send, kept here instead of reaching stderr."""
    logger = logging.getLogger(LOGGER)
    _keep_quiet(logger)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(_worth_keeping)
    handler.setFormatter(logging.Formatter("%(message)s"))
    restore = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(restore)


def _worth_keeping(record: logging.LogRecord) -> bool:
    """Warnings and errors, and the debug line that names the socket error (an SMTP 535,
    a read timeout): plugins log the why of a failure there."""
    if record.levelno >= logging.WARNING:
        return True
    return record.levelno == logging.DEBUG and record.getMessage().startswith("Socket Exception")


def _keep_quiet(logger: logging.Logger) -> None:
    """Unredacted apprise log lines never reach stderr, not even from an abandoned send."""
    logger.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _with_log(summary: str, log: io.StringIO, url: str) -> str:
    lines = [line.strip() for line in redact(log.getvalue(), url).splitlines() if line.strip()]
    return f"{summary}: {'; '.join(lines[-5:])}" if lines else summary


def scheme_only(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    return f"{scheme}://{REDACTED}" if separator else REDACTED


def redact(text: str, url: str) -> str:
    """`text` without the URL, without any part of it, and with every URL cut to its scheme."""
    text = text.replace(url, scheme_only(url))
    rest = url.partition("://")[2] or url
    pieces = {rest, unquote(rest)}
    for piece in _URL_SEPARATORS.split(rest) + _URL_SEPARATORS.split(unquote(rest)):
        pieces.add(piece)
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= MIN_SECRET_PIECE:
            text = text.replace(piece, REDACTED)
    return cut_urls(text)

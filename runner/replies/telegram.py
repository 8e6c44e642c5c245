"""A Telegram bot's messages: the Bot API's getUpdates, long polling.

`offset` is the last handled update_id + 1: Telegram forgets the updates below it, and a
service that died before storing it is handed the same updates again. Only `message` updates
are asked for; the bot must have no webhook (Telegram answers 409 then). The token is in the
URL path: no error this module prints quotes a URL.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

from runner.clock import now
from runner.replies.ledger import Incoming
from runner.replies.sources import Fatal, Transient, credential

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from runner.spectypes import TelegramReplyJSON

POLL_SECONDS = 50
"""How long one getUpdates waits for a message (Telegram allows up to 50)."""
READ_MARGIN = 15
"""Seconds beyond the poll the HTTP request may take before it counts as lost."""
TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{8,100}")
"""A bot token as @BotFather gives it: the bot's id, a colon, its secret."""
REFUSED = (401, 403, 404)
"""The Bot API's answers to a token it does not know (404 for one of the wrong shape)."""


class BotPoller:
    def __init__(self, settings: TelegramReplyJSON) -> None:
        self.api = settings["api"]
        self.chats = frozenset(settings["chats"])
        self.credential = settings["credential"]
        self.token: str | None = None

    def receive(self, offset: int | None) -> Iterator[Incoming]:
        """One long poll: the updates since `offset`, in order."""
        if self.token is None:
            token = credential(self.credential)
            if not TOKEN.fullmatch(token):  # it goes into a URL: never one urllib would quote
                raise Fatal(f"credential {self.credential!r} is not a bot token (digits:letters)")
            self.token = token
        for update in self._get_updates(offset):
            number = update.get("update_id")
            if not isinstance(number, int) or isinstance(number, bool):
                continue
            if offset is not None and number < offset:
                continue  # never: Telegram forgot those; a server that did not is not trusted
            yield _incoming(update, number, self.chats)

    def _get_updates(self, offset: int | None) -> list[dict[str, object]]:
        query = {"timeout": POLL_SECONDS, "allowed_updates": json.dumps(["message"])}
        if offset is not None:
            query["offset"] = offset
        url = f"{self.api}/bot{self.token}/getUpdates?{urllib.parse.urlencode(query)}"
        try:
            with urllib.request.urlopen(url, timeout=POLL_SECONDS + READ_MARGIN) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (OSError, http.client.HTTPException) as error:
            raise Transient(f"getUpdates failed: {_reason(error)}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise Transient("getUpdates answered with something that is not JSON") from None
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise Transient(f"getUpdates was refused: {_description(answer)}")
        if not isinstance(result, list):
            raise Transient("getUpdates answered without a list of updates")
        return [update for update in result if isinstance(update, dict)]


def _incoming(update: dict[str, object], number: int, chats: frozenset[str]) -> Incoming:
    message = update.get("message")
    message = message if isinstance(message, dict) else {}
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    sender = str(chat_id) if isinstance(chat_id, int | str) else ""
    text = message.get("text")
    date = message.get("date")
    moment = (
        datetime.fromtimestamp(date, UTC)
        if isinstance(date, int) and not isinstance(date, bool)
        else now()
    )
    return Incoming(
        number=str(number),
        sender=sender,
        text=text if isinstance(text, str) else None,
        accepted=sender in chats or not message,  # an update that is no message: just passed
        moment=moment,
        offset=number + 1,
    )


def _refusal(error: urllib.error.HTTPError) -> Exception:
    try:
        answer = json.loads(error.read())
    except (OSError, ValueError, http.client.HTTPException):
        answer = None
    said = _description(answer)
    if error.code in REFUSED:
        return Fatal(f"the Bot API refused the bot token ({error.code}: {said}): check the secret")
    if error.code == 409:
        return Transient(f"another reader of this bot (a webhook or a second poller): {said}")
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    retry = parameters.get("retry_after") if isinstance(parameters, dict) else None
    wait = float(retry) if isinstance(retry, int | float) and retry > 0 else None
    return Transient(f"getUpdates answered {error.code}: {said}", retry_after=wait)


def _description(answer: object) -> str:
    description = answer.get("description") if isinstance(answer, dict) else None
    return description[:200] if isinstance(description, str) else "no description"


def _reason(error: BaseException) -> str:
    """Why a request failed, without its URL (which holds the token): an errno's words or the
    error's kind, never an exception's own text (http.client quotes the path)."""
    reason = getattr(error, "reason", None) or error
    words = getattr(reason, "strerror", None)
    return str(words) if words else type(reason).__name__

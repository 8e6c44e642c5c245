"""Reply sources: where what the person answers comes from (Telegram, Signal, a program)."""

from __future__ import annotations

import re
from typing import Annotated, cast

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from compiler.language.model.types import (
    Line,
    Name,
    PathStr,
    StrictModel,
    unique,
    url_parts,
)
from runner.contract import REPLY_KINDS, TELEGRAM_API
from runner.spectypes import ReplyKind

_CHAT_ID = re.compile(r"^-?[1-9][0-9]{0,19}$")


def _check_chat(value: int | str) -> int | str:
    # getUpdates reports every chat by its numeric id (a group's is negative): a name such as
    # @channel would never match, so only numbers are accepted.
    if isinstance(value, bool) or not _CHAT_ID.fullmatch(str(value)):
        raise ValueError(f"invalid chat id {value!r}: use the chat's numeric id, e.g. 123456789")
    return value


ChatId = Annotated[
    int | str,
    AfterValidator(_check_chat),
    WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": _CHAT_ID.pattern}]}
    ),
]

_NUMBER = r"^\+[1-9][0-9]{5,14}$"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _check_sender(value: str) -> str:
    if not (re.fullmatch(_NUMBER, value) or re.fullmatch(_UUID, value)):
        raise ValueError(
            f"invalid Signal sender {value!r}: use a phone number in international format "
            "(+15550002222) or the sender's UUID"
        )
    return value


SignalSender = Annotated[
    str,
    AfterValidator(_check_sender),
    WithJsonSchema({"type": "string", "pattern": f"{_NUMBER}|{_UUID}"}),
]


def _check_http_url(value: str) -> str:
    parts = url_parts(value, ("http", "https"))
    if parts is None:
        raise ValueError(f"invalid URL {value!r}: use http://HOST:PORT/... or https://...")
    if parts.username or parts.password:
        raise ValueError("a URL here must not hold credentials")
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "pattern": r"^https?://\S+$"}),
]


def _unique_chats(chats: list[ChatId]) -> list[ChatId]:
    unique([str(chat) for chat in chats])  # 123 and "123" are one chat
    return chats


def _a_program(argv: list[str]) -> list[str]:
    if not argv[0].strip():
        raise ValueError("the program (first argument) is empty")
    return argv


class TelegramReplies(StrictModel):
    """A Telegram bot: its updates are read with the Bot API's getUpdates long polling (the
    bot must have no webhook)."""

    token: Name
    """A secret (in `secrets:`) holding the bot token BotFather gave."""
    chats: Annotated[list[ChatId], Field(min_length=1), AfterValidator(_unique_chats)]
    """The chat ids whose messages are accepted; any other chat's are ignored and counted."""
    api: HttpUrl = TELEGRAM_API
    """The Bot API's base URL (a local Bot API server, a test's loopback server)."""


class SignalReplies(StrictModel):
    """A signal-cli daemon's JSON-RPC interface: exactly one of `url` and `socket`."""

    url: HttpUrl | None = None
    """`signal-cli daemon --http`: its base URL or its /api/v1/rpc endpoint
    (http://127.0.0.1:8080/api/v1/rpc); messages are read from its /api/v1/events stream."""
    socket: PathStr | None = None
    """`signal-cli daemon --socket`: the daemon's unix socket (JSON-RPC, one object a line)."""
    account: SignalSender | None = None
    """The account to read (a daemon serving several accounts); default: all of them."""
    numbers: Annotated[list[SignalSender], Field(min_length=1)]
    """The senders (numbers, or UUIDs) whose messages are accepted; others are ignored and
    counted."""

    @model_validator(mode="after")
    def _one_endpoint(self) -> SignalReplies:
        if (self.url is None) == (self.socket is None):
            raise ValueError("a signal reply source needs exactly one of `url` and `socket`")
        return self


class ReplySource(StrictModel):
    """Exactly one of telegram, signal, command."""

    telegram: TelegramReplies | None = None
    """Messages to a Telegram bot."""
    signal: SignalReplies | None = None
    """Messages to a Signal account, through signal-cli's daemon."""
    command: Annotated[list[Line], Field(min_length=1), AfterValidator(_a_program)] | None = None
    """A program (and arguments, run without a shell) that prints what the person said as JSON
    lines, `{"text": "...", "from": "...", "id": "..."}` (`id` optional): restarted when it
    exits. It must not print a reply twice (nothing is remembered of its lines); a line
    without `id` is known by its sender, text and place since the program started."""
    answer_to: Annotated[list[Name], Field(min_length=1)] | None = None
    """Channels the answers to these replies go to; default coordinator.deliver_to."""

    @model_validator(mode="after")
    def _one_kind(self) -> ReplySource:
        kinds = [kind for kind in REPLY_KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            found = f" (found {', '.join(kinds)})" if kinds else ""
            raise ValueError(
                f"a reply source needs exactly one of `telegram`, `signal`, `command`{found}"
            )
        return self

    @property
    def kind(self) -> ReplyKind:
        return cast("ReplyKind", next(k for k in REPLY_KINDS if getattr(self, k) is not None))

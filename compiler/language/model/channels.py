"""Channels: where messages go."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from compiler.language.model.types import (
    TEMPLATE_SCHEMA,
    FilePathStr,
    Name,
    PositiveDuration,
    StrictModel,
    plain_placeholders,
    template_fields_from,
)
from runner.contract import CHANNEL_TIMEOUT, COMMAND_FIELDS

CommandArg = Annotated[
    str,
    template_fields_from(COMMAND_FIELDS),
    AfterValidator(plain_placeholders),  # the runner fills argv with plain names only
    TEMPLATE_SCHEMA,
]


class Channel(StrictModel):
    """Exactly one of apprise, apprise_secret, command, file."""

    apprise: str | None = None
    """An apprise URL: signal://, tgram://, mailto://, ntfy://, json://, slack://..."""
    apprise_secret: Name | None = None
    """Name of a secret whose content is the apprise URL (keeps tokens out of the config)."""
    command: Annotated[list[CommandArg], Field(min_length=1)] | None = None
    """Program and arguments, run without a shell; placeholders such as {message} and {title}
    are filled per message. How a finding is handed to an agent."""
    file: FilePathStr | None = None
    """Append each message as one JSON line to this file."""
    timeout: PositiveDuration = CHANNEL_TIMEOUT
    """How long one delivery attempt may take."""
    max_chars: Annotated[int, Field(ge=200)] | None = None
    """The most characters one message may have on this channel; a longer one is cut at a line
    with a last line saying how much was cut and where the whole text is kept. Default per
    kind: none for `file`, 100,000 for `command` (argv limits may cut more), the service's
    own limit for `apprise` (Telegram 4,096, Discord 2,000, ...; 4,000 when unknown)."""

    @field_validator("apprise")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S*", value):
            raise ValueError(f"{value!r} is not an apprise URL (scheme://...)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Channel:
        kinds = [k for k in ("apprise", "apprise_secret", "command", "file") if getattr(self, k)]
        if len(kinds) != 1:
            found = f" (found {', '.join(kinds)})" if kinds else ""
            raise ValueError(
                "a channel needs exactly one of `apprise`, `apprise_secret`, `command`, "
                f"`file`{found}"
            )
        return self

    @property
    def kind(self) -> str:
        if self.apprise or self.apprise_secret:
            return "apprise"
        return "command" if self.command else "file"

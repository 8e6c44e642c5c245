"""Fitting a message to what its channel can carry, so no message is dead-lettered for its size
or its bytes.

A command channel passes the message in argv: no NUL byte (the kernel ends a string there) and
at most MAX_ARG_STRLEN bytes per argument, ARG_MAX for all of them with the environment. A chat
service has a length limit (Telegram's 4,096 characters). Bytes an argument cannot carry are
replaced with a visible stand-in; a body too long is cut at a line with a last line that says
how much was cut and where the whole message is kept.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Measure = Callable[[str], int]

MAX_ARG_STRLEN = 32 * 4096
"""Linux: the most bytes one argument (or environment entry) may have, its NUL included."""
ARG_MAX_FALLBACK = 2 * 1024 * 1024
ARGV_HEADROOM = 16 * 1024
"""Kept free of ARG_MAX: the auxiliary vector, the program's path, rounding."""
POINTER = 8
NUL_STAND_IN = "\u2400"  # ␀: visible where the NUL was
FILE_LIMIT = None
"""A file channel has no practical limit."""
APPRISE_DEFAULT = 4000
APPRISE_LIMITS = {
    "tgram": 4096,
    "discord": 2000,
    "pover": 1024,
    "ntfy": 4096,
    "ntfys": 4096,
    "signal": 2000,
    "signals": 2000,
    "slack": 40000,
    "matrix": 32000,
    "matrixs": 32000,
    "mailto": 100_000,
    "mailtos": 100_000,
    "json": 100_000,
    "jsons": 100_000,
}
"""Characters (title and body together) per apprise service, where the service documents one;
APPRISE_DEFAULT for the others."""
COMMAND_DEFAULT = 100_000
"""Characters for a command channel: an agent's prompt, not a dump; argv limits may cut more."""
FULL_TEXT_PREFIX = "evidence-message-"
"""The whole text of a cut message, under <state>/tmp/, pruned with the evidence files."""


def default_max_chars(channel: Mapping[str, object]) -> int | None:
    if channel.get("file"):
        return FILE_LIMIT
    if channel.get("command"):
        return COMMAND_DEFAULT
    url = channel.get("apprise")
    scheme = url.partition("://")[0].lower() if isinstance(url, str) else ""
    return APPRISE_LIMITS.get(scheme, APPRISE_DEFAULT)


def max_chars(channel: Mapping[str, object]) -> int | None:
    """The channel's `max_chars`, or its kind's default."""
    configured = channel.get("max_chars")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    return default_max_chars(channel)


def for_argv(text: str) -> str:
    """`text` as an argument can carry it: a NUL (which would end the string) shown as ␀."""
    return text.replace("\0", NUL_STAND_IN)


def argv_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def argv_budget(environment: dict[str, str] | None = None) -> int:
    """Bytes left for all arguments (NULs and pointers included) once the environment is in."""
    try:
        total = os.sysconf("SC_ARG_MAX")
    except (OSError, ValueError):
        total = ARG_MAX_FALLBACK
    env = os.environ if environment is None else environment
    used = sum(argv_bytes(f"{k}={v}") + 1 + POINTER for k, v in env.items())
    return max(0, total - used - ARGV_HEADROOM)


def cut(text: str, limit: int, measure: Measure = len, where: str = "") -> str:
    """`text` within `limit` (by `measure`: characters, or argv_bytes), cut after the last whole
    line that fits, with a last line saying how many lines were cut and where the rest is."""
    if measure(text) <= limit:
        return text
    lines = text.split("\n")
    low, high = 0, len(lines) - 1
    while low < high:  # the most whole lines that fit with the notice after them
        middle = (low + high + 1) // 2
        if measure(_with_notice(lines[:middle], len(lines) - middle, where)) <= limit:
            low = middle
        else:
            high = middle - 1
    if low:
        return _with_notice(lines[:low], len(lines) - low, where)
    # Not even the first line fits: as much of it as does, marked, and the notice.
    notice = "\n" + _with_notice([], len(lines) - 1, where) if len(lines) > 1 else ""
    room = limit - measure(notice) - measure("…")
    if room <= 0:  # not even the notice: the start of the text, marked
        return _prefix(text, limit - measure("…"), measure) + "…"
    return _prefix(lines[0], room, measure) + "…" + notice


def _with_notice(kept: list[str], dropped: int, where: str) -> str:
    notice = f"… {dropped:,} more line{'' if dropped == 1 else 's'} cut"
    return "\n".join([*kept, notice + (f": {where}" if where else "")])


def _prefix(text: str, limit: int, measure: Measure) -> str:
    """The longest start of `text` that `measure` puts within `limit`."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]

"""Channels: how one message leaves the machine.

A `file` channel appends one JSON line, a `command` channel runs a program with the message in
its arguments (no shell), an `apprise` channel sends a notification. `send` never raises: every
problem is a failed attempt with a reason, so one broken channel never stops the others.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from datetime import datetime, timedelta

from runner.clock import iso
from runner.contract import CHANNEL_TIMEOUT, COMMAND_FIELDS, TMP
from runner.delivery.fit import max_chars
from runner.delivery.message import DeliveryOutcome
from runner.fsatomic import FILE_MODE, append_whole, ensure_dir, safe_name, write_atomic

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from runner.delivery.message import Message
    from runner.spectypes import ChannelJSON

ERROR_TAIL_CHARS = 500
EVIDENCE_PREFIX = "evidence-"
EVIDENCE_KEEP = timedelta(days=7)
"""An agent may read its evidence file after the command returned: keep it this long."""
ABANDONED_PART_SECONDS = 3600


class SendContext:
    __slots__ = ("credentials_dir", "now", "state_dir")

    def __init__(
        self, state_dir: str, credentials_dir: str | os.PathLike[str] | None, now: datetime
    ) -> None:
        self.state_dir = state_dir
        self.credentials_dir = credentials_dir
        self.now = now


class PlaceholderError(ValueError):
    """A command argument with a placeholder this channel does not offer, or bad braces."""


def send(
    name: str, channel: ChannelJSON, message: Message, context: SendContext
) -> DeliveryOutcome:
    timeout = float(channel.get("timeout") or CHANNEL_TIMEOUT)
    try:
        if channel.get("command"):
            return send_command(channel, name, message, context, timeout)
        message = FullText(context, message).fit_body(max_chars(channel))
        if channel.get("file"):
            return send_file(str(channel["file"]), message, context.now)
        if channel.get("apprise") or channel.get("apprise_secret"):
            from runner.delivery.apprise_channel import send_apprise

            return send_apprise(channel, message, context.credentials_dir, timeout)
    except Exception as error:  # a bug in one channel must not stop the delivery run
        from runner.redact import cut_urls

        text = cut_urls(f"{type(error).__name__}: {error}")
        return DeliveryOutcome(False, f"channel {name!r} crashed: {text}")
    return DeliveryOutcome(
        False, f"channel {name!r} has none of file, command, apprise, apprise_secret"
    )


def send_file(path_text: str, message: Message, now: datetime) -> DeliveryOutcome:
    """One JSON line, appended with a single write (O_APPEND) and fsynced."""
    path = os.path.expanduser(path_text)
    record = {
        "id": message.id,  # first: file_holds() finds a line by how it starts
        "channel": message.channel,
        "title": message.title,
        "body": message.body,
        "urgent": message.urgent,
        "created": message.created,
        "sources": message.sources,
        "delivered": iso(now),
    }
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        # A write cut short by a full disk is truncated away: the retry's line never lands
        # glued to a torn one.
        append_whole(path, line)
    except OSError as error:
        return DeliveryOutcome(False, f"cannot append to {path}: {error.strerror or error}")
    return DeliveryOutcome(True)


def file_end(path_text: str) -> int:
    """A file channel's size: where the next line will start."""
    try:
        return os.stat(os.path.expanduser(path_text)).st_size
    except OSError:
        return 0


def file_holds(path_text: str, message_id: str, start: int) -> bool:
    """Whether a whole line for `message_id` starts at or after `start` in a file channel's
    file; read only after a run died while sending, to never append a message twice."""
    head = (json.dumps({"id": message_id}, ensure_ascii=False)[:-1] + ",").encode("utf-8")
    try:
        with open(os.path.expanduser(path_text), "rb") as stream:
            if stream.seek(0, os.SEEK_END) < start:  # truncated or rotated since: read it all
                start = 0
            stream.seek(start)
            return any(line.startswith(head) and _whole(line) for line in stream)
    except OSError:
        return False


def _whole(line: bytes) -> bool:
    """Not torn (a short write on a full disk): the line parses."""
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _parsed(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """str.format's view of `template`: (literal, field, format spec, conversion) pieces."""
    import string  # ~1 ms at start-up: only a command channel needs it

    try:
        return list(string.Formatter().parse(template))
    except ValueError as error:
        raise PlaceholderError(f"argument {template!r}: {error}") from None


def placeholders(template: str) -> list[str]:
    """The names a command argument uses; only plain names from COMMAND_FIELDS are allowed."""
    parsed = _parsed(template)
    names = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in COMMAND_FIELDS or spec or conversion:
            offered = ", ".join("{" + name + "}" for name in COMMAND_FIELDS)
            raise PlaceholderError(
                f"argument {template!r}: unknown placeholder; a command channel offers {offered}"
            )
        names.append(field)
    return names


def fill_argument(template: str, values: Mapping[str, str]) -> str:
    """str.format for plain names only: `{{` and `}}` stay literal braces, nothing else runs."""
    placeholders(template)
    out: list[str] = []
    for literal, field, _, _ in _parsed(template):
        out.append(literal)
        if field is not None:
            out.append(values[field])
    return "".join(out)


def command_values(channel: str, message: Message) -> dict[str, str]:
    count = message.count
    if count is None:  # one line per alert in the consolidated message
        count = sum(1 for line in message.body.splitlines() if line.strip())
    return {
        "message": f"{message.title}\n{message.body}" if message.body else message.title,
        "title": message.title,
        "id": message.id,
        "channel": channel,
        "source": ",".join(message.sources),
        "count": str(count),
    }


def send_command(
    channel: ChannelJSON, name: str, message: Message, context: SendContext, timeout: float
) -> DeliveryOutcome:
    command = channel["command"]
    assert command is not None  # send() passes command channels only
    argv_template = [str(arg) for arg in command]
    try:
        used = {field for arg in argv_template for field in placeholders(arg)}
    except PlaceholderError as error:
        return DeliveryOutcome(False, str(error))
    values = command_values(name, message)
    if "evidence_file" in used:
        try:
            values["evidence_file"] = write_evidence(context.state_dir, message)
        except OSError as error:
            return DeliveryOutcome(
                False, f"cannot write the evidence file: {error.strerror or error}"
            )
    values = fit_values(argv_template, values, max_chars(channel), FullText(context, message))
    argv = [fill_argument(arg, values) for arg in argv_template]
    return run_argv(argv, timeout, context.state_dir)


def fit_values(
    argv_template: list[str], values: dict[str, str], limit: int | None, keeper: FullText
) -> dict[str, str]:
    """The placeholders' values as argv can carry them: no NUL, the message within the
    channel's `max_chars`, and every value within an equal share of what MAX_ARG_STRLEN and
    ARG_MAX leave once the arguments' own text and the environment are counted."""
    from runner.delivery.fit import MAX_ARG_STRLEN, POINTER, argv_budget, argv_bytes, for_argv

    values = {field: for_argv(value) for field, value in values.items()}
    if limit is not None:
        values["message"] = keeper.cut(values["message"], limit, len)
    empty = dict.fromkeys(values, "")
    # (bytes of the argument without its values, NUL included; how many values it holds)
    arguments = [
        (argv_bytes(fill_argument(arg, empty)) + 1, len(placeholders(arg))) for arg in argv_template
    ]
    holes = sum(count for _, count in arguments)
    if not holes:
        return values
    share = (argv_budget() - sum(own + POINTER for own, _ in arguments)) // holes
    for own, count in arguments:
        if count:
            share = min(share, (MAX_ARG_STRLEN - own) // count)
    share = max(share, 0)
    return {
        field: value if argv_bytes(value) <= share else keeper.cut(value, share, argv_bytes)
        for field, value in values.items()
    }


class FullText:
    """Cuts a message's text to a channel's limit, keeping the whole message under
    `<state>/tmp/` (pruned with the evidence files) for the notice to point at."""

    def __init__(self, context: SendContext, message: Message) -> None:
        from runner.delivery.fit import FULL_TEXT_PREFIX

        self.state_dir = context.state_dir
        self.message = message
        name = f"{FULL_TEXT_PREFIX}{safe_name(message.id)}.txt"
        self.path = os.path.join(context.state_dir, TMP, name)

    def cut(self, text: str, limit: int, measure: Callable[[str], int]) -> str:
        from runner.delivery.fit import cut

        where = f"the whole message is in {self.path} for {EVIDENCE_KEEP.days} days"
        shorter = cut(text, limit, measure, where)
        if shorter != text:
            self._keep()
        return shorter

    def fit_body(self, limit: int | None) -> Message:
        """The message with its body cut so title and body are within `limit` characters."""
        message = self.message
        if limit is None or len(message.title) + 1 + len(message.body) <= limit:
            return message
        body = self.cut(message.body, max(limit - len(message.title) - 1, 0), len)
        return type(message)(**{**message.to_json(), "body": body})

    def _keep(self) -> None:
        message = self.message
        text = f"{message.title}\n{message.body}" if message.body else message.title
        # The cut message goes out all the same: its notice names where the rest would be.
        with suppress(OSError):
            write_atomic(self.state_dir, self.path, text.encode("utf-8", "surrogatepass"))


def write_evidence(state_dir: str, message: Message) -> str:
    """The message's evidence as JSON under `<state>/tmp/`, for the command to read."""
    directory = ensure_dir(os.path.join(state_dir, TMP))
    path = os.path.join(directory, f"{EVIDENCE_PREFIX}{os.urandom(8).hex()}.json")
    data = json.dumps(message.evidence or {}, ensure_ascii=False, indent=1).encode("utf-8")
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(handle, data + b"\n")
        os.fsync(handle)
    finally:
        os.close(handle)
    return path


def prune_evidence(state_dir: str, now: datetime) -> None:
    """Old evidence files, and the temp files of atomic writes a killed process left in tmp/."""
    directory = os.path.join(state_dir, TMP)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    cutoff = (now - EVIDENCE_KEEP).timestamp()
    # `.part`: no atomic write takes an hour; real time, as `now` may be a simulated moment.
    abandoned = time.time() - ABANDONED_PART_SECONDS
    for name in names:
        path = os.path.join(directory, name)
        try:
            if name.startswith(EVIDENCE_PREFIX):
                old = os.stat(path).st_mtime < cutoff
            else:
                old = name.endswith(".part") and os.lstat(path).st_mtime < abandoned
            if old:
                os.unlink(path)
        except OSError:
            continue


def run_argv(argv: list[str], timeout: float, cwd: str) -> DeliveryOutcome:
    """Run without a shell in a process group of its own; a timeout kills the whole group."""
    # subprocess costs ~5 ms at start-up: imported by a run that has a command to start.
    import subprocess

    from runner.command import kill_group

    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:
        return DeliveryOutcome(False, f"cannot start {argv[0]}: {error.strerror or error}")
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        return DeliveryOutcome(False, f"{argv[0]} timed out after {timeout:g}s", process.returncode)
    except BaseException:
        kill_group(process)
        raise
    status = process.returncode
    if status == 0:
        return DeliveryOutcome(True, exit_status=0)
    how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    tail = _tail(err) or _tail(out)
    return DeliveryOutcome(False, f"{argv[0]} {how}" + (f": {tail}" if tail else ""), status)


def _tail(data: bytes | None) -> str:
    text = (data or b"").decode("utf-8", errors="replace").strip()
    if len(text) > ERROR_TAIL_CHARS:
        text = "…" + text[-ERROR_TAIL_CHARS:]
    return text

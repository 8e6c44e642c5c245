"""Replies a program prints: one JSON object a line, `{"text": ..., "from": ..., "id": ...}`.

How an agent (OpenClaw and the like) hands over what the person said to it. The program runs
without a shell, its stderr goes to the journal, and it is started again (with the service's
backoff) when it exits. Nothing of its lines is stored: the program must not print a reply
twice. A line's id is its `id`, else a digest of its sender, text, line number and the start
of the program's run it came from: a program that prints one reply and exits, started again,
prints new replies, never the same one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from runner.clock import now
from runner.replies.ledger import Incoming
from runner.replies.sources import Transient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

STOP_SECONDS = 5
"""How long the program has to exit after SIGTERM before it is killed."""
MAX_ID = 100


class Program:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def receive(self, offset: int | None) -> Iterator[Incoming]:
        """The replies of one run of the program, until it exits."""
        del offset  # a program's lines have none
        try:
            process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True
            )
        except OSError as error:
            raise Transient(f"cannot start {self.argv[0]}: {error.strerror or error}") from None
        run = f"{process.pid}-{now().timestamp()}"  # this run of the program, among all
        try:
            assert process.stdout is not None
            for number, line in enumerate(process.stdout, 1):
                incoming = _parse(line, number, run)
                if incoming is None:
                    print(f"line {number} of {self.argv[0]} is not a reply", file=sys.stderr)
                    continue
                yield incoming
            status = process.wait()
        finally:
            _end(process)
        raise Transient(f"{self.argv[0]} exited with status {status}")


def _parse(line: bytes, number: int, run: str) -> Incoming | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return None
    text: str = item["text"]
    sender = item.get("from")
    sender = str(sender) if isinstance(sender, str | int) and not isinstance(sender, bool) else ""
    given = item.get("id")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given):
        identifier = str(given)[:MAX_ID]
    else:
        seen = json.dumps([sender, text, number, run], ensure_ascii=False).encode("utf-8")
        identifier = hashlib.sha256(seen).hexdigest()[:16]
    return Incoming(number=identifier, sender=sender, text=text, accepted=True, moment=now())


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()

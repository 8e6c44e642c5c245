"""A loopback Telegram Bot API for tests: getUpdates long polling and sendMessage, as the real
API speaks them (https://core.telegram.org/bots/api#getupdates).

getUpdates confirms every update below `offset` (they are forgotten), answers at once with the
updates at or above it, or holds the request up to `timeout` seconds for one to arrive. A
wrong token gets 401 Unauthorized. Every getUpdates' offset and the update ids it was given
are recorded, so a test can tell which updates were handed out more than once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_HOLD = 50.0


@dataclass
class Poll:
    offset: int | None
    handed: list[int] = field(default_factory=list)


class TelegramServer:
    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict[str, object]] = []
        self.polls: list[Poll] = []
        self.sent: list[dict[str, object]] = []
        self.next_id = 1000
        self.changed = threading.Condition()
        self.status: tuple[int, str] | None = None
        """Set: every request is answered with this (code, description) instead."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> TelegramServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with self.changed:
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def send(self, chat: int, text: str | None = "done r7", *, sticker: bool = False) -> int:
        """A message the person writes in `chat`; returns its update id."""
        with self.changed:
            self.next_id += 1
            message: dict[str, object] = {
                "message_id": self.next_id * 10,
                "from": {"id": chat, "is_bot": False, "first_name": "Person"},
                "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
                "date": int(time.time()),
            }
            if sticker:
                message["sticker"] = {"file_id": "x", "emoji": "👍"}
            elif text is not None:
                message["text"] = text
            self.updates.append({"update_id": self.next_id, "message": message})
            self.changed.notify_all()
            return self.next_id

    def handed(self, update_id: int) -> int:
        """How many getUpdates answers carried `update_id`."""
        with self.changed:
            return sum(poll.handed.count(update_id) for poll in self.polls)

    def wait_for_poll(self, offset: int, timeout: float = 20.0) -> None:
        """Until a getUpdates with this offset has come (the updates below it are stored)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not any(poll.offset == offset for poll in self.polls):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no getUpdates with offset {offset}: {self.polls}")
                self.changed.wait(left)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, object]]:
        """The HTTP status and JSON body for a request to `path` with these fields."""
        prefix = f"/bot{self.token}/"
        if self.status is not None:
            return _refusal(*self.status)
        if not path.startswith(prefix):
            return _refusal(401, "Unauthorized")
        if path == prefix + "getUpdates":
            return 200, {"ok": True, "result": self.get_updates(query)}
        if path == prefix + "sendMessage":
            message = {"chat_id": query["chat_id"][0], "text": query["text"][0]}
            self.sent.append(message)
            return 200, {"ok": True, "result": {"message_id": len(self.sent), **message}}
        return _refusal(404, "Not Found")

    def get_updates(self, query: dict[str, list[str]]) -> list[dict[str, object]]:
        offset = int(query["offset"][0]) if "offset" in query else None
        timeout = min(MAX_HOLD, float(query.get("timeout", ["0"])[0]))
        allowed = json.loads(query.get("allowed_updates", ["[]"])[0]) or ["message"]
        poll = Poll(offset)
        deadline = time.monotonic() + timeout
        with self.changed:
            self.polls.append(poll)
            self.changed.notify_all()
            if offset is not None:  # confirmed: Telegram forgets them
                self.updates = [u for u in self.updates if int(u["update_id"]) >= offset]  # type: ignore[call-overload]
            while True:
                found = [u for u in self.updates if any(kind in u for kind in allowed)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    poll.handed = [int(u["update_id"]) for u in found]  # type: ignore[call-overload]
                    return found
                self.changed.wait(left)


def _refusal(code: int, description: str) -> tuple[int, dict[str, object]]:
    return code, {"ok": False, "error_code": code, "description": description}


def _handler(api: TelegramServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            self._answer(parts.path, parse_qs(parts.query))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            kind = self.headers.get("Content-Type") or ""
            if kind.startswith("application/json"):
                fields = {k: [str(v)] for k, v in json.loads(body or b"{}").items()}
            else:
                fields = parse_qs(body.decode())
            parts = urlsplit(self.path)
            self._answer(parts.path, {**parse_qs(parts.query), **fields})

        def _answer(self, path: str, query: dict[str, list[str]]) -> None:
            self._json(*api.answer(path, query))

        def _json(self, code: int, data: object) -> None:
            body = json.dumps(data).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client went away (killed) while its poll was held

    return Handler

"""A loopback signal-cli daemon for tests, speaking what signal-cli-jsonrpc(5) documents:

- `--socket`: JSON-RPC over a unix socket, one object a line; every client gets incoming
  messages as `receive` notifications (receive mode on-start), and after `subscribeReceive`
  also wrapped in a subscription (`params.subscription`, `params.result`), as the daemon does.
- `--http`: POST /api/v1/rpc (JSON-RPC), GET /api/v1/events (Server-Sent Events: `event:receive`,
  `data:{"envelope":...,"account":...}`, a `:` keep-alive while idle), GET /api/v1/check.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "+15550001111"


def envelope(sender: str, text: str | None, stamp: int | None = None) -> dict[str, object]:
    """A data message's envelope from `sender` (a number), as signal-cli writes it."""
    stamp = stamp or int(time.time() * 1000)
    data: dict[str, object] = {"timestamp": stamp, "expiresInSeconds": 0, "viewOnce": False}
    if text is not None:
        data["message"] = text
    return {
        "source": sender,
        "sourceNumber": sender,
        "sourceUuid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "sourceName": "Person",
        "sourceDevice": 1,
        "timestamp": stamp,
        "dataMessage": data,
    }


class SignalDaemon:
    """Both endpoints at once; `deliver` hands a message to every connected client."""

    def __init__(self, directory: str, keepalive: float = 15.0) -> None:
        self.socket_path = os.path.join(directory, "signal-cli.socket")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen()
        self.clients: list[tuple[socket.socket, list[int]]] = []  # (connection, subscriptions)
        self.streams: list[BaseHTTPRequestHandler] = []
        self.lock = threading.Condition()
        self.keepalive = keepalive
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.http.daemon_threads = True
        self.sent: list[dict[str, object]] = []

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}/api/v1/rpc"

    def __enter__(self) -> SignalDaemon:
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.listener.close()
        with self.lock:
            for connection, _ in self.clients:
                connection.close()
        self.http.shutdown()
        self.http.server_close()

    def connected(self) -> int:
        with self.lock:
            return len(self.clients) + len(self.streams)

    def wait_connected(self, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.clients) + len(self.streams) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError("no client connected")
                self.lock.wait(0.05)

    def deliver(self, message: dict[str, object]) -> None:
        params = {"envelope": message, "account": ACCOUNT}
        with self.lock:
            for connection, subscriptions in list(self.clients):
                lines = [{"jsonrpc": "2.0", "method": "receive", "params": params}]
                lines += [
                    {
                        "jsonrpc": "2.0",
                        "method": "receive",
                        "params": {"subscription": number, "result": params},
                    }
                    for number in subscriptions
                ]
                try:
                    connection.sendall(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
                except OSError:
                    self.clients.remove((connection, subscriptions))
            for stream in list(self.streams):
                event = f"event:receive\ndata:{json.dumps(params)}\n\n".encode()
                try:
                    stream.wfile.write(event)
                    stream.wfile.flush()
                except OSError:
                    self.streams.remove(stream)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            entry: tuple[socket.socket, list[int]] = (connection, [])
            with self.lock:
                self.clients.append(entry)
                self.lock.notify_all()
            threading.Thread(target=self._serve, args=(entry,), daemon=True).start()

    def _serve(self, entry: tuple[socket.socket, list[int]]) -> None:
        connection, subscriptions = entry
        try:
            with connection.makefile("rb") as reader:
                for line in reader:
                    answer = self.call(json.loads(line), subscriptions)
                    with self.lock:
                        connection.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass  # the client went away
        with self.lock:
            if entry in self.clients:
                self.clients.remove(entry)

    def call(self, request: dict[str, object], subscriptions: list[int]) -> dict[str, object]:
        method = request.get("method")
        if method == "subscribeReceive":
            subscriptions.append(len(subscriptions))
            result: object = subscriptions[-1]
        elif method == "send":
            self.sent.append(dict(request.get("params") or {}))  # type: ignore[call-overload]
            result = {"timestamp": int(time.time() * 1000)}
        else:
            error = {"code": -32601, "message": "Method not implemented", "data": None}
            return {"jsonrpc": "2.0", "error": error, "id": request.get("id")}
        return {"jsonrpc": "2.0", "result": result, "id": request.get("id")}


def _handler(daemon: SignalDaemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/api/v1/check":
                self.send_response(200)
                self.end_headers()
                return
            if self.path.split("?")[0] != "/api/v1/events":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            with daemon.lock:
                daemon.streams.append(self)
                daemon.lock.notify_all()
            while True:
                time.sleep(daemon.keepalive)
                with daemon.lock:
                    if self not in daemon.streams:
                        return
                    try:
                        self.wfile.write(b":\n")
                        self.wfile.flush()
                    except OSError:
                        daemon.streams.remove(self)
                        return

        def do_POST(self) -> None:
            if self.path != "/api/v1/rpc":
                self.send_response(404)
                self.end_headers()
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps(daemon.call(json.loads(body), [])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler

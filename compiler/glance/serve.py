"""`vigil serve`: the status page, live and read-only. GET and HEAD of `/` gather a fresh Glance
and draw it; any other path is 404 and any other method 405, so nothing a request says can
change anything. It listens on 127.0.0.1 unless told another address, which it then says is
open to whoever reaches it. A request naming another host (a DNS rebinding page in a browser) is
refused (421); an idle connection is dropped after TIMEOUT seconds and at most CONNECTIONS are
served at once (503 beyond). Standard library only: one page, a few loads a day."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from compiler.errors import ExitCode, UsageError, VigilError, Warn
from compiler.glance.model import Glance
from compiler.glance.page import render_page

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
"""What a browser on this machine calls it (the Host header, brackets and port aside)."""
TIMEOUT = 10
"""Seconds a connection may be idle (a request that never finishes) before it is dropped."""
CONNECTIONS = 16
"""Connections served at once; one more is answered 503 and closed."""
BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 31\r\nConnection: close\r\n\r\nbusy: too many connections open\n"
)
ALLOW = "GET, HEAD"
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    # The page loads nothing and runs nothing: say so to the browser as well.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def serve(
    gather: Callable[[], Glance], *, port: int, bind: str | None, tell: Warn, warn: Warn
) -> int:
    """Serve until Ctrl-C (then exit 0). `tell` gets the URL (stdout), `warn` what a person
    must know (stderr): that an address other than loopback is open to others."""
    server = open_server(gather, bind or LOOPBACK, port, warn=warn, name=bind)
    host, bound = str(server.server_address[0]), int(server.server_address[1])
    address = ipaddress.ip_address(host)
    if bind is not None and not address.is_loopback:
        warn(
            f"serving on {_netloc(str(host), bound)}: anyone who reaches this address sees the page"
        )
    if address.is_unspecified:  # every address: a browser opens it as loopback
        host = "::1" if address.version == 6 else LOOPBACK
    tell(f"http://{_netloc(host, bound)}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how it is stopped: not an error
        pass
    finally:
        server.server_close()
    return ExitCode.OK


def open_server(
    gather: Callable[[], Glance],
    host: str,
    port: int,
    *,
    warn: Warn,
    name: str | None = None,
) -> ThreadingHTTPServer:
    """Listening on `host` (`name`: the host name --bind gave, a Host header may use it);
    `warn` gets what failed while drawing a page, each once."""
    if not 0 <= port <= 65535:
        raise UsageError(f"vigil serve: --port takes 0 to 65535, not {port}")
    family, address = _address(host, port)

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        slots = threading.BoundedSemaphore(CONNECTIONS)

        def process_request(self, request: Any, client_address: Any) -> None:
            if not self.slots.acquire(blocking=False):
                _busy(request)
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.slots.release()

    try:
        handler = _handler(gather, _once(warn))
        server = Server(address, handler)
    except OSError as error:
        where = _netloc(host, port)
        if error.errno == errno.EADDRINUSE:
            raise VigilError(
                f"vigil serve: {where} is in use (another vigil serve?): choose --port"
            ) from None
        raise VigilError(f"vigil serve: cannot listen on {where}: {error.strerror}") from None
    listening = str(server.server_address[0])
    handler.hosts = frozenset({*LOOPBACK_NAMES, listening, *([name.lower()] if name else [])})
    handler.port = int(server.server_address[1])
    handler.any_address = ipaddress.ip_address(listening).is_unspecified
    return server


def _busy(request: socket.socket) -> None:
    """Answer a connection beyond CONNECTIONS at once, without a thread."""
    try:
        request.settimeout(1)
        request.sendall(BUSY)
    except OSError:
        pass


def _once(warn: Warn) -> Warn:
    """`warn`, each line once (every load draws anew: a broken page is said once)."""
    said: set[str] = set()
    lock = threading.Lock()

    def once(line: str) -> None:
        with lock:
            if line in said:
                return
            said.add(line)
        warn(line)

    return once


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """The first address `host` (an IP address or a host name) resolves to: `--bind` takes
    nothing else (a URL, a port or an interface name is refused, exit 2)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        raise UsageError(
            f"vigil serve: --bind takes an IP address or a host name of this machine, "
            f"not {host!r} ({error})"
        ) from None
    family, _, _, _, sockaddr = found[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _handler(gather: Callable[[], Glance], warn: Warn) -> type[Page]:
    """The page's handler with this `gather`: a class per server, as http.server wants one."""
    return type("BoundPage", (Page,), {"gather": staticmethod(gather), "warn": staticmethod(warn)})


def _host(header: str | None) -> tuple[str, int] | None:
    """A Host header's name (lowercase, no brackets) and port (80 when it names none)."""
    if not header:
        return None
    try:
        parts = urlsplit(f"//{header}")
        return (parts.hostname or "", parts.port or 80)
    except ValueError:
        return None


def _ip_literal(name: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name) is not None
    return False


class Page(BaseHTTPRequestHandler):
    server_version = "vigil"
    sys_version = ""
    timeout = TIMEOUT
    gather: Callable[[], Glance]
    warn: Warn
    hosts: frozenset[str] = LOOPBACK_NAMES
    """The names a Host header may give: loopback's, the bound address, --bind's name."""
    port: int = 0
    any_address = False
    """Bound to every address: a Host naming an IP address (never rebound) is one of ours."""

    def do_GET(self) -> None:
        self._page(body=True)

    def do_HEAD(self) -> None:
        self._page(body=False)

    def _page(self, *, body: bool) -> None:
        if not self._ours():
            words = "misdirected: this server answers to its own address (127.0.0.1, localhost)\n"
            self._plain(HTTPStatus.MISDIRECTED_REQUEST, words, body)
            return
        if urlsplit(self.path).path != "/":
            self._plain(HTTPStatus.NOT_FOUND, "not found: the status page is at /\n", body)
            return
        try:
            content = render_page(self.gather()).encode("utf-8")
        except VigilError as error:  # the config became invalid: say why, not a traceback
            self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, f"{error}\n", body)
            return
        except Exception as error:  # a bug: a line to the browser, said once on stderr
            self.warn(f"serve: the page could not be drawn: {type(error).__name__}: {error}")
            words = "the page could not be drawn (see vigil serve's output)\n"
            self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, words, body)
            return
        self._send(HTTPStatus.OK, HEADERS, content, body)

    def _ours(self) -> bool:
        """Whether the Host header names this server: a page elsewhere whose name was made to
        point here (DNS rebinding) gives its own name, and is refused."""
        found = _host(self.headers.get("Host"))
        if found is None or (self.port and found[1] != self.port):
            return False
        name = found[0]
        return name in self.hosts or (self.any_address and _ip_literal(name))

    def _refuse(self) -> None:
        """Nothing changes anything here: every other method is refused."""
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET or HEAD /\n", True)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _plain(self, status: HTTPStatus, text: str, body: bool) -> None:
        headers = {**HEADERS, "Content-Type": "text/plain; charset=utf-8"}
        if status is HTTPStatus.METHOD_NOT_ALLOWED:
            headers["Allow"] = ALLOW
        self._send(status, headers, text.encode("utf-8"), body)

    def _send(self, status: HTTPStatus, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a page load is not news (http.server would write each to stderr)."""

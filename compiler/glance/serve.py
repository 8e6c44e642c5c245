"""`vigil serve`: the status page, live and read-only. GET and HEAD of `/` gather a fresh Glance
and draw it; any other path is 404 and any other method 405, so nothing a request says can
change anything. It listens on 127.0.0.1 unless told another address, which it then says is
open to whoever reaches it. Standard library only: one page, a few loads a day."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from compiler.errors import ExitCode, UsageError, VigilError, Warn
from compiler.glance.model import Glance
from compiler.glance.page import render_page

LOOPBACK = "127.0.0.1"
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
    server = open_server(gather, bind or LOOPBACK, port)
    host, bound = str(server.server_address[0]), int(server.server_address[1])
    if bind is not None and not ipaddress.ip_address(host).is_loopback:
        warn(
            f"serving on {_netloc(str(host), bound)}: anyone who reaches this address sees the page"
        )
    tell(f"http://{_netloc(host, bound)}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how it is stopped: not an error
        pass
    finally:
        server.server_close()
    return ExitCode.OK


def open_server(gather: Callable[[], Glance], host: str, port: int) -> ThreadingHTTPServer:
    if not 0 <= port <= 65535:
        raise UsageError(f"vigil serve: --port takes 0 to 65535, not {port}")
    family, address = _address(host, port)

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    try:
        return Server(address, _handler(gather))
    except OSError as error:
        where = _netloc(host, port)
        if error.errno == errno.EADDRINUSE:
            raise VigilError(
                f"vigil serve: {where} is in use (another vigil serve?): choose --port"
            ) from None
        raise VigilError(f"vigil serve: cannot listen on {where}: {error.strerror}") from None


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


def _handler(gather: Callable[[], Glance]) -> type[BaseHTTPRequestHandler]:
    """The page's handler with this `gather`: a class per server, as http.server wants one."""
    return type("BoundPage", (Page,), {"gather": staticmethod(gather)})


class Page(BaseHTTPRequestHandler):
    server_version = "vigil"
    sys_version = ""
    gather: Callable[[], Glance]

    def do_GET(self) -> None:
        self._page(body=True)

    def do_HEAD(self) -> None:
        self._page(body=False)

    def _page(self, *, body: bool) -> None:
        if urlsplit(self.path).path != "/":
            self._plain(HTTPStatus.NOT_FOUND, "not found: the status page is at /\n", body)
            return
        try:
            content = render_page(self.gather()).encode("utf-8")
        except VigilError as error:  # the config became invalid: say why, not a traceback
            self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, f"{error}\n", body)
            return
        self._send(HTTPStatus.OK, HEADERS, content, body)

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

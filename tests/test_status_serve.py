"""`vigil serve` as a person runs it (a subprocess, Ctrl-C to stop): loopback unless --bind,
which it then says; read-only; each load gathered anew; a port in use is a clear exit 1."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from compiler.errors import Warn
from compiler.glance.collect import collect
from compiler.glance.model import Glance
from compiler.glance.serve import CONNECTIONS, TIMEOUT, Page, open_server
from compiler.language.validate import load_config
from compiler.operate.setup import ConfigView
from tests.conftest import ROOT, require_systemd_analyze
from tests.glance_support import NOW, Bruba, bruba_with_history, start_serve


@pytest.fixture(scope="module")
def bruba(tmp_path_factory: pytest.TempPathFactory) -> Bruba:
    require_systemd_analyze()
    return bruba_with_history(tmp_path_factory.mktemp("bruba"))


def request(url: str, method: str = "GET", path: str = "/") -> tuple[int, dict[str, str], str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request(method, path, body=b"x" if method in ("POST", "PUT") else None)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_loopback_read_only_and_gathered_at_each_load(bruba: Bruba) -> None:
    served = start_serve(bruba.config)
    try:
        assert urlsplit(served.url).hostname == "127.0.0.1"
        status, headers, page = request(served.url)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert 'data-lane="reminder-check"' in page and "second load" not in page
        bruba.add_run(
            job="staleness-check",
            start="2026-12-07T14:00:00Z",
            result="failed",
            reason="second load",
        )
        assert "second load" in request(served.url)[2]
        status, headers, body = request(served.url, "HEAD")
        assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, headers, _ = request(served.url, method)
            assert (status, headers.get("Allow")) == (405, "GET, HEAD"), method
        for path in ("/index.html", "/favicon.ico", "/../etc/passwd", "/x/"):
            assert request(served.url, path=path)[0] == 404, path
        assert request(served.url, path="/?refresh=1")[0] == 200
    finally:
        code, err = served.stop()
    assert code == 0 and "Traceback" not in err, err
    # Said once, as every inspecting command says it, though every load gathers anew.
    assert [line.partition(": shown from")[0] for line in err.splitlines()] == [
        "vigil: bruba is not installed (--user)"
    ]


@pytest.mark.parametrize(("bind", "url_host"), [("0.0.0.0", "127.0.0.1"), ("::", "::1")])
def test_another_address_only_when_asked_and_said(bruba: Bruba, bind: str, url_host: str) -> None:
    """Every address is said as such; the URL printed is one a browser opens (loopback)."""
    if bind == "::" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    served = start_serve(bruba.config, "--bind", bind)
    try:
        assert urlsplit(served.url).hostname == url_host
        port = urlsplit(served.url).port
        assert request(served.url)[0] == 200
    finally:
        code, err = served.stop()
    assert code == 0
    shown = f"[{bind}]" if ":" in bind else bind
    assert f"serving on {shown}:{port}: anyone who reaches this address sees the page" in err


def test_bind_takes_an_address_not_anything(bruba: Bruba) -> None:
    result = _vigil_serve(bruba.config, "--bind", "http://example.org/", "--port", "0")
    assert result.returncode == 2, result.stderr
    assert "--bind takes an IP address or a host name" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clear_failure(bruba: Bruba) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _vigil_serve(bruba.config, "--port", str(port))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"vigil serve: 127.0.0.1:{port} is in use (another vigil serve?): choose --port\n"
    )


def _vigil_serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", "serve", "--config", str(config), *args],
        cwd=ROOT,
        env={"VIGIL_NOW": NOW.isoformat(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the server in this process: what it answers to, what it answers when drawing fails -------


@pytest.fixture
def serving() -> Iterator[Callable[..., ThreadingHTTPServer]]:
    servers: list[ThreadingHTTPServer] = []

    def start(gather: Callable[[], Glance], warn: Warn = lambda _: None) -> ThreadingHTTPServer:
        server = open_server(gather, "127.0.0.1", 0, warn=warn)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _status(server: ThreadingHTTPServer, host: str | None = None) -> int:
    address, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(address), int(port), timeout=20)
    try:
        connection.request("GET", "/", headers={"Host": host} if host else {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_foreign_host_header_is_refused(bruba: Bruba, serving) -> None:  # type: ignore[no-untyped-def]
    """A page on evil.example whose name was made to point at 127.0.0.1 (DNS rebinding) would
    read the page: a Host that is not this server's is answered 421."""
    glance = collect_bruba(bruba)
    server = serving(lambda: glance)
    port = server.server_address[1]
    assert _status(server, "evil.example") == 421
    assert _status(server, f"evil.example:{port}") == 421
    assert _status(server, "127.0.0.1:1") == 421  # another port: another server
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert _status(server, host) == 200, host


def test_a_page_that_cannot_be_drawn_is_a_500_said_once() -> None:
    said: list[str] = []

    def broken() -> Glance:
        raise ValueError("cannot convert float NaN to integer")

    server = open_server(broken, "127.0.0.1", 0, warn=said.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert [_status(server), _status(server)] == [500, 500]
    finally:
        server.shutdown()
        server.server_close()
    assert said == [
        "serve: the page could not be drawn: ValueError: cannot convert float NaN to integer"
    ]


def test_an_idle_connection_is_dropped_and_too_many_are_refused(serving) -> None:  # type: ignore[no-untyped-def]
    """A connection that sends nothing holds its thread TIMEOUT seconds, not forever; beyond
    CONNECTIONS at once, one more is answered 503 at once."""
    assert Page.timeout == TIMEOUT
    server = serving(lambda: pytest.fail("no page is asked"))
    address = server.server_address[:2]
    idle = [socket.create_connection(address, timeout=20) for _ in range(CONNECTIONS)]
    try:
        time.sleep(0.3)  # each is taken by its thread
        with socket.create_connection(address, timeout=20) as extra:
            assert extra.recv(100).startswith(b"HTTP/1.0 503")
    finally:
        for connection in idle:
            connection.close()


def collect_bruba(bruba: Bruba) -> Glance:
    setup = ConfigView.of_config(load_config(bruba.config).config)
    return collect(setup, now=NOW, days=7, past=7, warn=lambda _: None)

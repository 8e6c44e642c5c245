"""`vigil serve` as a person runs it (a subprocess, Ctrl-C to stop): loopback unless --bind,
which it then says; read-only; each load gathered anew; a port in use is a clear exit 1."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

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


def test_another_address_only_when_asked_and_said(bruba: Bruba) -> None:
    served = start_serve(bruba.config, "--bind", "0.0.0.0")
    try:
        assert urlsplit(served.url).hostname == "0.0.0.0"
        port = urlsplit(served.url).port
        assert request(f"http://127.0.0.1:{port}/")[0] == 200
    finally:
        code, err = served.stop()
    assert code == 0
    assert f"serving on 0.0.0.0:{port}: anyone who reaches this address sees the page" in err


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

"""Helpers for the runner tests: specs built from the compiled examples, the runner as a real
subprocess, and a loopback stand-in for the Anthropic Messages API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "units"
API_KEY = "sk-ant-test-FILEKEY-0123456789"
ENV_KEY = "sk-ant-test-ENVKEY-should-never-be-used"


def real_spec(name: str = "bruba/specs/reminder-check.json") -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((SPECS / name).read_text())
    return spec


def write_spec(tmp_path: Path, spec: dict[str, Any], name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def shell_spec(tmp_path: Path, command: str | list[str], **overrides: Any) -> dict[str, Any]:
    """The compiled reminder-check spec as a plain shell job in `tmp_path/state`."""
    spec = real_spec()
    spec.update(
        state_dir=str(tmp_path / "state"),
        command={"shell": command} if isinstance(command, str) else {"argv": command},
        llm=None,
        budgets=[],
        timeout=20,
    )
    spec.update(overrides)
    return spec


def runner_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().endswith("_PROXY") and not key.startswith(("ANTHROPIC_", "MONITOR_"))
    }
    env.pop("INVOCATION_ID", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = "*"
    env.update(extra)
    return env


def run_runner(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m runner ARGS` from the repository root (not -I: that ignores PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *map(str, args)],
        cwd=ROOT,
        env=env if env is not None else runner_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


RunnerCall = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def runner_in_process(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> RunnerCall:
    """`runner.__main__.main` in this process: the same code path as `run_runner`, without
    paying the SDK's import (about a second) once per test. Takes the extra environment
    `run_runner(env=runner_env(**extra))` would get."""
    from runner.__main__ import main

    def run(*args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
        for key in list(os.environ):
            if key not in runner_env():
                monkeypatch.delenv(key)
        for key, value in runner_env(**extra).items():
            monkeypatch.setenv(key, value)
        capfd.readouterr()
        handler = signal.getsignal(signal.SIGTERM)
        try:
            code = main([str(arg) for arg in args])
        finally:
            signal.signal(signal.SIGTERM, handler)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def inbox(state: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((state / "inbox").glob("*"))]


def runs(state: Path) -> list[dict[str, Any]]:
    path = state / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- a loopback Messages API -------------------------------------------------------------------


FINDING_INPUT = {
    "message": "2 reminders overdue",
    "overdue": [{"id": "r1", "title": "Pay rent", "list": "Home", "days_overdue": 3}],
}


def tool_use(tool_input: object) -> dict[str, Any]:
    """The content block of a forced `report_finding` tool call."""
    return {"type": "tool_use", "id": "toolu_01", "name": "report_finding", "input": tool_input}


def message_reply(
    number: int,
    model: object,
    content: list[dict[str, Any]],
    usage: dict[str, int],
    stop_reason: str = "tool_use",
) -> dict[str, Any]:
    """A Messages API response body, as the SDK parses it."""
    return {
        "id": f"msg_{number}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


class FakeMessagesAPI:
    """POST /v1/messages on 127.0.0.1. `script` lists the next replies, one per call; after it
    runs out every call gets `default`. Replies: finding, nothing, malformed, no-tool,
    refusal, 429, 529, hang."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.default = "finding"
        self.usage = (1000, 200)
        self.hang_seconds = 5.0
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        with self.lock:
            self.requests.append({"body": body, "headers": headers})
            return self.script.pop(0) if self.script else self.default

    def reply(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if kind == "hang":
            time.sleep(self.hang_seconds)
            kind = "finding"
        if kind in ("429", "529"):
            error = "rate_limit_error" if kind == "429" else "overloaded_error"
            payload = {"type": "error", "error": {"type": error, "message": f"fake {error}"}}
            return int(kind), {"retry-after-ms": "5"}, payload
        stop_reason = "tool_use"
        tool_input: object = FINDING_INPUT
        content: list[dict[str, Any]] = []
        if kind == "nothing":
            tool_input = {"nothing_to_report": True}
        elif kind == "malformed":
            tool_input = {"message": 42, "overdue": "not checked"}
        if kind in ("finding", "nothing", "malformed"):
            content = [tool_use(tool_input)]
        elif kind == "no-tool":
            stop_reason = "end_turn"
            content = [{"type": "text", "text": "Here are your reminders."}]
        elif kind == "refusal":
            stop_reason = "refusal"
        usage = {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}
        message = message_reply(self.calls, body.get("model"), content, usage, stop_reason)
        return 200, {}, message

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.split("?")[0] != "/v1/messages":
                    self._send(404, {}, {"type": "error", "error": {"type": "not_found_error"}})
                    return
                kind = api.next_reply(body, {k.lower(): v for k, v in self.headers.items()})
                self._send(*api.reply(kind, body))

            def _send(self, status: int, headers: dict[str, str], payload: object) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    api = FakeMessagesAPI()
    api.thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


class WebhookReceiver(ThreadingHTTPServer):
    """An apprise `json://` destination on 127.0.0.1: answers each POST with the next status in
    `statuses` (200 once they run out) after `delay` seconds, and records its path, headers and
    body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.statuses: list[int] = []
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def received(self) -> list[dict[str, Any]]:
        return [request["body"] for request in self.requests]

    @property
    def paths(self) -> list[str]:
        return [request["path"] for request in self.requests]

    @contextmanager
    def serving(self) -> Iterator[WebhookReceiver]:
        thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        time.sleep(self.server.delay)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append({"path": self.path, "headers": headers, "body": body})
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        try:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the channel gave up waiting (the timeout test)

    def log_message(self, _format: str, *_args: object) -> None:
        return


def llm_spec(tmp_path: Path, api: FakeMessagesAPI, command: str, **llm: Any) -> dict[str, Any]:
    """The compiled reminder-check spec (a real LLM detector) pointed at the fake API."""
    spec = real_spec()
    spec.update(state_dir=str(tmp_path / "state"), command={"shell": command}, budgets=[])
    spec["llm"].update(base_url=api.url, max_retries=0, timeout=10)
    spec["llm"].update(llm)
    return spec


def key_sent(headers: dict[str, str]) -> str:
    """The API key a request carried (x-api-key or a bearer token, depending on SDK version)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def credentials(tmp_path: Path, key: str = API_KEY) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir(exist_ok=True)
    (directory / "anthropic").write_text(key + "\n")
    return directory


def run_job(run: RunnerCall, tmp_path: Path, spec: dict[str, Any]) -> Any:
    """`python -m runner job` (in-process) on `spec`, with the API key in its credentials."""
    creds = str(credentials(tmp_path))
    return run("job", write_spec(tmp_path, spec), CREDENTIALS_DIRECTORY=creds)

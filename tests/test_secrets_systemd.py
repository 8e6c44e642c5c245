"""Secrets under a real systemd user manager: marker values in every kind of secret, the whole
pipeline run, and not one marker anywhere vigil writes or prints.

The config holds an Anthropic API key (a loopback Messages API checks it arrives), an apprise
URL with a password and a token path (a loopback HTTP server checks both arrive; its first
answer is a 500, so the URL also goes through a failed delivery and its error text), and a job
token read through $CREDENTIALS_DIRECTORY. One job uses the token and reports only its length;
two jobs leak it by accident, in a finding and in an error on stderr before failing, whose
journal lines the failure alert quotes and delivers to both channels.

Then every marker, as it is, percent-encoded and base64-encoded (alone and in the basic-auth
form), is searched for in every generated file, the unit directory, the state directory, the
file channel, the whole journal of the manager, and the output of `plan`, `status`, `logs`,
`inbox`, `outbox`, `history` and `doctor`. The markers must be at their destinations, and
nowhere else.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.conftest import vigil_in_namespace
from tests.runner_support import FakeMessagesAPI, WebhookReceiver, key_sent
from tests.systemd_manager import UserManager

pytestmark = pytest.mark.systemd

TOKEN = os.urandom(4).hex()
# Characters that percent-encoding and JSON change, so each form is a different string.
API_MARKER = f"sk-ant-api03-MARKERapi{TOKEN}+key/=="
JOB_MARKER = f"MARKERjob{TOKEN}+tok/en="
PASS_MARKER = f"MARKERpass{TOKEN}"
PATH_MARKER = f"MARKERpath{TOKEN}"
MARKERS = {"api": API_MARKER, "job": JOB_MARKER, "password": PASS_MARKER, "path": PATH_MARKER}

CONFIG = """\
name: sec
state_dir: {state}
secrets:
  anthropic: {secrets}/anthropic
  push_url: {secrets}/push-url
  job_token: {secrets}/job-token
llm:
  api_key: anthropic
  base_url: {api}
  timeout: 20s
jobs:
  detector:
    description: An LLM detector (the key reaches it through LoadCredential=)
    schedule: "0 0 1 1 *"
    run: "echo 'Pay rent: 3 days overdue'"
    prompt: Report the overdue reminders.
  uses-token:
    description: Reads its token and reports only how long it is
    schedule: "0 0 1 1 *"
    secrets: [job_token]
    run: >-
      echo starting >&2;
      n=$(tr -d '\\n' < "$CREDENTIALS_DIRECTORY/job_token" | wc -c);
      echo "{{\\"message\\": \\"token has $n bytes\\"}}"
  leaky-finding:
    description: Puts its token into a finding by accident
    schedule: "0 0 1 1 *"
    secrets: [job_token]
    run: >-
      echo starting >&2; tok=$(cat "$CREDENTIALS_DIRECTORY/job_token");
      echo "debug: using $tok" >&2;
      echo "{{\\"message\\": \\"login failed for $tok\\", \\"token\\": \\"$tok\\"}}"
    output: findings
  leaky-failure:
    description: Prints its token in an error, then fails
    schedule: "0 0 1 1 *"
    secrets: [job_token]
    run: >-
      tok=$(cat "$CREDENTIALS_DIRECTORY/job_token");
      echo "error: the server refused token $tok" >&2;
      echo "stdout also says $tok"; sleep 0.2; exit 3
channels:
  push:
    apprise_secret: push_url
  sink:
    file: {deliveries}
coordinator:
  deliver_to: [push, sink]
  delivery:
    backoff: 1s
"""
JOBS = ("detector", "uses-token", "leaky-finding", "leaky-failure")


@pytest.fixture
def servers() -> Iterator[tuple[FakeMessagesAPI, WebhookReceiver]]:
    api = FakeMessagesAPI()
    api.thread.start()
    try:
        # The first POST is refused (500): apprise's error text must not leak the URL either.
        with WebhookReceiver().serving() as receiver:
            receiver.statuses = [500]
            yield api, receiver
    finally:
        api.server.shutdown()
        api.server.server_close()


def forms(marker: str) -> dict[str, bytes]:
    """The marker as it is and in the encodings a leak may take."""
    raw = marker.encode()
    found = {
        "raw": raw,
        "percent": quote(marker, safe="").encode(),
        "form": quote_plus(marker).encode(),
        "json": json.dumps(marker)[1:-1].encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "basic-auth": base64.b64encode(b"vigil:" + raw).rstrip(b"="),
    }
    return found


def leaks(where: str, data: bytes) -> list[str]:
    return [
        f"{name} ({form}) in {where}"
        for name, marker in MARKERS.items()
        for form, needle in forms(marker).items()
        if needle in data
    ]


def files(top: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(top.rglob("*")) if top.exists() else []:
        if path.is_file() and not path.is_symlink():
            yield str(path), path.read_bytes()


def test_no_secret_value_reaches_any_file_journal_or_output(
    vigil, vigil_manager, servers, tmp_path: Path
) -> None:
    api, receiver = servers
    manager = vigil_manager
    state, deliveries = tmp_path / "state", tmp_path / "deliveries.jsonl"
    config = write_config(tmp_path, state, deliveries, api.url, receiver.port)
    outputs: dict[str, str] = {}

    def cli(*args: str | Path) -> Any:
        result = vigil(*args)
        outputs[" ".join(map(str, args))] = result.stdout + result.stderr
        return result

    applied = cli("apply", config, "--yes")
    assert applied.exit_code == 0, applied.stderr
    for job in JOBS:
        code = cli("run", job, "--wait", "--config", config).exit_code
        assert code == (1 if job == "leaky-failure" else 0), outputs

    # Every finding and the failure alert delivered to the file; the apprise channel's first
    # attempt failed (500) and is retried after its 1 s backoff by a coordinator run.
    def delivered() -> list[dict[str, Any]]:
        text = deliveries.read_text() if deliveries.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def body_text() -> str:
        return "\n".join(m["body"] for m in delivered())

    manager.wait_for(
        lambda: "sec-leaky-failure failed" in body_text() and "token has" in body_text(),
        timeout=30,
        what="every finding and the failure alert in the file channel",
    )
    time.sleep(1.2)
    cli("run", "coordinator", "--wait", "--config", config)
    manager.wait_for(
        lambda: (
            sum(r["headers"].get("authorization", "") != "" for r in receiver.requests)
            >= 1 + len(delivered())
        ),
        timeout=30,
        what="the apprise retries",
    )

    # --- the markers reached their destinations (so the search below can fail for real)
    assert api.calls >= 1 and {key_sent(r["headers"]) for r in api.requests} == {API_MARKER}
    basic = "Basic " + base64.b64encode(f"vigil:{PASS_MARKER}".encode()).decode()
    assert {r["headers"]["authorization"] for r in receiver.requests} == {basic}
    assert {r["path"] for r in receiver.requests} == {f"/hook/{PATH_MARKER}"}
    text = body_text()
    assert f"token has {len(JOB_MARKER)} bytes" in text  # the job read the real value
    assert "2 reminders overdue" in text  # the detector's finding, from the model
    assert "login failed for [redacted]" in text  # the leak was caught, not dropped
    assert "sec-leaky-failure failed (exit-code, status 1)" in text
    assert "[redacted]" in json.dumps([r["body"] for r in receiver.requests])

    # --- and nowhere else
    for job in (*JOBS, "coordinator"):
        result = vigil_in_namespace(manager, tmp_path, "logs", job, "--config", config)
        outputs[f"logs {job}"] = result.stdout + result.stderr
    journal_lines = outputs["logs leaky-failure"]
    assert "error: the server refused token [redacted]" in journal_lines
    assert "stdout also says [redacted]" in journal_lines
    assert "attempt 1 of 5 failed: " in outputs["logs coordinator"]  # apprise's error text
    assert {"runs.jsonl", "state", "outbox"} <= {p.name for p in state.iterdir()}
    for args in (
        ("plan", config),
        ("status", "--config", config),
        ("status", "--config", config, "--json"),
        ("inbox", "--config", config, "--json"),
        ("outbox", "--config", config, "--json"),
        ("state", "--config", config),
        ("history",),
        ("doctor", "--config", config),
    ):
        cli(*args)
    found = leaks_anywhere(outputs, manager, state, deliveries)
    assert found == [], "\n".join(found)


def write_config(tmp_path: Path, state: Path, deliveries: Path, api_url: str, port: int) -> Path:
    """The config, and its three secrets in files of their own (mode 600)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    url = f"json://vigil:{PASS_MARKER}@127.0.0.1:{port}/hook/{PATH_MARKER}"
    for name, value in (("anthropic", API_MARKER), ("push-url", url), ("job-token", JOB_MARKER)):
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o600)
    config = tmp_path / "sec.yaml"
    config.write_text(
        CONFIG.format(state=state, secrets=secrets, api=api_url, deliveries=deliveries)
    )
    return config


def leaks_anywhere(
    outputs: dict[str, str], manager: UserManager, state: Path, deliveries: Path
) -> list[str]:
    """Every marker found in the CLI's outputs, vigil's data, the units, the state directory,
    the file channel, the journal or the managers' logs."""
    home = Path(manager.env["HOME"])
    found: list[str] = []
    for where, data in outputs.items():
        found += leaks(f"the output of `vigil {where}`", data.encode())
    for top in (home / ".local/share/vigil", manager.unit_dir, state):
        for where, data in files(top):
            found += leaks(where, data)
    found += leaks(str(deliveries), deliveries.read_bytes())
    manager.sync_journal()
    journal = subprocess.run(
        ["journalctl", f"--directory={manager.journal_dir}", "--no-pager", "-o", "export"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"MESSAGE=vigil: delivered message" in journal  # the journal read is the real one
    found += leaks("the journal", journal)
    for name, path in manager.logs.items():
        found += leaks(f"the {name} log", path.read_bytes() if path.exists() else b"")
    return found

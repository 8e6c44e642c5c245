"""Credential values the runner knows never pass through it: the forms they are matched in,
and a job that prints its secret everywhere it can (a real runner process)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import quote

from runner.redact import REDACTED, Redactor, from_credentials
from tests.runner_support import inbox, run_runner, runner_env, runs, shell_spec, write_spec

SECRET = "s3cr3t+token/with=odd&chars"


def test_every_form_of_a_value_is_replaced() -> None:
    redactor = Redactor([SECRET + "\n"])
    for leaked in (
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"user:{SECRET}".encode()).decode(),  # basic auth: not aligned
        base64.urlsafe_b64encode(f"ab{SECRET}".encode()).decode(),
    ):
        cleaned = redactor.text(f"before {leaked} after")
        assert REDACTED in cleaned and "before " in cleaned and " after" in cleaned, leaked
        assert SECRET not in cleaned and leaked not in cleaned, leaked


def test_urls_lines_and_json_data() -> None:
    url = "json://me:hunter2pass@hooks.example.net/abcdef123456"
    redactor = Redactor([url, "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----"])
    assert redactor.text(f"POST {url} failed") == f"POST {REDACTED} failed"
    assert "hunter2pass" not in redactor.text("auth hunter2pass refused")
    assert redactor.text("key line AAAABBBBCCCCDDDD") == f"key line {REDACTED}"
    data = {"message": "hunter2pass", "items": [{"abcdef123456": 1}], "n": 3}
    assert redactor.data(data) == {"message": REDACTED, "items": [{REDACTED: 1}], "n": 3}
    assert redactor.bytes(b"x hunter2pass y") == f"x {REDACTED} y".encode()


def test_short_values_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("1234\n")
    (tmp_path / "empty").write_text("")
    assert not from_credentials(str(tmp_path))
    assert not from_credentials(None)
    assert Redactor(["1234"]).text("room 1234") == "room 1234"


def test_a_job_that_prints_its_secret_everywhere_leaks_it_nowhere(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(SECRET + "\n")
    command = (
        'tok=$(cat "$CREDENTIALS_DIRECTORY/token"); '
        'echo "stderr: $tok" >&2; '
        'echo "{\\"message\\": \\"found $tok\\", \\"$tok\\": \\"$tok\\"}"'
    )
    spec = write_spec(tmp_path, shell_spec(tmp_path, command))
    result = run_runner("job", spec, env=runner_env(CREDENTIALS_DIRECTORY=str(credentials)))
    assert result.returncode == 0, result.stderr
    assert f"stderr: {REDACTED}" in result.stderr
    [finding] = inbox(tmp_path / "state")
    assert finding["message"] == f"found {REDACTED}"
    assert finding[REDACTED] == REDACTED

    # A failing run: its output goes to the journal, its reason to runs.jsonl.
    failing = command.replace('echo "{', 'echo "log: $tok"; exit 4; echo "{')
    write_spec(tmp_path, shell_spec(tmp_path, failing))
    result = run_runner("job", spec, env=runner_env(CREDENTIALS_DIRECTORY=str(credentials)))
    assert result.returncode == 1
    assert f"log: {REDACTED}" in result.stdout
    everything = result.stdout + result.stderr + json.dumps(runs(tmp_path / "state"))
    everything += "".join(p.read_text() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert SECRET not in everything and quote(SECRET, safe="") not in everything


def test_the_filtered_stderr_does_not_wait_for_a_process_left_behind(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(SECRET)
    # The background sleep keeps stderr open, not stdout: the run must still end promptly.
    command = "echo early >&2; sleep 8 >/dev/null & echo done"
    spec = write_spec(tmp_path, shell_spec(tmp_path, command))
    began = time.monotonic()
    result = run_runner("job", spec, env=runner_env(CREDENTIALS_DIRECTORY=str(credentials)))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 6  # the relay gives up on it after 2 s
    assert "early" in result.stderr and "done" in result.stdout


def test_a_value_split_across_pieces_is_still_replaced() -> None:
    redactor = Redactor([SECRET])
    text = f"first {SECRET} middle {SECRET}".encode()
    for cut in range(1, len(text)):
        stream = redactor.stream()
        out = stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.flush()
        assert out == f"first {REDACTED} middle {REDACTED}".encode(), cut
    # Text that only looks like a value's start is passed on when the stream ends.
    stream = redactor.stream()
    assert stream.feed(b"ends with s3cr") == b"ends with "
    assert stream.flush() == b"s3cr"


def test_a_secret_across_the_64_kib_read_boundary_of_stderr(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(SECRET)
    # One stderr line longer than a read: the secret straddles the 65,536th byte.
    pad = 64 * 1024 - 10
    command = f"head -c {pad} /dev/zero | tr '\\0' x >&2; "
    command += 'cat "$CREDENTIALS_DIRECTORY/token" >&2'
    spec = write_spec(tmp_path, shell_spec(tmp_path, command))
    result = run_runner("job", spec, env=runner_env(CREDENTIALS_DIRECTORY=str(credentials)))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    assert "x" * 100 + REDACTED in result.stderr

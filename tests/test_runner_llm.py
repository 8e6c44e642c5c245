"""LLM detectors through the real runner and the real SDK, against a loopback Messages API.

The paths that matter most run the runner as a subprocess; the many reply variants run it
in-process (`runner_in_process`) so the SDK is imported once, not once per test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.runner_support import (
    API_KEY,
    ENV_KEY,
    FINDING_INPUT,
    FakeMessagesAPI,
    RunnerCall,
    credentials,
    fake_api,
    inbox,
    key_sent,
    llm_spec,
    run_runner,
    runner_env,
    runner_in_process,
    runs,
    write_spec,
)

__all__ = ["fake_api", "runner_in_process"]

REMINDERS = "r1\tPay rent\tHome\t3 days overdue"


def detect(
    tmp_path: Path,
    api: FakeMessagesAPI,
    command: str = f"printf '{REMINDERS}'",
    *,
    run: RunnerCall | None = None,
    env: dict[str, str] | None = None,
    **llm: Any,
) -> subprocess.CompletedProcess[str]:
    """Run the reminder-check detector: a subprocess, or in-process when `run` is given."""
    spec = write_spec(tmp_path, llm_spec(tmp_path, api, command, **llm))
    if env is None:
        env = {"CREDENTIALS_DIRECTORY": str(credentials(tmp_path))}
    if run is not None:
        result = run("job", spec, **env)
    else:
        result = run_runner("job", spec, env=runner_env(**env))
    leaked = [
        text for text in (result.stdout, result.stderr, _runs_text(tmp_path)) if API_KEY in text
    ]
    assert not leaked, "the API key leaked"
    return result


def _runs_text(tmp_path: Path) -> str:
    path = tmp_path / "state" / "runs.jsonl"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(
    "command", ["true", "echo '[]'", "echo ' {} '", "printf '\\n'", "echo '[ ]'"]
)
def test_nothing_found_means_no_model_call(
    tmp_path: Path, fake_api: FakeMessagesAPI, command: str
) -> None:
    result = detect(tmp_path, fake_api, command)
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 0
    assert "model was not asked" in result.stderr
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["tokens_in"], run["tokens_out"], run["cost_usd"]) == ("ok", 0, 0, 0)
    assert run["model"] is None


def test_a_finding_from_the_model(tmp_path: Path, fake_api: FakeMessagesAPI) -> None:
    result = detect(tmp_path, fake_api)
    assert result.returncode == 0, result.stderr
    [request] = fake_api.requests
    body = request["body"]
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 1024
    assert body["tool_choice"]["type"] == "tool"
    assert body["tool_choice"]["name"] == "report_finding"
    assert body["tools"][0]["name"] == "report_finding"
    [message] = body["messages"]
    assert "overdue reminders" in message["content"]
    assert REMINDERS in message["content"]
    assert key_sent(request["headers"]) == API_KEY
    [finding] = inbox(tmp_path / "state")
    assert finding["overdue"] == FINDING_INPUT["overdue"]
    assert finding["message"] == FINDING_INPUT["message"]
    assert finding["source"] == "reminder-check"
    assert finding["timestamp"].endswith("Z")
    [run] = runs(tmp_path / "state")
    assert run["result"] == "ok"
    assert (run["tokens_in"], run["tokens_out"]) == (1000, 200)
    assert run["cost_usd"] == pytest.approx(1000 * 1.0 / 1e6 + 200 * 5.0 / 1e6)
    assert run["model"] == "claude-haiku-4-5"
    assert run["finding_written"] is True


def test_the_model_reports_nothing(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    fake_api.default = "nothing"
    result = detect(tmp_path, fake_api, run=runner_in_process)
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 1
    assert not (tmp_path / "state" / "inbox").exists()
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["finding_written"], run["tokens_in"]) == ("ok", False, 1000)


def test_one_malformed_reply_is_retried(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    fake_api.script = ["malformed", "finding"]
    result = detect(tmp_path, fake_api, run=runner_in_process)
    assert result.returncode == 0, result.stderr
    assert fake_api.calls == 2
    retry = fake_api.requests[1]["body"]["messages"]
    assert retry[-1]["content"][0]["type"] == "tool_result"
    assert retry[-1]["content"][0]["is_error"] is True
    assert len(inbox(tmp_path / "state")) == 1
    [run] = runs(tmp_path / "state")
    assert (run["tokens_in"], run["tokens_out"]) == (2000, 400)


@pytest.mark.parametrize("reply", ["malformed", "no-tool"])
def test_malformed_twice_is_an_api_error(
    tmp_path: Path, fake_api: FakeMessagesAPI, reply: str, runner_in_process: RunnerCall
) -> None:
    fake_api.default = reply
    result = detect(tmp_path, fake_api, run=runner_in_process)
    assert result.returncode == 6
    assert fake_api.calls == 2
    assert "malformed reply twice" in result.stderr
    assert not (tmp_path / "state" / "inbox").exists()
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["exit_status"]) == ("api-error", 6)
    assert (run["tokens_in"], run["tokens_out"]) == (2000, 400)


@pytest.mark.parametrize(("status", "retries"), [("429", 1), ("529", 0)])
def test_overload_and_rate_limit_after_retries(
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
    status: str,
    retries: int,
    runner_in_process: RunnerCall,
) -> None:
    fake_api.default = status
    result = detect(tmp_path, fake_api, run=runner_in_process, max_retries=retries)
    assert result.returncode == 6
    assert fake_api.calls == 1 + retries, "the SDK's retries are set by llm.max_retries"
    assert f"API error {status}" in result.stderr
    [run] = runs(tmp_path / "state")
    assert (run["result"], run["tokens_in"]) == ("api-error", 0)


def test_refusal_is_an_api_error(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    fake_api.default = "refusal"
    result = detect(tmp_path, fake_api, run=runner_in_process)
    assert result.returncode == 6
    assert fake_api.calls == 1
    assert "refused" in result.stderr
    assert runs(tmp_path / "state")[0]["result"] == "api-error"


def test_a_hanging_api_times_out(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    fake_api.default = "hang"
    fake_api.hang_seconds = 4
    result = detect(tmp_path, fake_api, run=runner_in_process, timeout=1)
    assert result.returncode == 6
    assert "timed out after 1s" in result.stderr
    assert runs(tmp_path / "state")[0]["result"] == "api-error"


def test_the_key_comes_only_from_the_credential_file(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    env = {
        "CREDENTIALS_DIRECTORY": str(credentials(tmp_path)),
        "ANTHROPIC_API_KEY": ENV_KEY,
        "ANTHROPIC_AUTH_TOKEN": ENV_KEY,
    }
    result = detect(tmp_path, fake_api, env=env)
    assert result.returncode == 0, result.stderr
    headers = fake_api.requests[0]["headers"]
    assert key_sent(headers) == API_KEY
    assert ENV_KEY not in str(headers)


@pytest.mark.parametrize("setup", ["no-directory", "no-file", "empty-file"])
def test_a_missing_key_is_an_api_error_without_a_call(
    tmp_path: Path, fake_api: FakeMessagesAPI, setup: str
) -> None:
    env = {"ANTHROPIC_API_KEY": ENV_KEY}
    if setup != "no-directory":
        directory = credentials(tmp_path, key="  \n" if setup == "empty-file" else API_KEY)
        if setup == "no-file":
            (directory / "anthropic").unlink()
        env["CREDENTIALS_DIRECTORY"] = str(directory)
    result = detect(tmp_path, fake_api, env=env)
    assert result.returncode == 6
    assert fake_api.calls == 0
    assert "API key" in result.stderr or "CREDENTIALS_DIRECTORY" in result.stderr
    assert ENV_KEY not in result.stderr
    assert runs(tmp_path / "state")[0]["result"] == "api-error"


def test_unknown_price_costs_zero_with_a_note(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    spec = llm_spec(tmp_path, fake_api, "echo something")
    spec["llm"].update(model="claude-future-9", price_per_mtok=None)
    creds = str(credentials(tmp_path))
    result = runner_in_process("job", write_spec(tmp_path, spec), CREDENTIALS_DIRECTORY=creds)
    assert result.returncode == 0, result.stderr
    assert fake_api.requests[0]["body"]["model"] == "claude-future-9"
    [run] = runs(tmp_path / "state")
    assert (run["tokens_in"], run["cost_usd"]) == (1000, 0.0)
    assert "no price known for claude-future-9" in run["notes"][0]


def test_a_prompt_without_a_command_always_asks(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    spec = llm_spec(tmp_path, fake_api, "unused")
    spec["command"] = None
    creds = str(credentials(tmp_path))
    result = runner_in_process("job", write_spec(tmp_path, spec), CREDENTIALS_DIRECTORY=creds)
    assert result.returncode == 0, result.stderr
    [message] = fake_api.requests[0]["body"]["messages"]
    assert "command_output" not in message["content"]
    assert len(inbox(tmp_path / "state")) == 1


def test_a_failing_command_is_not_sent_to_the_model(
    tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    result = detect(tmp_path, fake_api, "echo data; exit 2")
    assert result.returncode == 1
    assert fake_api.calls == 0

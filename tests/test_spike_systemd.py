"""A token spike under a real systemd user manager: a detector run through its unit at 5x its
`expected_tokens` raises one alert, which the coordinator delivers beside the run's finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import apply_config
from tests.runner_support import FakeMessagesAPI, fake_api
from tests.test_try_systemd import LLM_CONFIG

pytestmark = pytest.mark.systemd
__all__ = ["fake_api"]  # a fixture


def test_a_run_at_five_times_its_expected_tokens_raises_one_alert(
    vigil, vigil_manager, tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "anthropic").write_text("sk-ant-test\n")
    config_text = LLM_CONFIG.replace(
        "    prompt: Report the overdue reminders.\n",
        "    prompt: Report the overdue reminders.\n"
        "    expected_tokens: {{input: 1000, output: 200}}\n",
    )
    fake_api.usage = (5000, 1000)  # 6,000 tokens: 5x the 1,200 expected
    state = apply_config(vigil, tmp_path, "tl", config_text, secrets=secrets, api=fake_api.url)
    config = tmp_path / "tl.yaml"
    assert vigil("run", "detector", "--wait", "--config", config).exit_code == 0

    def delivered() -> list[dict[str, object]]:
        path = state / "deliveries.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    messages = vigil_manager.wait_for(
        lambda: any("5.0x its expected" in str(m["body"]) for m in delivered()) and delivered(),
        30,
        what="the spike alert",
    )
    body = "\n".join(str(m["body"]) for m in messages)
    assert body.count("used 6,000 tokens in one run, 5.0x its expected") == 1, body
    assert fake_api.calls == 1

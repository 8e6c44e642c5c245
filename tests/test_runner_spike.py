"""Token spikes: a model run far above what its job usually takes raises one alert naming the
job and what drove it. Real runner processes against the loopback Messages API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runner_support import (
    FakeMessagesAPI,
    RunnerCall,
    fake_api,
    inbox,
    llm_spec,
    run_job,
    runner_in_process,
    runs,
)

__all__ = ["fake_api", "runner_in_process"]

OUTPUT = "r1 Pay rent 3 days"


def spikes(state: Path) -> list[dict[str, object]]:
    return [f for f in inbox(state) if f.get("kind") == "token-spike"]


def run(runner: RunnerCall, tmp_path: Path, spec: dict[str, object]) -> None:
    result = run_job(runner, tmp_path, spec)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("times", "alerted"), [(5, True), (3, False)])
def test_a_run_far_above_its_expected_tokens_raises_one_alert(
    tmp_path: Path,
    fake_api: FakeMessagesAPI,
    runner_in_process: RunnerCall,
    times: int,
    alerted: bool,
) -> None:
    """expected_tokens 1,200 a call; a run of 5x raises one alert, 3x (the limit) none."""
    spec = llm_spec(tmp_path, fake_api, f"echo '{OUTPUT}'", expected_tokens=1200)
    fake_api.usage = (1000 * times, 200 * times)
    run(runner_in_process, tmp_path, spec)
    state = tmp_path / "state"
    found = spikes(state)
    assert len(found) == (1 if alerted else 0)
    if alerted:
        [alert] = found
        text = str(alert["message"])
        assert text.startswith("reminder-check used 6,000 tokens in one run, 5.0x its expected")
        assert "(1,200): 5,000 input tokens" in text and "1,000 output tokens" in text
        assert f"command's output in the prompt: {len(OUTPUT) + 1} characters" in text
        assert alert["source"] == "vigil"
        assert "token spike alert written to the inbox" in json.dumps(runs(state)[-1])


def test_without_expected_tokens_the_median_of_the_jobs_last_runs_decides(
    tmp_path: Path, fake_api: FakeMessagesAPI, runner_in_process: RunnerCall
) -> None:
    """Fewer than five model runs make no median; then 3,500 tokens are within 3x the median
    of 1,200 and 3,700 are not. Another job's runs never count."""
    spec = llm_spec(tmp_path, fake_api, f"echo '{OUTPUT}'", expected_tokens=None)
    state = tmp_path / "state"
    state.mkdir(parents=True, exist_ok=True)
    other = {"job": "other", "config": "bruba", "tokens_in": 10, "tokens_out": 0}
    (state / "runs.jsonl").write_text("".join(json.dumps(other) + "\n" for _ in range(9)))
    for used in [(4000, 800)] + [(1000, 200)] * 4:  # no median yet: nothing judged
        fake_api.usage = used
        run(runner_in_process, tmp_path, spec)
    assert spikes(state) == []
    fake_api.usage = (2900, 600)
    run(runner_in_process, tmp_path, spec)
    assert spikes(state) == []
    fake_api.usage = (3100, 600)
    run(runner_in_process, tmp_path, spec)
    [alert] = spikes(state)
    assert "3,700 tokens in one run, 3.1x the median of its last 6 model runs (1,200)" in str(
        alert["message"]
    )

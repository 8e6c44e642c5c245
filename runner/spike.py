"""Token spikes: a model run far above what its job usually takes raises one alert that says
what drove it, so that a wake-up path loading too much context is filtered, not paid for.

"Usually" is the job's `expected_tokens` (one call, input and output), else the median of its
last model runs in runs.jsonl; too few runs, and nothing is judged yet.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median

from runner.history import Usage, runs
from runner.statefile import own_alert

FACTOR = 3
"""A run above this many times its usual tokens is a spike."""
TRAILING = 20
"""How many of the job's latest model runs the median is taken over."""
FEWEST = 5
"""Fewer model runs than this, and there is no median to judge by."""
KIND = "token-spike"


def trailing_medians(state_dir: str, config: str) -> dict[str, tuple[int, int]]:
    """Per job: the median tokens of its last TRAILING model runs, and how many there were
    (for the spike check and `vigil cost`)."""
    used: dict[str, list[int]] = {}
    for record in runs(state_dir):
        tokens = Usage.of_run(record).tokens
        if tokens > 0 and record.get("config", config) == config:
            used.setdefault(str(record.get("job")), []).append(tokens)
    return {
        job: (int(median(last := tokens[-TRAILING:])), len(last)) for job, tokens in used.items()
    }


def usual_tokens(
    state_dir: str, config: str, job: str, expected: int | None
) -> tuple[int, str] | None:
    """(tokens, what they are) a run of `job` usually takes, or None when not known yet."""
    if expected:
        return expected, "its expected_tokens"
    found = trailing_medians(state_dir, config).get(job)
    if found is None or found[1] < FEWEST:
        return None
    return found[0], f"the median of its last {found[1]} model runs"


def check(
    state_dir: str,
    config: str,
    job: str,
    expected: int | None,
    used: tuple[int, int],
    command_output: str | None,
    now: datetime,
) -> bool:
    """Alert (once, for this run) when `used` (input, output tokens) is a spike; True if so."""
    tokens = sum(used)
    usual = usual_tokens(state_dir, config, job, expected)
    if usual is None or tokens <= FACTOR * usual[0]:
        return False
    limit, what = usual
    output = len(command_output or "")
    text = (
        f"{job} used {tokens:,} tokens in one run, {tokens / limit:.1f}x {what} ({limit:,}): "
        f"{used[0]:,} input tokens (the command's output in the prompt: {output:,} "
        f"characters) and {used[1]:,} output tokens. If it loaded more context than it "
        "needs, filter what reaches the model."
    )
    own_alert(state_dir, f"{KIND}:{job}:{now.isoformat()}", text, now, KIND, job)
    return True

"""The loopback Messages API of tests/runner_support.py, answering each call with a finding that
names itself (`llm <token>`) and logging the simulated time, job and tokens of every call."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from tests.runner_support import FakeMessagesAPI, message_reply, tool_use

PROMPTS = {"Triage this.": "triage", "Triage this too.": "triage-b", "And this.": "triage-c"}


class SimAPI(FakeMessagesAPI):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.now: datetime | None = None
        self.delay = 0.0
        self.calls_made: list[dict[str, Any]] = []

    def reply(self, _kind: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        time.sleep(self.delay)  # a slow model widens the window concurrent runs race in
        text = str(body)
        job = next((PROMPTS[p] for p in sorted(PROMPTS, key=len, reverse=True) if p in text), "?")
        with self.lock:
            token = f"llm {self.label}-{len(self.calls_made) + 1:04d}"
            tokens = self.usage[0] + self.usage[1]
            self.calls_made.append({"at": self.now, "job": job, "token": token, "tokens": tokens})
        usage = {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}
        content = [tool_use({"message": token})]
        return 200, {}, message_reply(self.calls, body.get("model"), content, usage)

"""How long `vigil try` waits for a run: as long as the job's service may run (its command,
its model calls with a retry, a chain's wait: TimeoutStartSec=), not only the command's
`timeout`, so a slow model call is not cut off by the try itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from compiler.generate.build import build
from compiler.install.generations import Installation
from compiler.install.trial import START_MARGIN, Trier
from compiler.language.model.types import parse_duration
from compiler.layout import Scope
from tests.systemd_manager import skip_or_fail

CONFIG = """\
name: demo
secrets: {anthropic: /tmp/vigil-key}
llm: {api_key: anthropic, timeout: 5m}
jobs:
  detector:
    schedule: "@daily"
    run: "echo news"
    timeout: 10s
    prompt: Report the news.
channels: {sink: {file: /tmp/x.jsonl}}
coordinator: {deliver_to: [sink]}
"""


def test_a_try_waits_as_long_as_its_service_may_run(tmp_path: Path) -> None:
    if shutil.which("systemctl") is None:
        skip_or_fail("no systemctl")
    path = tmp_path / "demo.yaml"
    path.write_text(CONFIG)
    validated, tree = build(path)
    unit = tree["units/demo-detector.service"].content.decode("utf-8")
    limit = next(line for line in unit.splitlines() if line.startswith("TimeoutStartSec="))
    service_limit = parse_duration(limit.removeprefix("TimeoutStartSec=").replace("min", "m"))
    assert service_limit > 10 + START_MARGIN  # the model's time is most of it
    trier = Trier(Installation(Scope(), "demo"), validated.config, tree, "x", tmp_path)
    assert trier._timeout("detector") == service_limit + START_MARGIN

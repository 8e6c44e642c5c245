"""Answering back under a real systemd user manager: a silence made at run time is kept in the
state directory, so `vigil rollback` neither revives nor deletes it; an inhibit rule holds a
job's failure while the job it depends on fails, and the real failure handler, the job's
recovery marker and the path-started coordinator release it once that job runs fine again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import apply_config

pytestmark = pytest.mark.systemd

SILENCE_CONFIG = """\
name: ts
state_dir: {state}
jobs:
  noisy:
    schedule: "0 0 1 1 *"
    run: "echo '{{\\"message\\": \\"noise\\"}}'"
{extra}
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""
OTHER_JOB = """\
  other:
    schedule: "0 0 1 1 *"
    run: "true"
"""
INHIBIT_CONFIG = """\
name: ti
state_dir: {state}
jobs:
  gate:
    schedule: "0 0 1 1 *"
    run: "test ! -e {state}/gate-down"
  mail:
    schedule: "0 0 1 1 *"
    run: "exit 4"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
inhibit:
  gate-down:
    while: {{job: gate, kind: failure}}
    hold: {{job: mail, kind: failure}}
coordinator:
  deliver_to: [sink]
"""


def bodies(state: Path) -> list[str]:
    path = state / "deliveries.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["body"] for line in lines]


def state_file(state: Path, name: str) -> dict[str, Any]:
    path = state / "state" / name
    return json.loads(path.read_text()) if path.exists() else {}


def test_a_silence_survives_a_rollback(vigil, vigil_manager, tmp_path: Path) -> None:
    state = apply_config(vigil, tmp_path, "ts", SILENCE_CONFIG, extra="")
    config = tmp_path / "ts.yaml"
    added = vigil("silence", "add", "source=noisy", "--for", "3h", "--config", config)
    assert added.exit_code == 0, added.stderr
    silence_id = added.stdout.strip()
    vigil_manager.wait_for(lambda: state_file(state, "silences.json").get("silences"), 15,
                           what="the silence, applied by the coordinator")  # fmt: skip
    config.write_text(SILENCE_CONFIG.format(state=state, extra=OTHER_JOB))
    assert vigil("apply", config, "--yes").exit_code == 0
    back = vigil("rollback", "--yes", "--name", "ts")
    assert back.exit_code == 0, back.stderr
    config.write_text(SILENCE_CONFIG.format(state=state, extra=""))  # what is installed again
    assert vigil("run", "noisy", "--wait", "--config", config).exit_code == 0
    entries = vigil_manager.wait_for(
        lambda: state_file(state, "silenced.json").get("entries"), 15, what="the silenced alert"
    )
    assert [(e["by"], e["action"], e["text"]) for e in entries] == [
        (f"silence:{silence_id}", "dropped", "noise")
    ]
    assert bodies(state) == []
    listed = vigil("silence", "list", "--json", "--config", config)
    assert [s["id"] for s in json.loads(listed.stdout)] == [silence_id], listed.stdout
    assert vigil("silence", "expire", silence_id, "--config", config).exit_code == 0
    vigil_manager.wait_for(
        lambda: state_file(state, "silences.json")["silences"][0].get("expired"), 15,
        what="the silence expired",
    )  # fmt: skip
    assert vigil("run", "noisy", "--wait", "--config", config).exit_code == 0
    assert vigil_manager.wait_for(lambda: bodies(state), 15, what="the noise") == ["• noise [r1]"]


def test_an_inhibited_failure_goes_out_when_the_job_it_waits_on_recovers(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    state = apply_config(vigil, tmp_path, "ti", INHIBIT_CONFIG)
    config = tmp_path / "ti.yaml"
    (state / "gate-down").write_text("")
    assert vigil("run", "gate", "--wait", "--config", config).exit_code != 0
    [gate] = vigil_manager.wait_for(lambda: bodies(state), 20, what="the gate's failure")
    assert gate.startswith("• ti-gate failed") and gate.endswith("[r1]"), gate
    assert (state / "state" / "failing" / "gate").exists()  # the rule waits on its recovery
    assert vigil("run", "mail", "--wait", "--config", config).exit_code != 0
    vigil_manager.wait_for(
        lambda: state_file(state, "silenced.json").get("entries"), 20, what="mail's failure held"
    )
    held = state_file(state, "held.json")["alerts"]
    assert [(a["by"], a["evidence"]["job"]) for a in held] == [("inhibit:gate-down", "mail")]
    assert len(bodies(state)) == 1
    (state / "gate-down").unlink()
    assert vigil("run", "gate", "--wait", "--config", config).exit_code == 0
    released = vigil_manager.wait_for(lambda: bodies(state)[1:], 20, what="mail's failure")
    assert len(released) == 1 and released[0].startswith("• ti-mail failed"), released
    assert released[0].endswith("[r2]"), released
    assert not (state / "state" / "failing" / "gate").exists()

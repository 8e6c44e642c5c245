"""Edges of `vigil try` and canary applies under a real user manager: signals, credentials
in a shown prompt, unit-file expansion of paths, two tries of one job at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, apply_config
from tests.test_canary_systemd import CLI, canary_in_a_try, live
from tests.test_canary_systemd import CONFIG as CANARY

pytestmark = pytest.mark.systemd


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_canary_leaves_no_stored_generation(
    vigil, vigil_manager, tmp_path: Path, signum: int
) -> None:
    """SIGTERM (kill, `timeout`) and SIGHUP (a closed terminal or ssh session) end a canary like
    Ctrl-C: no stored generation, no try unit, no try directory is left behind."""
    state = apply_config(
        vigil, tmp_path, "cn", CANARY, report="echo v1", reset="true", cleanup="true"
    )
    config = tmp_path / "cn.yaml"
    home = Path(vigil_manager.env["HOME"])
    before = live(home)
    config.write_text(
        CANARY.format(state=state, report="echo started; sleep 60", reset="true", cleanup="true")
    )
    apply = canary_in_a_try(vigil_manager, config)
    runtime = Path(vigil_manager.env["XDG_RUNTIME_DIR"]) / "systemd/user"
    apply.send_signal(signum)
    apply.communicate(timeout=60)
    try:
        left = {
            "live": live(home),
            "runtime unit": bool(list(runtime.glob("cn-report.try-*.service"))),
            "state tries": sorted(p.name for p in state.glob("tries/*")),
        }
        assert left == {"live": before, "runtime unit": False, "state tries": []}
    finally:  # do not leave a 60 s try running in the shared manager
        vigil_manager.systemctl("stop", "cn-report.try-*.service", check=False)
        for unit in runtime.glob("cn-report.try-*.service"):
            unit.unlink()


LLM = """\
name: tk
state_dir: {state}
secrets:
  anthropic: {secrets}/anthropic
  token: {secrets}/token
llm:
  api_key: anthropic
  base_url: http://127.0.0.1:9
  timeout: 5s
jobs:
  detector:
    schedule: "0 0 1 1 *"
    secrets: [token]
    run: >-
      echo \\"using $(cat $CREDENTIALS_DIRECTORY/token)\\";
      echo 'Pay rent: 3 days overdue'
    prompt: Report the overdue reminders.
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


def test_try_no_model_keeps_credentials_out_of_the_prompt_it_shows(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    """`vigil try --no-model` shows the prompt with the job's credential values redacted."""
    del vigil_manager
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "anthropic").write_text("sk-ant-test\n")
    (secrets / "token").write_text("tok-SECRET-4242\n")
    apply_config(vigil, tmp_path, "tk", LLM, secrets=secrets)
    config = tmp_path / "tk.yaml"
    dry = vigil("try", "detector", "--no-model", "--config", config)
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert "Pay rent: 3 days overdue" in dry.stdout  # the prompt was shown
    assert "tok-SECRET-4242" not in dry.stdout + dry.stderr


DOLLAR = """\
name: td
state_dir: "{state}"
jobs:
  reminders:
    schedule: "0 0 1 1 *"
    run: "echo '{{\\"message\\": \\"Pay rent\\"}}'"
channels:
  sink: {{file: "{state}/deliveries.jsonl"}}
coordinator:
  deliver_to: [sink]
"""


def test_try_of_a_state_dir_with_a_dollar(vigil, vigil_manager, tmp_path: Path) -> None:
    """A state directory with `$` in it (systemd expands `${VAR}` in ExecStart=) still gets the
    try's findings and record in the try's own directory."""
    del vigil_manager
    base = tmp_path / "st${HOME}ate"
    base.mkdir()
    state = base / "s"
    config = tmp_path / "td.yaml"
    config.write_text(DOLLAR.format(state=state))
    applied = vigil("apply", config, "--yes")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    tried = vigil("try", "reminders", "--config", config, "--json")
    assert tried.exit_code == 0, tried.stdout + tried.stderr
    (report,) = json.loads(tried.stdout)
    assert report["findings"] and report["messages"], report


SLOW = """\
name: tc
state_dir: {state}
jobs:
  slow:
    schedule: "0 0 1 1 *"
    run: "sleep 3; echo '{{\\"message\\": \\"from the slow job\\"}}'"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


def test_two_tries_of_one_job_at_once_each_see_their_run(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    """Two tries of one job at once (two terminals, a try during a canary) each run in a unit of
    their own and report their own run."""
    state = apply_config(vigil, tmp_path, "tc", SLOW)
    config = tmp_path / "tc.yaml"
    env = {**os.environ, **vigil_manager.env, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CLI, "try", "slow", "--config", str(config), "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outs = [p.communicate(timeout=60) for p in (first, second)]
    del state
    for process, (out, err) in zip((first, second), outs, strict=True):
        if process.returncode == 0:
            (report,) = json.loads(out)
            assert report["run"] is not None and report["findings"], report
        else:  # refusing the second try is fine too: saying so, not passing silently
            assert b"try" in err, err

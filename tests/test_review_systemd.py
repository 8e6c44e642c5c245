"""REVIEW (hostile review of 9f57d97..577b205): failing tests for defects of `vigil try` and
canary applies that need a real user manager. They fail on main as of 577b205."""

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
from tests.test_canary_systemd import CLI, live

pytestmark = pytest.mark.systemd

CANARY = """\
name: cn
state_dir: {state}
jobs:
  report:
    schedule: "0 0 1 1 *"
    run: "{report}"
  reset:
    schedule: "0 0 1 1 *"
    run: "{reset}"
  cleanup:
    schedule: "0 0 1 1 *"
    run: "{cleanup}"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_review_a_terminated_canary_leaves_no_stored_generation(
    vigil, vigil_manager, tmp_path: Path, signum: int
) -> None:
    """compiler/install/canary.py run_canary and install/trial.py Trier.run clean up only in
    `finally`, which Python runs for Ctrl-C (KeyboardInterrupt) but not for SIGTERM (kill,
    `timeout`, a stopped session) or SIGHUP (the terminal or ssh connection closed): the
    stored, never-live generation stays in generations/ (`vigil history` lists it, `vigil
    rollback 2` would install it, the next apply is numbered 3), the try's unit file stays in
    the runtime unit directory and its run keeps going, holding the job's run lock, and the
    try's directory with its copy of state/ stays under <state>/tries/."""
    state = apply_config(
        vigil, tmp_path, "cn", CANARY, report="echo v1", reset="true", cleanup="true"
    )
    config = tmp_path / "cn.yaml"
    home = Path(vigil_manager.env["HOME"])
    before = live(home)
    config.write_text(
        CANARY.format(state=state, report="echo started; sleep 60", reset="true", cleanup="true")
    )
    env = {**os.environ, **vigil_manager.env, "PYTHONPATH": str(ROOT)}
    apply = subprocess.Popen(
        [sys.executable, "-c", CLI, "apply", str(config), "--yes", "--canary"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runtime = Path(vigil_manager.env["XDG_RUNTIME_DIR"]) / "systemd/user"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (runtime / "cn-report.try.service").exists():
        time.sleep(0.1)
    time.sleep(1)
    apply.send_signal(signum)
    apply.communicate(timeout=60)
    try:
        left = {
            "live": live(home),
            "runtime unit": (runtime / "cn-report.try.service").exists(),
            "state tries": sorted(p.name for p in state.glob("tries/*")),
        }
        assert left == {"live": before, "runtime unit": False, "state tries": []}
    finally:  # do not leave a 60 s try running in the shared manager
        vigil_manager.systemctl("stop", "cn-report.try.service", check=False)
        (runtime / "cn-report.try.service").unlink(missing_ok=True)


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


def test_review_try_no_model_keeps_credentials_out_of_the_prompt_it_shows(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    """runner/job.py _show_the_prompt prints the command's stdout unredacted (it is not
    given the redactor; every other echo of the runner goes through _clean). A credential the
    command prints lands in the try's output file under <state>/tries/ and on the terminal
    (and in --json), where a real run's journal would have had it redacted."""
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


def test_review_try_of_a_state_dir_with_a_dollar(vigil, vigil_manager, tmp_path: Path) -> None:
    """compiler/install/trial.py _unit_escape doubles % but not $: systemd expands $VAR and
    ${VAR} in ExecStart= even inside quotes, so `--try <state>/tries/ID` names another
    directory when the (valid) state_dir holds `${...}`: the run's findings and record go
    somewhere else (or the run fails), and the try reports nothing."""
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


def test_review_two_tries_of_one_job_at_once_each_see_their_run(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    """compiler/install/trial.py Trier.run: every try of a job uses the one unit name
    `<name>-<job>.try.service` and nothing keeps two tries apart (busy() looks only at the
    timer's service; the run lock only serialises runs that did start). A second `vigil try`
    (another terminal, or a canary apply meanwhile) overwrites the unit file of a running try;
    its `systemctl start` joins the running start job, so it reports the first try's result
    with no record and no findings from its own directory -- "passed, nothing would be
    delivered" for a job that reports something -- and the first try's `finally` removes the
    unit file under the second."""
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

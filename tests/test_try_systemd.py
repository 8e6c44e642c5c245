"""`vigil try` against a real systemd user manager: a try runs the job as its timer would (same
sandbox: what the sandbox denies fails here too), and shows what the coordinator would deliver
without delivering it or changing any state."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import apply_config
from tests.runner_support import FakeMessagesAPI, fake_api

pytestmark = pytest.mark.systemd
__all__ = ["fake_api"]  # a fixture

CONFIG = """\
name: tr
state_dir: {state}
jobs:
  notes:
    schedule: "0 0 1 1 *"
    # The standard sandbox keeps the home directory read-only: this works by hand only.
    run: "echo started; date > \\"$HOME/vigil-try-notes.txt\\""
  reminders:
    schedule: "0 0 1 1 *"
    run: >-
      echo '{{"overdue": [{{"id": "r1", "title": "Pay rent", "days_overdue": 4}},
      {{"id": "r2", "title": "Call mum", "days_overdue": 1}}]}}'
  quiet:
    schedule: "0 0 1 1 *"
    run: "echo nothing to report"
  probe:
    schedule: "0 0 1 1 *"
    run: "touch {state}/side-effect"
    check: "echo probing; test -d {state}"
nag:
  reminders:
    source: reminders
    items: overdue
    key: id
    days_field: days_overdue
    ladder:
      - min_count: 1
        message: "Reminder: {{title}} is overdue"
      - min_count: 2
        message: "{{title}} overdue for {{days}} days"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


@pytest.fixture
def installed(vigil, vigil_manager, tmp_path: Path) -> tuple[Path, Path]:
    del vigil_manager  # the manager the config is installed into
    state = apply_config(vigil, tmp_path, "tr", CONFIG)
    return tmp_path / "tr.yaml", state


def snapshot(state: Path) -> dict[str, bytes]:
    """Every file of the state directory but the run locks (made once, by the first run)."""
    return {
        str(p.relative_to(state)): p.read_bytes()
        for p in sorted(state.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_a_try_fails_where_the_timer_would_and_a_hand_run_would_not(
    vigil, installed, vigil_manager
) -> None:
    config, state = installed
    home = Path(vigil_manager.env["HOME"])
    by_hand = subprocess.run(
        ["/bin/sh", "-c", 'echo started; date > "$HOME/vigil-try-notes.txt"'],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert by_hand.returncode == 0
    (home / "vigil-try-notes.txt").unlink()

    tried = vigil("try", "notes", "--config", config)
    assert tried.exit_code == 1, tried.stdout + tried.stderr
    assert "== try notes: FAILED, exit status 1, failed" in tried.stdout
    assert "Read-only file system" in tried.stdout
    assert not (home / "vigil-try-notes.txt").exists()

    timer_run = vigil("run", "notes", "--wait", "--config", config)
    assert timer_run.exit_code == tried.exit_code
    # The try left no unit behind, and its run is not in the job's history.
    shown = vigil_manager.systemctl("list-units", "--all", "--no-legend", "tr-*").stdout
    assert "try" not in shown
    records = [json.loads(line) for line in (state / "runs.jsonl").read_text().splitlines()]
    assert [r["job"] for r in records if r["job"] == "notes"] == ["notes"]


def test_a_try_shows_the_exact_message_and_changes_nothing(vigil, installed) -> None:
    config, state = installed
    before = snapshot(state)
    tried = vigil("try", "reminders", "--config", config, "--json")
    assert tried.exit_code == 0, tried.stdout + tried.stderr
    assert snapshot(state) == before  # state, runs.jsonl, inbox, outbox and channel alike
    (report,) = json.loads(tried.stdout)
    assert report["passed"] and len(report["findings"]) == 1
    (message,) = report["messages"]
    assert message["channel"] == "sink"
    changed = {c["file"]: c for c in report["state"]}
    assert changed["nag-reminders.json"]["action"] == "create"
    assert any('"r1"' in line for line in changed["nag-reminders.json"]["diff"])

    text = vigil("try", "reminders", "--config", config)
    assert "Reminder: Pay rent is overdue" in text.stdout
    assert "send to sink (file " in text.stdout
    assert "state that would change (nothing was written):" in text.stdout

    # The timer's run delivers exactly what the try said it would.
    assert vigil("run", "reminders", "--wait", "--config", config).exit_code == 0
    delivered = wait_for_lines(state / "deliveries.jsonl", 1)
    assert (delivered[0]["title"], delivered[0]["body"]) == (message["title"], message["body"])


def test_nothing_to_report_and_a_check(vigil, installed) -> None:
    config, state = installed
    quiet = vigil("try", "quiet", "--config", config)
    assert quiet.exit_code == 0, quiet.stdout + quiet.stderr
    assert "  | nothing to report" in quiet.stdout
    assert "no findings: nothing would be delivered" in quiet.stdout

    check = vigil("try", "probe", "--check", "--config", config)
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "check of probe" in check.stdout and "  | probing" in check.stdout
    assert not (state / "side-effect").exists()


def test_unknown_jobs_and_bad_arguments_are_usage_errors(vigil, installed) -> None:
    config, _ = installed
    unknown = vigil("try", "reminder", "--config", config)
    assert unknown.exit_code == 2
    assert "unknown job 'reminder'; did you mean 'reminders'?" in unknown.stderr
    assert vigil("try", "--config", config).exit_code == 2
    assert vigil("try", "quiet", "--all", "--config", config).exit_code == 2
    no_check = vigil("try", "quiet", "--check", "--config", config)
    assert no_check.exit_code == 2 and "no `check:` command" in no_check.stderr


def wait_for_lines(path: Path, count: int, timeout: float = 20.0) -> list[dict[str, object]]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line]
            if len(lines) >= count:
                return lines
        time.sleep(0.1)
    raise AssertionError(f"{path}: fewer than {count} lines after {timeout}s")


LLM_CONFIG = """\
name: tl
state_dir: {state}
secrets:
  anthropic: {secrets}/anthropic
llm:
  api_key: anthropic
  base_url: {api}
  timeout: 20s
jobs:
  detector:
    schedule: "0 0 1 1 *"
    run: "echo 'Pay rent: 3 days overdue'"
    prompt: Report the overdue reminders.
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


def test_a_try_of_a_detector_calls_the_model_unless_told_not_to(
    vigil, vigil_manager, tmp_path: Path, fake_api: FakeMessagesAPI
) -> None:
    api = fake_api
    del vigil_manager  # the manager the config is installed into
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "anthropic").write_text("sk-ant-test\n")
    state = apply_config(vigil, tmp_path, "tl", LLM_CONFIG, secrets=secrets, api=api.url)
    config = tmp_path / "tl.yaml"

    dry = vigil("try", "detector", "--no-model", "--config", config)
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert api.calls == 0
    assert "  | Report the overdue reminders." in dry.stdout
    assert "  | Pay rent: 3 days overdue" in dry.stdout
    assert re.search(r"estimated \d+ input tokens, at most \d+ output tokens", dry.stdout)
    assert "no findings: nothing would be delivered" in dry.stdout

    real = vigil("try", "detector", "--config", config, "--json")
    assert real.exit_code == 0, real.stdout + real.stderr
    assert api.calls == 1
    (report,) = json.loads(real.stdout)
    assert report["run"]["tokens_in"] == api.usage[0] and len(report["messages"]) == 1
    # The call counts toward the budget; the run is no run of the timer's.
    spend = [json.loads(p.read_text()) for p in (state / "state").glob("spend-*.json")]
    assert spend and spend[0]["jobs"]["detector"]["tokens"] == sum(api.usage)
    assert (
        not (state / "runs.jsonl").exists()
        or '"detector"' not in (state / "runs.jsonl").read_text()
    )
    assert not (state / "deliveries.jsonl").exists()


def test_changed_tries_only_what_differs_from_the_installed_generation(vigil, installed) -> None:
    config, _ = installed
    none = vigil("try", "--changed", "--config", config)
    assert none.exit_code == 0 and "no job is new or changed" in none.stderr
    config.write_text(config.read_text().replace('"echo nothing to report"', '"echo still quiet"'))
    changed = vigil("try", "--changed", "--config", config, "--json")
    assert changed.exit_code == 0, changed.stderr
    assert [t["job"] for t in json.loads(changed.stdout)] == ["quiet"]
    assert "still quiet" in json.loads(changed.stdout)[0]["output"]


def test_a_job_whose_timer_run_is_in_progress_is_not_tried(vigil, installed, vigil_manager) -> None:
    config, state = installed
    config.write_text(config.read_text().replace('"echo nothing to report"', '"sleep 3"'))
    assert vigil("apply", config, "--yes").exit_code == 0
    vigil_manager.systemctl("start", "--no-block", "tr-quiet.service")
    vigil_manager.wait_for(
        lambda: (
            vigil_manager.systemctl("is-active", "tr-quiet.service", check=False).stdout.strip()
            == "activating"
        ),
        what="the timer's run",
    )
    refused = vigil("try", "quiet", "--config", config)
    assert refused.exit_code == 1
    assert "tr-quiet.service is running (since" in refused.stderr
    assert "nothing was tried" in refused.stderr
    assert not (state / "tries").exists()

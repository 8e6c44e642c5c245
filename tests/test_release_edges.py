"""Edges of release discipline without a manager: which failed run is a change's, when a
canary's generation counts as live, and an interrupted switch."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from compiler.install import canary as canary_module
from compiler.install.apply import _Switch
from compiler.install.generations import Installation
from compiler.install.trial import Tried
from compiler.install.workflows import prepare
from compiler.language.model.release import CanaryMode
from compiler.layout import Scope
from tests.conftest import require_systemd_analyze
from tests.test_release import T0, generation, judge, run

CONFIG = """\
name: rv
state_dir: {state}
jobs:
  report:
    schedule: "0 0 1 1 *"
    run: "{report}"
channels:
  sink: {{file: {state}/deliveries.jsonl}}
coordinator:
  deliver_to: [sink]
"""


# --- a run of the old generation that fails after the switch -------------------------------


def test_a_failed_run_that_started_before_the_change_is_not_the_changes(
    tmp_path: Path,
) -> None:
    """A run of generation 6 still going while generation 7 is applied, failing after the switch,
    is generation 6's failure: no note about the change, never an automatic rollback."""
    data, state = tmp_path / "data", tmp_path / "state"
    state.mkdir()
    switch = T0 + timedelta(days=30)
    generation(data, 6, T0, previous=5, jobs_changed={"digest": "new"})
    current = generation(data, 7, switch, previous=6, jobs_changed={"digest": "run changed"})
    for day in range(30):
        run(state, "digest", T0 + timedelta(days=day, hours=1), "ok")
    # generation 6's run: started 2 minutes before the apply, failed (recorded) after it
    run(state, "digest", switch - timedelta(minutes=2), "failed")
    note = judge(current, state)  # with its record, which says when it started
    assert note is None, note.words
    # Without a record (killed before writing one) it may be either's: named, not rolled back.
    unrecorded = judge(current, state, recorded=False)
    assert unrecorded is not None and unrecorded.rollback_to is None


# --- a canary's `created` is when it went live ------------------------------------------------


@pytest.fixture
def installed(tmp_path: Path, vigil) -> tuple[Path, Scope, Path]:
    require_systemd_analyze()
    state = tmp_path / "state"
    config = tmp_path / "rv.yaml"
    config.write_text(CONFIG.format(state=state, report="echo v1"))
    root = tmp_path / "root"
    result = vigil("apply", config, "--root", root, "--yes")
    assert result.exit_code == 0, result.stderr
    config.write_text(CONFIG.format(state=state, report="echo v2"))
    return config, Scope(root=root), state


class PassingTrier:
    """Stands in for the real Trier (which needs a manager): every try passes, and takes a
    little while, as a real one does."""

    ended: list[float] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def busy(self, job: str) -> None:
        del job

    def run(self, job: str, mode: CanaryMode, *, no_model: bool = False) -> Tried:
        del no_model
        time.sleep(0.05)
        PassingTrier.ended.append(time.time())
        return Tried(job, f"rv-{job}.try.service", mode, "success", 0, None, "")


def test_canary_generation_created_is_the_switch_not_the_store(
    installed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canary's generation is stamped `created` when it goes live, after its tries (minutes for
    a real job): runs of the old generation during the tries are not "since the change"."""
    config, scope, _state = installed
    monkeypatch.setattr(canary_module, "Trier", PassingTrier)
    PassingTrier.ended = []
    prepared = prepare(config, scope)
    outcome = canary_module.run_canary(prepared, lambda _tried: None)
    assert outcome.generation == 2
    meta = Installation(scope, "rv").meta(2)
    created = datetime.fromisoformat(meta["created"]).timestamp()
    assert PassingTrier.ended, "the changed job was tried"
    assert created >= PassingTrier.ended[-1], (
        f"generation 2 'created' {meta['created']} precedes the end of its tries"
    )


# --- Ctrl-C during a canary's switch -----------------------------------------------------------


def test_ctrl_c_during_the_canary_switch_leaves_a_live_generation(
    installed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the switch (after `current` moved, in daemon-reload) puts the old generation
    back, and `current` never names a removed tree."""
    config, scope, _state = installed
    monkeypatch.setattr(canary_module, "Trier", PassingTrier)

    def interrupted(_self) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_Switch, "_reload", interrupted)
    prepared = prepare(config, scope)
    with pytest.raises(KeyboardInterrupt):
        canary_module.run_canary(prepared, lambda _tried: None)
    installation = Installation(scope, "rv")
    current = installation.data_dir / "current"
    assert current.resolve().is_dir(), f"current -> {os.readlink(current)}, which no longer exists"
    assert installation.current() == 1, "the old generation is live again"

"""Saying when a failing job recovered (`notify_recovered`): the failure handler leaves a marker,
state/failing/<job>, holding the failed run's invocation id; the job's next successful run finds
it, drops a `recovered` finding into the inbox and then removes it.

The finding's id comes from the marker, so a run killed between the two steps writes the same
finding again on its next success (the coordinator knows the id), never a second recovery of
another failure; a later failure rewrites the marker, and its recovery gets that run's id. A job
whose recovery is not announced never has a marker: its runs pay one stat() for this.
"""

from __future__ import annotations

import os

from runner.clock import iso
from runner.contract import RECOVERED_KIND, failing_marker
from runner.fsatomic import read_state, state_path, write_finding, write_state

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from datetime import datetime


def marker_path(state_dir: str, job: str) -> str:
    return state_path(state_dir, failing_marker(job))


def mark_failing(state_dir: str, job: str, invocation_id: str, now: datetime) -> None:
    """Record that `job` failed (the run `invocation_id`; '' when systemd gave none), keeping
    when it began to fail."""
    since = _read(state_dir, job).get("since") or iso(now)
    marker: dict[str, object] = {"invocation_id": invocation_id, "failed": iso(now), "since": since}
    write_state(state_dir, failing_marker(job), marker)


def announce_recovery(state_dir: str, job: str, now: datetime) -> bool:
    """After a successful run: the `recovered` finding if the job was failing, then the marker
    removed. False when it was not failing. An OSError leaves the marker for the next run."""
    path = marker_path(state_dir, job)
    if not os.path.exists(path):
        return False
    marker = _read(state_dir, job)
    invocation = marker.get("invocation_id")
    failed = invocation or f"{job}-{marker.get('failed') or _mtime(path)}"
    finding: dict[str, object] = {
        "source": "vigil",
        "kind": RECOVERED_KIND,
        "job": job,
        "timestamp": iso(now),
        "id": f"recovered-{failed}",
        "since": marker.get("since"),
    }
    write_finding(state_dir, finding, now)
    os.unlink(path)
    return True


def _read(state_dir: str, job: str) -> dict[str, str]:
    """The marker's fields that are strings; {} for a missing or unreadable marker."""
    data = read_state(state_dir, failing_marker(job))
    return {key: value for key, value in data.items() if isinstance(value, str)}


def _mtime(path: str) -> str:
    try:
        return str(int(os.stat(path).st_mtime))
    except OSError:
        return "unknown"

"""A failure after a change: when a job the live generation changed fails and has not
succeeded since that generation went live, the failure alert says so, with what the previous
generation did and the rollback that undoes it; with `release.auto_rollback` the failure handler
asks for that rollback itself (once: a generation made by a rollback never rolls back again).

The generation is read from where the handler runs: its spec is `<generation>/specs/...` and
the compiler wrote `<generation>/generation.json` beside it (runner.contract.GENERATION_META).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime

from runner.clock import iso, parse_iso
from runner.contract import GENERATION_META, ROLLBACK_REQUEST, rollback_unit, service
from runner.exitcodes import MISSED
from runner.fsatomic import describe, write_state
from runner.history import runs_of
from runner.systemctl import systemctl


class Generation:
    """An installed generation, as the handler's own spec path shows it."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.realpath(directory)
        name = os.path.basename(self.directory)
        self.number = int(name) if name.isdigit() else None
        self.meta = _read_json(os.path.join(self.directory, GENERATION_META))

    @property
    def created(self) -> datetime | None:
        return parse_iso(self.meta.get("created"))

    @property
    def previous(self) -> int | None:
        value = self.meta.get("previous")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def made_by_rollback(self) -> bool:
        return str(self.meta.get("reason") or "").startswith(("rollback", "auto-rollback"))

    def changed(self, job: str) -> str | None:
        """How this generation changed `job` ("run changed", "new"), or None."""
        jobs = self.meta.get("jobs_changed")
        words = jobs.get(job) if isinstance(jobs, dict) else None
        return words if isinstance(words, str) else None

    def sibling(self, number: int) -> Generation:
        return Generation(os.path.join(os.path.dirname(self.directory), str(number)))


def of_spec(spec_path: str) -> Generation:
    """The generation a spec file belongs to (`<generation>/specs/<spec>`)."""
    return Generation(os.path.dirname(os.path.dirname(os.path.abspath(spec_path))))


class AfterChange:
    """What the failure alert adds, and whether to roll back."""

    def __init__(self, words: str, rollback_to: int | None) -> None:
        self.words = words
        self.rollback_to = rollback_to


def after_change(
    generation: Generation,
    state_dir: str,
    job: str,
    auto_rollback: bool,
    failed: dict[str, object] | None = None,
) -> AfterChange | None:
    """The note for the failed run `failed` (its record; None when it left none, killed by
    systemd) of `job`, when the live generation changed it and no run of it has succeeded
    since; None otherwise. A run without a record may have been the previous generation's (a
    run in progress during the switch): it is named, never rolled back for."""
    how, since = generation.changed(job), generation.created
    if how is None or since is None or generation.number is None:
        return None
    if generation.previous is None:
        return None  # the first install: no change from anything, nothing to go back to
    failed_start = parse_iso(failed.get("start")) if failed else None
    if failed_start is not None and failed_start < since:
        return None  # the previous generation's run, ending after the switch
    tries = _failures_since(state_dir, job, since)
    if tries is None:
        return None  # it has worked since the change: this failure is not the change's
    first = "first run" if tries <= 1 else f"{tries} runs, none succeeded,"
    words = f"{first} since generation {generation.number} ({how})"
    previous = generation.previous
    if previous is None or not os.path.isdir(generation.sibling(previous).directory):
        return AfterChange(words, None)
    words += "; " + _record_of(generation.sibling(previous), since, state_dir, job)
    if generation.made_by_rollback:
        return AfterChange(words + " (this generation is a rollback: not rolled back again)", None)
    if not auto_rollback or failed_start is None:
        return AfterChange(f"{words}; `vigil rollback {previous}`", None)
    return AfterChange(words, previous)


def _failures_since(state_dir: str, job: str, since: datetime) -> int | None:
    """How many runs of `job` started since `since`, all failed; None when one succeeded."""
    results = [record.get("result") for record in _runs_between(state_dir, job, since, None)]
    return None if "ok" in results else len(results)


def _record_of(previous: Generation, until: datetime, state_dir: str, job: str) -> str:
    """ "generation 6 ran it 31 times without failure" (from runs.jsonl, as far as it goes)."""
    results = [r.get("result") for r in _runs_between(state_dir, job, previous.created, until)]
    ran, failed = len(results), sum(result != "ok" for result in results)
    if not ran:
        return f"generation {previous.number} did not run it"
    times = "once" if ran == 1 else f"{ran} times"
    verdict = " without failure" if not failed else f"; {failed} failed"
    return f"generation {previous.number} ran it {times}{verdict}"


def request_rollback(
    config: str, scope: str, state_dir: str, judged: Generation, to: int, job: str, reason: str,
    now: datetime,
) -> str:  # fmt: skip
    """Record why, then start `<config>-rollback@<to>.service` (it runs `vigil rollback`,
    which goes ahead only while `judged` is still live); returns the words for the alert."""
    request: dict[str, object] = {
        "version": 1,
        "from": judged.number,
        "to": to,
        "job": job,
        "reason": reason,
        "requested": iso(now),
    }
    unit = service(f"{rollback_unit(config)}@{to}")
    try:
        write_state(state_dir, ROLLBACK_REQUEST, request)
    except OSError as error:
        why: str | None = describe(error)
    else:
        why = systemctl(scope, "--no-block", "start", unit)[1]
    if why is not None:
        return f"the automatic rollback could not be started ({why}): `vigil rollback {to}`"
    return f"rolling back to generation {to} (release.auto_rollback; `vigil history` says why)"


def _runs_between(
    state_dir: str, job: str, since: datetime | None, until: datetime | None
) -> Iterator[dict[str, object]]:
    """The runs of `job` (not its missed firings) started in [since, until)."""
    for record in runs_of(state_dir, job):
        started = parse_iso(record.get("start"))
        if started is None or record.get("result") == MISSED:
            continue
        if (since is None or started >= since) and (until is None or started < until):
            yield record


def _read_json(path: str) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

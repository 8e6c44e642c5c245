"""`vigil watches`, `vigil ack` and `vigil watch arm`.

The coordinator is the only writer of watch state. These commands read that state, and to change
it they drop a finding from the source `vigil` into the inbox (ack, arm), which the coordinator
applies on its next run, started at once by the path unit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import UsageError, Warn, did_you_mean
from compiler.language.duration import format_duration
from compiler.operate.inspect_state import read_checked
from compiler.operate.setup import ConfigView
from runner.alerts import WATCH_KEY
from runner.contract import watch_state_file
from runner.fsatomic import write_finding
from runner.rules.watches import kind_of
from runner.stateshapes import WATCH

if TYPE_CHECKING:
    from runner.spectypes import WatchJSON


def _instances(state: Path, name: str, warn: Warn) -> dict[str, Any]:
    data = read_checked(state, watch_state_file(name), WATCH, warn)
    instances = data.get("instances")
    return instances if isinstance(instances, dict) else {}


def awaits(watch: WatchJSON) -> str:
    if watch["deadline"]:
        target = watch["deadline"]
        what = (
            f"job {target['job']} to succeed"
            if target["job"]
            else (
                f"a finding from {target['source']}"
                if target["source"]
                else f"{target['file']} to change"
            )
        )
        return f"{what} by {target['at']}"
    if watch["match"]:
        return f"a matching finding from {watch['match']['source']}"
    if watch["file"]:
        file = watch["file"]
        return f"{file['path']} within {format_duration(file['within'])} of arming"
    assert watch["absence"] is not None
    every = format_duration(watch["absence"]["for"])
    return f"a finding from {watch['absence']['source']} at least every {every}"


def watch_rows(config: ConfigView, state: Path, warn: Warn) -> list[dict[str, Any]]:
    from compiler.operate.inspect_state import open_codes

    rows: list[dict[str, Any]] = []
    codes = open_codes(state, warn) if config.watches else {}
    for name, watch in config.watches.items():
        instances = _instances(state, name, warn)
        if not instances:
            rows.append(
                {
                    "watch": name,
                    "kind": kind_of(watch),
                    "key": "-",
                    "state": "idle",
                    "awaits": awaits(watch),
                }
            )
        for key, instance in sorted(instances.items()):
            handoff = instance.get("handoff") or {}
            rows.append(
                {
                    "code": codes.get(f"{WATCH_KEY}{name}:{key}"),
                    "watch": name,
                    "kind": kind_of(watch),
                    "key": key,
                    "state": instance.get("state"),
                    "since": instance.get("at") or instance.get("armedAt"),
                    "deadline": instance.get("deadline"),
                    "awaits": awaits(watch),
                    "evidence": _evidence(instance.get("evidence")),
                    "handoff": _handoff(handoff),
                }
            )
    return rows


def _evidence(evidence: Any) -> str | None:
    if not evidence:
        return None
    if isinstance(evidence, dict):
        return ", ".join(f"{k}={v}" for k, v in evidence.items())
    return str(evidence)


def _handoff(handoff: dict[str, Any]) -> str | None:
    if not handoff:
        return None
    status = handoff.get("exit_status")
    return "accepted" if status == 0 else f"refused (exit {status})"


def drop_control(state: Path, finding: dict[str, Any]) -> Path:
    """Put a control finding into the inbox the way the runner's writers do."""
    now = datetime.now(UTC)
    finding = {"source": "vigil", "timestamp": now.isoformat(timespec="seconds"), **finding}
    return Path(write_finding(str(state), finding, now))


def check_instance(
    config: ConfigView, state: Path, watch: str, key: str | None, warn: Warn
) -> None:
    """That the config has the watch and, given a key, the watch has that instance."""
    _check_watch(config, watch)
    if key is not None:
        known = sorted(_instances(state, watch, warn))
        if key not in known:
            listed = f"known keys: {', '.join(known)}" if known else "it has no instances yet"
            raise UsageError(f"{watch} has no instance {key!r}; {listed}")


def ack(config: ConfigView, state: Path, watch: str, key: str | None, warn: Warn) -> Path:
    check_instance(config, state, watch, key, warn)
    return drop_control(state, {"kind": "ack", "watch": watch, "key": key})


def arm(config: ConfigView, state: Path, watch: str, key: str, within: int | None) -> Path:
    _check_watch(config, watch)
    if within is not None and within <= 0:
        raise UsageError(f"--within must be more than 0s (got {within}s)")
    if config.watches[watch]["file"] is None:
        raise UsageError(
            f"{watch} is a {kind_of(config.watches[watch])} watch; only file watches are armed"
        )
    return drop_control(state, {"kind": "arm", "watch": watch, "key": key, "within": within})


def _check_watch(config: ConfigView, name: str) -> None:
    if name not in config.watches:
        raise UsageError(did_you_mean(name, config.watches, "watch"))

"""`vigil snooze`, `vigil silence add|list|expire` and `vigil inbox --silenced`.

Snoozes and silences live in the state directory, not in the config: a rollback neither revives
nor deletes them. The coordinator is their one writer; these commands read its files and, to
change them, drop a control finding (source `vigil`) into the inbox, which it applies on its next
pass (runner.talk). What they read of the config is the installed generation (operate/setup.py).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.errors import UsageError, Warn
from compiler.language.duration import format_duration
from compiler.operate.inspect_state import read_checked
from compiler.operate.watchctl import check_instance, drop_control
from runner.alerts import WATCH_KEY
from runner.clock import iso, parse_iso, zone
from runner.contract import ALERT_KINDS, INBOX, REFS, SILENCED, SILENCES
from runner.findings import VIGIL_SOURCE
from runner.stateshapes import REFS as REFS_SHAPE
from runner.stateshapes import SILENCED as SILENCED_SHAPE
from runner.stateshapes import SILENCES as SILENCES_SHAPE
from runner.talk.matchers import MATCH_FIELDS, describe
from runner.talk.when import DURATION, until

if TYPE_CHECKING:
    from compiler.operate.setup import ConfigView

REF = re.compile(r"r[0-9]+")
"""A reference code as messages show it (`[r7]`)."""
EXPIRED_SHOWN = timedelta(hours=24)
"""How long `silence list` still shows an expired silence without --all."""
EARLIEST = datetime.min.replace(tzinfo=UTC)


def when_text(moment: datetime, timezone: str) -> str:
    """Tue 8 Dec 09:00 EST: the moment in the config's time zone."""
    local = moment.astimezone(zone(timezone))
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


def ends_at(for_: str | None, until_: str | None, now: datetime, timezone: str) -> datetime:
    """When `--for DURATION` or `--until TIME` ends (exactly one is given)."""
    if (for_ is None) == (until_ is None):
        raise UsageError("give one of --for (2h, 1d) and --until (tomorrow 9:00, mon 8:00)")
    if for_ is not None and not DURATION.fullmatch(" ".join(for_.lower().split())):
        raise UsageError(f"--for: {for_!r} is not a duration (say 30m, 2h, 1d); or use --until")
    option, text = ("--for", for_) if for_ is not None else ("--until", until_)
    assert text is not None
    try:
        return until(text, now, timezone)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None


# --- snooze ------------------------------------------------------------------------------------


def snooze(
    config: ConfigView, state: Path, target: str, key: str | None, ends: datetime, warn: Warn
) -> str:
    """Snooze an item by its code (`r7`) or a watch (one instance with `key`) until `ends`;
    what was snoozed, as the person named it."""
    if REF.fullmatch(target):
        if key is not None:
            raise UsageError(f"{target} is a reference code: it takes no KEY")
        _check_open(state, target, warn)
        drop_control(state, {"kind": "snooze", "ref": target, "until": iso(ends)})
        return target
    check_instance(config, state, target, key, warn)
    _check_told(state, target, key, warn)
    drop_control(state, {"kind": "snooze", "watch": target, "key": key, "until": iso(ends)})
    return f"{target} {key}" if key else target


def _check_told(state: Path, watch: str, key: str | None, warn: Warn) -> None:
    """UsageError unless the watch (the instance) has an alert the person was told, open."""
    codes = read_checked(state, REFS, REFS_SHAPE, warn).get("refs") or {}
    prefix = f"{WATCH_KEY}{watch}:" + (key or "")
    told = [
        entry["subject"].removeprefix(f"{WATCH_KEY}{watch}:")
        for entry in codes.values()
        if entry.get("told")
        and not entry.get("closed")
        and (entry["subject"] == prefix if key else entry["subject"].startswith(prefix))
    ]
    if not told:
        what = f"{watch} {key}" if key else watch
        raise UsageError(f"{what} has no open alert to snooze (`vigil watches` shows its codes)")


def _check_open(state: Path, code: str, warn: Warn) -> None:
    """UsageError unless `code` names an open item (state/refs.json)."""
    codes = read_checked(state, REFS, REFS_SHAPE, warn).get("refs") or {}
    entry = codes.get(code)
    if isinstance(entry, dict) and entry.get("told") and not entry.get("closed"):
        return
    open_codes = sorted(
        (c for c, e in codes.items() if e.get("told") and not e.get("closed")),
        key=lambda c: int(c[1:]),
    )
    listed = f"open: {', '.join(open_codes)}" if open_codes else "nothing is open"
    if isinstance(entry, dict) and entry.get("closed"):
        raise UsageError(f"{code} is closed ({entry.get('why')}); {listed}")
    raise UsageError(f"{code} is no item's code; {listed}")


# --- silence add -------------------------------------------------------------------------------


def parse_matchers(texts: list[str]) -> dict[str, list[str]]:
    """`field=glob` each: fields ANDed, the same field twice ORed."""
    matchers: dict[str, list[str]] = {}
    for text in texts:
        field, equals, glob = text.partition("=")
        if not equals or not glob:
            example = "such as job=mail-* or kind=failure"
            raise UsageError(f"matcher {text!r}: write FIELD=GLOB, {example}")
        if field not in MATCH_FIELDS:
            fields = ", ".join(MATCH_FIELDS)
            raise UsageError(f"matcher {text!r}: unknown field {field!r}; the fields are {fields}")
        if field == "kind" and not any(fnmatchcase(kind, glob) for kind in ALERT_KINDS):
            kinds = ", ".join(ALERT_KINDS)
            raise UsageError(f"matcher {text!r}: no alert kind matches it; the kinds are {kinds}")
        globs = matchers.setdefault(field, [])
        if glob not in globs:
            globs.append(glob)
    return matchers


def add_silence(
    state: Path,
    matchers: dict[str, list[str]],
    now: datetime,
    ends: datetime,
    comment: str | None,
    warn: Warn,
) -> str:
    """Drop the silence-add finding; the new silence's id."""
    taken = {row["id"] for row in silence_rows(state, now, warn, shown_all=True)}
    silence_id = _new_id(taken)
    silence = {
        "id": silence_id,
        "matchers": matchers,
        "starts": iso(now),
        "ends": iso(ends),
        "comment": comment,
        "by": "cli",
    }
    drop_control(state, {"kind": "silence-add", "silence": silence})
    return silence_id


def _new_id(taken: set[str]) -> str:
    while True:
        candidate = "s" + secrets.token_hex(2)
        if candidate not in taken:
            return candidate


def matches_nothing(config: ConfigView, matchers: dict[str, Any]) -> list[str]:
    """The matcher fields none of whose globs names a source, job or watch of the config."""
    names = {"source": config.sources, "job": tuple(config.jobs), "watch": tuple(config.watches)}
    return [
        field
        for field, known in names.items()
        if field in matchers
        and not any(fnmatchcase(name, glob) for glob in matchers[field] for name in known)
    ]


# --- silence list and expire -------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """Control findings still waiting in the inbox."""

    added: list[dict[str, Any]]
    expiring: set[str]


def _pending(state: Path) -> Pending:
    added: list[dict[str, Any]] = []
    expiring: set[str] = set()
    directory = state / INBOX
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.name.startswith("."):
            continue
        try:
            finding = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if not isinstance(finding, dict) or finding.get("source") != VIGIL_SOURCE:
            continue
        silence = finding.get("silence")
        if finding.get("kind") == "silence-add" and isinstance(silence, dict):
            added.append(silence)
        elif finding.get("kind") == "silence-expire":
            expiring.add(str(finding.get("silence_id")))
    return Pending(added, expiring)


def silence_rows(
    state: Path, now: datetime, warn: Warn, *, shown_all: bool = False
) -> list[dict[str, Any]]:
    """Every silence the coordinator keeps, then those waiting in the inbox; an expired one
    only for EXPIRED_SHOWN after it ended, unless `shown_all`."""
    data = read_checked(state, SILENCES, SILENCES_SHAPE, warn)
    pending = _pending(state)
    rows = []
    kept = [(silence, False) for silence in data.get("silences", [])]
    for silence, waiting_to_add in [*kept, *((silence, True) for silence in pending.added)]:
        ended = parse_iso(silence.get("expired")) or parse_iso(silence.get("ends"))
        expired = ended is not None and ended <= now
        if expired and not shown_all and ended is not None and now - ended > EXPIRED_SHOWN:
            continue
        waiting = waiting_to_add or silence.get("id") in pending.expiring
        rows.append(
            {
                "id": silence.get("id"),
                "state": "expired" if expired else "pending" if waiting else "active",
                "matchers": silence.get("matchers") or {},
                "starts": silence.get("starts"),
                "ends": iso(ended) if ended else silence.get("ends"),
                "matched": silence.get("matched") or 0,
                "comment": silence.get("comment"),
                "by": silence.get("by"),
            }
        )
    return rows


def for_table(
    rows: list[dict[str, Any]], config: ConfigView, now: datetime, *, as_json: bool = False
) -> list[dict[str, Any]]:
    """The rows as `silence list` shows them: a note for matchers that match nothing in the
    config and, in a table, matchers in words and ends relative and absolute."""
    shown = []
    for row in rows:
        nothing = matches_nothing(config, row["matchers"])
        row = {**row, "note": "matches nothing in the config" if nothing else None}
        ends = parse_iso(row["ends"])
        if not as_json:
            row["matchers"] = describe(row["matchers"])
            row["ends"] = _relative(ends, now, config.timezone) if ends else row["ends"]
        shown.append(row)
    return shown


def _relative(moment: datetime, now: datetime, timezone: str) -> str:
    seconds = int((moment - now).total_seconds())
    span = format_duration((abs(seconds) + 30) // 60 * 60, zero="now")  # to the nearest minute
    words = f"in {span}" if seconds > 0 else span if span == "now" else f"{span} ago"
    return f"{words} ({when_text(moment, timezone)})"


def expire_silence(state: Path, silence_id: str, now: datetime, warn: Warn) -> None:
    rows = silence_rows(state, now, warn, shown_all=True)
    live = sorted(row["id"] for row in rows if row["state"] != "expired")
    if silence_id not in {row["id"] for row in rows}:
        listed = f"known: {', '.join(live)}" if live else "there are no silences"
        raise UsageError(f"no silence {silence_id!r}; {listed}")
    if silence_id not in live:
        raise UsageError(f"silence {silence_id} has expired already")
    drop_control(state, {"kind": "silence-expire", "silence_id": silence_id})


# --- inbox --silenced --------------------------------------------------------------------------


def silenced_rows(state: Path, warn: Warn, timezone: str | None = None) -> list[dict[str, Any]]:
    """What silences, inhibit rules, maintenance windows and snoozes held back, newest last;
    with `timezone` (for a table), times in it."""
    entries = read_checked(state, SILENCED, SILENCED_SHAPE, warn).get("entries", [])
    rows = sorted(entries, key=lambda entry: parse_iso(entry["at"]) or EARLIEST)
    if timezone is None:
        return rows
    return [{**row, "at": _local_time(row["at"], timezone)} for row in rows]


def _local_time(text: str, timezone: str) -> str:
    moment = parse_iso(text)
    return f"{moment.astimezone(zone(timezone)):%Y-%m-%d %H:%M %Z}" if moment else text

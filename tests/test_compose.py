"""Composing messages, in-process on a spec from `vigil compile`: quiet hours to the minute at
both ends and in the window's own time zone, per-source routes, and every template field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.alerts import Alert
from runner.compose import compose, in_quiet_hours
from tests.coordinator_support import compiled_spec

CONFIG = """\
name: composed
timezone: America/New_York
state_dir: {state}
channels:
  sink: {file: {state}/sink.jsonl}
  pager: {file: {state}/pager.jsonl}
coordinator:
  deliver_to: [sink]
  quiet_hours: {start: "22:00", end: "07:00"}
  message:
    title: "{name} on {date}: {count}"
    line: "[{source} {priority}] {text}"
  sources:
    disk: {external: true, to: [pager], priority: 4}
    mail: {external: true}
"""

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def spec(vigil, tmp_path: Path) -> dict[str, Any]:
    return compiled_spec(vigil, tmp_path, CONFIG)


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(21, 59, False), (22, 0, True), (0, 0, True), (6, 59, True), (7, 0, False), (12, 0, False)],
)
def test_quiet_hours_start_inclusive_end_exclusive_across_midnight(
    spec: dict[str, Any], hour: int, minute: int, quiet: bool
) -> None:
    moment = datetime(2026, 3, 10, hour, minute, tzinfo=NEW_YORK)
    assert in_quiet_hours(spec, moment) is quiet


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(12, 59, False), (13, 0, True), (13, 59, True), (14, 0, False), (23, 0, False)],
)
def test_quiet_hours_within_one_day(
    spec: dict[str, Any], hour: int, minute: int, quiet: bool
) -> None:
    spec["coordinator"]["quiet_hours"] = {"start": "13:00", "end": "14:00", "timezone": None}
    moment = datetime(2026, 3, 10, hour, minute, tzinfo=NEW_YORK)
    assert in_quiet_hours(spec, moment) is quiet


def test_quiet_hours_in_the_windows_own_time_zone(spec: dict[str, Any]) -> None:
    spec["coordinator"]["quiet_hours"]["timezone"] = "Europe/Berlin"
    # 23:00 in Berlin is 17:00 in New York (the config's zone): quiet by Berlin's clock.
    assert in_quiet_hours(spec, datetime(2026, 3, 10, 22, 0, tzinfo=UTC))
    assert not in_quiet_hours(spec, datetime(2026, 3, 10, 6, 0, tzinfo=UTC))  # 07:00 Berlin


def test_a_sources_route_replaces_deliver_to(spec: dict[str, Any]) -> None:
    alerts = [Alert("disk full", "disk"), Alert("hello", "mail")]
    messages = {m.channel: m for m in compose(spec, alerts, datetime(2026, 3, 10, tzinfo=UTC))}
    assert sorted(messages) == ["pager", "sink"]
    assert messages["pager"].body == "[disk 4] disk full"  # the source's priority, 4
    assert messages["sink"].body == "[mail 0] hello"


def test_title_and_line_fields(spec: dict[str, Any]) -> None:
    # 02:30 UTC on 1 April is 22:30 on 31 March in New York: {date} is the config's date.
    now = datetime(2026, 4, 1, 2, 30, tzinfo=UTC)
    alerts = [Alert("one", "mail", priority=7), Alert("two", "mail")]
    [message] = compose(spec, alerts, now)
    assert message.title == "composed on 2026-03-31: 2"
    assert message.body == "[mail 7] one\n[mail 0] two"
    assert message.named == [a.key for a in alerts]


def test_caps_keep_vigils_own_alerts_and_rotate_waiting_ones(spec: dict[str, Any]) -> None:
    spec["coordinator"]["total_cap"] = 2
    now = datetime(2026, 3, 10, 14, tzinfo=UTC)
    earlier = (now - timedelta(days=1)).isoformat()
    alerts = [
        Alert("fresh", "mail", priority=99),
        Alert("waited", "mail", priority=99, waiting=earlier),
        Alert("backup failed", "vigil", priority=100),
        Alert("rejected a file", "vigil", priority=100),
    ]
    [message] = compose(spec, alerts, now)
    lines = message.body.splitlines()
    assert lines == ["[vigil 100] backup failed", "[vigil 100] rejected a file", "+2 more"]
    spec["coordinator"]["total_cap"] = 3
    [message] = compose(spec, alerts, now)
    assert message.body.splitlines()[2:] == ["[mail 99] waited", "+1 more"]


def test_a_message_is_urgent_when_any_of_its_alerts_is(spec: dict[str, Any]) -> None:
    """Per channel: the pager's message carries the urgent disk alert, the sink's does not."""
    now = datetime(2026, 3, 10, tzinfo=UTC)
    calm = [Alert("hello", "mail"), Alert("hi again", "mail")]
    [message] = compose(spec, calm, now)
    assert message.urgent is False
    mixed = [*calm, Alert("disk full", "disk", urgent=True)]
    messages = {m.channel: m.urgent for m in compose(spec, mixed, now)}
    assert messages == {"pager": True, "sink": False}
    [both] = compose(spec, [Alert("hello", "mail"), Alert("down", "mail", urgent=True)], now)
    assert both.urgent is True  # any, not all, and not only the first

"""When a snooze or silence ends, as a person writes it (runner.talk.when)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.talk.when import until

NEW_YORK = "America/New_York"
EVE_OF_FALL_BACK = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)  # Sat 31 Oct 21:00 EDT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", datetime(2026, 11, 1, 3, 0, tzinfo=UTC)),  # elapsed, across the change
        ("1h30m", datetime(2026, 11, 1, 2, 30, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),  # 21:00 EST the next day
        ("1 week", datetime(2026, 11, 8, 2, 0, tzinfo=UTC)),
        ("tomorrow 9:00", datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),  # 9:00 EST
        ("tomorrow", datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),
        ("9:00", datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),  # the next 9:00
        ("9pm", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),  # 21:00 has passed today
        ("Mon 8:00", datetime(2026, 11, 2, 13, 0, tzinfo=UTC)),
        ("saturday", datetime(2026, 11, 7, 14, 0, tzinfo=UTC)),  # the next one, not today
        ("2026-12-08 09:00", datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),
        ("2026-12-08T09:30", datetime(2026, 12, 8, 14, 30, tzinfo=UTC)),
    ],
)
def test_wall_times_are_the_ones_the_person_meant(text: str, expected: datetime) -> None:
    assert until(text, EVE_OF_FALL_BACK, NEW_YORK) == expected


def test_spring_forward_keeps_the_wall_time() -> None:
    before = datetime(2026, 3, 8, 1, 30, tzinfo=UTC)  # Sat 7 Mar 20:30 EST
    assert until("1d", before, NEW_YORK) == datetime(2026, 3, 9, 0, 30, tzinfo=UTC)  # 20:30 EDT
    assert until("tomorrow 9:00", before, NEW_YORK) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no time given"),
        ("soon", "is not a time"),
        ("25:00", "is not a time"),
        ("13pm", "is not a time"),
        ("2026-02-30 9:00", "is not a date"),
        ("2020-01-01 9:00", "is not in the future"),
    ],
)
def test_what_is_not_a_time_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        until(text, EVE_OF_FALL_BACK, NEW_YORK)

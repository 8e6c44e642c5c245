"""`vigil timeline`: the Glance drawn for the terminal (compiler/glance/timeline.py), at a fixed
clock, plain (a pipe, NO_COLOR) and painted (a terminal), from the real collector over the
examples with a run history, from hand-built Glances for the edge cases, and through the
real entry point."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
import sys
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler.glance.cells import Cover, cover, plan_ahead
from compiler.glance.drawing import MARKS, SHADE, cell_width, cut
from compiler.glance.model import Glance, Lane, LaneKind, Mark, Run, Shade, ShadeKind
from compiler.glance.timeline import NEXT_WIDTH, render
from tests.conftest import ROOT, require_systemd_analyze
from tests.glance_support import two_zones, two_zones_glance, write_two_zones_runs
from tests.runner_support import runner_env

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 7, 10, 30, tzinfo=BERLIN)
RUNS = [  # job, local start (Berlin), result, reason
    ("backup", datetime(2026, 12, 6, 2, 0), "ok", None),
    ("backup", datetime(2026, 12, 5, 2, 0), "failed", "exit 3: repository locked"),
    ("backup", datetime(2026, 12, 4, 2, 0), "timeout", "ran past 50m"),
    ("backup", datetime(2026, 12, 3, 2, 0), "missed", None),
    ("backup", datetime(2026, 11, 20, 2, 0), "ok", None),
    ("restore-test", datetime(2026, 12, 6, 5, 0), "skipped-after", "backup failed"),
    ("coordinator", datetime(2026, 12, 7, 9, 0), "ok", None),
]


def write_runs(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    with (state / "runs.jsonl").open("w") as handle:
        for job, start, result, reason in RUNS:
            record = {
                "job": job,
                "kind": "coordinator" if job == "coordinator" else "job",
                "start": start.replace(tzinfo=BERLIN).isoformat(),
                "result": result,
                "reason": reason,
                "duration_s": 3.0,
            }
            handle.write(json.dumps(record) + "\n")


def collected(example: str, state: Path, *, days: int = 7, past: int = 30) -> Glance:
    from compiler.glance.collect import collect
    from compiler.language.validate import load_config
    from compiler.operate.setup import ConfigView

    require_systemd_analyze()
    setup = ConfigView.of_config(load_config(ROOT / "examples" / example).config)
    setup = dataclasses.replace(setup, state_dir=str(state))
    write_runs(state)
    return collect(setup, now=NOW, days=days, past=past, warn=lambda _: None)


def plain(glance: Glance, width: int = 80) -> str:
    drawn = render(glance, width=width)
    assert "\x1b" not in drawn
    assert all(len(line) <= width for line in drawn.splitlines())
    return drawn


def painted(glance: Glance, width: int = 80) -> str:
    drawn = render(glance, width=width, colours="standard")
    assert "\x1b[" in drawn
    # the escape codes aside, the same picture
    assert strip_escapes(drawn) == render(glance, width=width)
    return drawn


def strip_escapes(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def row(drawn: str, name: str, after: str = "") -> str:
    """The first line that starts with `name` (its column padded), after the line `after`."""
    lines = drawn.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after)) if after else 0
    return next(line for line in lines[start:] if line.startswith(name + " "))


# --- through the real collector ------------------------------------------------------------------


def test_backup_with_its_runs(tmp_path: Path, snapshot) -> None:
    glance = collected("backup.yaml", tmp_path)
    drawn = plain(glance)
    assert drawn == snapshot(name="plain")
    assert painted(glance) == snapshot(name="terminal")


def test_bruba(tmp_path: Path, snapshot) -> None:
    glance = collected("bruba.yaml", tmp_path)
    assert plain(glance) == snapshot(name="plain")
    assert painted(glance, 100) == snapshot(name="terminal-100")


def test_the_past_strip_shows_each_run_on_its_day(tmp_path: Path) -> None:
    glance = collected("backup.yaml", tmp_path)
    drawn = plain(glance)
    name_width = drawn.splitlines()[3].index("M")  # where the day labels start
    days = [glance.since.astimezone(BERLIN).date() + timedelta(days=n) for n in range(31)]
    head = len(days) % 7  # the groups of a week end with today: a gap after each

    def column(day: date) -> int:
        index = days.index(day)
        return name_width + index + (index >= head) * 1 + max(0, (index - head) // 7)

    backup = row(drawn, "backup", after="behind")
    expected = {
        date(2026, 12, 6): MARKS[Mark.OK],
        date(2026, 12, 5): MARKS[Mark.FAILED],
        date(2026, 12, 4): MARKS[Mark.FAILED],  # a timeout is a failure
        date(2026, 12, 3): MARKS[Mark.MISSED],
        date(2026, 11, 20): MARKS[Mark.OK],
        date(2026, 12, 7): "·",
    }
    for day, symbol in expected.items():
        assert backup[column(day)] == symbol, day
    assert backup.endswith("2 failed")
    assert row(drawn, "restore-test", after="behind")[column(date(2026, 12, 6))] == "-"
    assert row(drawn, "coordinator", after="behind")[column(date(2026, 12, 7))] == "✓"
    failures = drawn.split("last failures")[1]
    assert "Sat 05 Dec 02:00  backup  failed: exit 3: repository locked" in failures
    assert "Fri 04 Dec 02:00  backup  timeout: ran past 50m" in failures
    assert "Thu 03 Dec 02:00  backup  missed" in failures


def test_firings_land_in_their_cell_and_quiet_hours_are_shaded(tmp_path: Path) -> None:
    glance = collected("backup.yaml", tmp_path)
    drawn = plain(glance)
    name_width = 19
    ahead = plan_ahead([NOW.date() + timedelta(days=n) for n in range(7)], 80 - 19 - 11, BERLIN)
    assert (ahead.per_day, ahead.hours) == (6, 4)

    def column(day: date, cell: int) -> int:
        return name_width + (day - NOW.date()).days * 7 + cell

    backup = row(drawn, "backup", after="ahead")
    tuesday = datetime(2026, 12, 8, 2, 0, tzinfo=BERLIN)  # "0 2 * * *": Tue 02:00, cell 0
    assert backup[column(tuesday.date(), 2 // 4)] == "1"
    sunday = row(drawn, "restore-test")  # "0 5 * * 0": Sun 13, 05:00, cell 1
    assert sunday[column(date(2026, 12, 13), 5 // 4)] == "1"
    assert sunday.count("1") == 1
    assert backup.endswith(" Tue 02:00")
    # quiet hours 22:30 to 07:00: 00-04 wholly covered, 04-08 and 20-24 partly, else none
    quiet = row(drawn, "quiet hours")
    for offset in range(7):
        day = NOW.date() + timedelta(days=offset)
        cells = [quiet[column(day, cell)] for cell in range(6)]
        assert cells == ["▒", "░", "·", "·", "·", "░"], day


# --- hand-built Glances --------------------------------------------------------------------------


def nightly(start: date, days: int, at: time, where: ZoneInfo) -> tuple[datetime, ...]:
    return tuple(datetime.combine(start + timedelta(days=n), at, where) for n in range(days))


def quiet_shades(first: date, days: int, where: ZoneInfo) -> tuple[Shade, ...]:
    """22:00 to 06:00, wall clock: across midnight, and across the clock change."""
    return tuple(
        Shade(
            ShadeKind.QUIET,
            datetime.combine(first + timedelta(days=n - 1), time(22), where),
            datetime.combine(first + timedelta(days=n), time(6), where),
            "quiet hours",
        )
        for n in range(days + 1)
    )


def dst_week(days: int = 7, past: int = 3) -> Glance:
    """America/New_York over the end of summer time (2026-11-01 02:00 -> 01:00)."""
    now = datetime(2026, 10, 30, 12, 0, tzinfo=NEW_YORK)
    first = now.date()
    sunday = date(2026, 11, 1)
    minutely = tuple(now + timedelta(minutes=n + 1) for n in range(500))
    maintenance = tuple(
        Shade(
            ShadeKind.MAINTENANCE,
            datetime.combine(day, time(1), NEW_YORK),
            datetime.combine(day, time(5), NEW_YORK),
            "maintenance upgrades (alerts held)",
        )
        for day in (first + timedelta(days=n) for n in range(days))
        if day.weekday() in (5, 6)
    )
    return Glance(
        name="dst",
        timezone="America/New_York",
        now=now,
        since=datetime.combine(first - timedelta(days=past), time(), NEW_YORK),
        until=datetime.combine(first + timedelta(days=days), time(), NEW_YORK),
        lanes=(
            Lane(
                "nightly-at-one-thirty",
                LaneKind.JOB,
                firings=nightly(first + timedelta(days=1), days - 1, time(1, 30), NEW_YORK),
                runs=(Run(now - timedelta(days=1), Mark.FAILED, "failed", reason="exit 1\nboom"),),
            ),
            Lane("every-minute", LaneKind.JOB, firings=minutely, cut=True, schedule="*:*"),
            Lane(
                "a-job-whose-name-is-far-too-long-for-any-column",
                LaneKind.JOB,
                firings=(datetime(2026, 11, 2, 9, 0, tzinfo=NEW_YORK),),
            ),
            Lane("paused-one", LaneKind.JOB, note="paused until Nov 03 (vigil resume)"),
            Lane("deadline", LaneKind.WATCH, firings=(datetime.combine(sunday, time(23), NY),)),
        ),
        shades=quiet_shades(first, days, NEW_YORK) + maintenance,
    )  # fmt: skip


@pytest.mark.parametrize("width", [80, 60, 120])
def test_a_dst_week(width: int, snapshot) -> None:
    glance = dst_week()
    assert plain(glance, width) == snapshot(name=f"plain-{width}")
    if width == 80:
        assert painted(glance, width) == snapshot(name="terminal-80")


def test_the_dst_week_is_shaded_where_its_shades_are() -> None:
    glance = dst_week()
    drawn = plain(glance)
    days = [glance.now.date() + timedelta(days=n) for n in range(7)]
    ahead = plan_ahead(days, 80 - 19 - NEXT_WIDTH, NEW_YORK)
    for label, kind in (("quiet hours", ShadeKind.QUIET), ("maintenance", ShadeKind.MAINTENANCE)):
        line = row(drawn, label) if label == "quiet hours" else next(
            line for line in drawn.splitlines() if line.startswith(label)
        )  # fmt: skip
        for index, day in enumerate(days):
            for cell in range(ahead.per_day):
                start, end = ahead.bounds(day, cell)
                covered = cover([s for s in glance.shades if s.kind is kind], start, end)
                expected = SHADE[covered] if covered is not Cover.NONE else "·"
                assert line[19 + index * (ahead.per_day + 1) + cell] == expected, (label, day)
    # the night of the change (Sat 31 to Sun 01) is nine hours long, still drawn as the others
    sunday = row(drawn, "nightly-at-one-th…")
    assert sunday[19 + 2 * 7] == "1"  # Sun 01 Nov, 01:30 (the first of the two), cell 00-04


def test_a_dense_lane_is_a_band_a_paused_lane_says_so_a_long_name_is_cut() -> None:
    drawn = plain(dst_week())
    assert "━" in row(drawn, "every-minute")
    assert row(drawn, "paused-one").endswith(" paused un…")
    assert "paused-one: paused until Nov 03 (vigil resume)" in drawn
    assert "a-job-whose-name-…" in drawn
    assert "a-job-whose-name-is" not in drawn
    assert "exit 1 boom" in drawn  # a reason's newline does not break the line


def test_no_lanes(snapshot) -> None:
    glance = dataclasses.replace(dst_week(), lanes=())
    assert plain(glance) == snapshot


@pytest.mark.parametrize(("days", "past"), [(1, 0), (30, 30), (366, 366), (14, 3)])
@pytest.mark.parametrize("width", [40, 80, 132])
def test_any_window_fits_the_width(days: int, past: int, width: int) -> None:
    glance = dst_week(days, past)
    drawn = plain(glance, width)
    assert all(len(line) <= width for line in strip_escapes(painted(glance, width)).splitlines())
    if past == 0:
        assert "behind:" not in drawn
    assert f"ahead: {days} day" in drawn


def test_a_day_and_a_month(snapshot) -> None:
    assert plain(dst_week(1, 0)) == snapshot(name="one-day")
    assert plain(dst_week(30, 30)) == snapshot(name="thirty-days")


# --- the command ---------------------------------------------------------------------------------


def timeline(
    home: Path, *args: str, tty: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    config = home / "vigil.yaml"
    config.write_text((ROOT / "examples/backup.yaml").read_text())
    write_runs(home / ".local/state/vigil/backup")
    command = [sys.executable, "-m", "compiler.cli", "timeline", "--config", str(config), *args]
    environment = runner_env(HOME=str(home), VIGIL_NOW=NOW.isoformat(), **env)
    environment.pop("COLUMNS", None)
    environment.pop("NO_COLOR", None)
    environment.update(env)
    if not tty:
        return subprocess.run(
            command, env=environment, capture_output=True, text=True, check=False, cwd=home
        )
    main, child = pty.openpty()
    os.set_blocking(main, True)
    done = subprocess.run(
        command, env=environment, stdout=child, stderr=subprocess.PIPE, text=True, cwd=home,
        check=False,
    )  # fmt: skip
    os.close(child)
    out = b""
    while chunk := _read(main):
        out += chunk
    os.close(main)
    return subprocess.CompletedProcess(command, done.returncode, out.decode(), done.stderr)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end is closed
        return b""


def test_the_command_draws_plain_text_in_a_pipe(tmp_path: Path) -> None:
    require_systemd_analyze()
    done = timeline(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert done.stdout.startswith("backup · Europe/Berlin · now Mon 07 Dec 2026 10:30")
    assert all(len(line) <= 80 for line in done.stdout.splitlines())
    assert "Sat 05 Dec 02:00  backup  failed: exit 3: repository locked" in done.stdout
    wide = timeline(tmp_path, "--width", "120", "--days", "14")
    assert wide.returncode == 0, wide.stderr
    assert max(len(line) for line in wide.stdout.splitlines()) > 80
    assert all(len(line) <= 120 for line in wide.stdout.splitlines())
    columns = timeline(tmp_path, COLUMNS="60")
    assert all(len(line) <= 60 for line in columns.stdout.splitlines())
    for asked, held in (("5", 40), ("99999", 1000)):  # COLUMNS held to what --width takes
        drawn = timeline(tmp_path, COLUMNS=asked)
        assert drawn.returncode == 0, drawn.stderr
        assert max(len(line) for line in drawn.stdout.splitlines()) <= held
        assert (
            max(len(line) for line in drawn.stdout.splitlines()) > (held if held < 80 else 80) - 10
        )


def test_a_note_quoting_state_writes_no_escape_code(tmp_path: Path) -> None:
    """A nag key comes from a finding (a job's output): a note quoting it shows its control
    characters as `?`, as the tables do, so it cannot retitle or clear the terminal."""
    require_systemd_analyze()
    text = (ROOT / "examples" / "bruba.yaml").read_text(encoding="utf-8")
    state = tmp_path / "state"
    (state / "state").mkdir(parents=True)
    config = tmp_path / "bruba.yaml"
    config.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state}\n", 1))
    key = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mevil"
    nag = {"items": {key: {"nagCount": 1, "fields": {"title": "t"}}}}
    (state / "state" / "nag-reminders.json").write_text(json.dumps(nag))
    shown = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "timeline", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "VIGIL_NOW": "2026-12-07T14:00:00Z"},
    )  # fmt: skip
    assert shown.returncode == 0
    assert "\x1b" not in shown.stdout + shown.stderr, repr(shown.stderr)
    assert "?]0;PWNED??[2J?[31mevil" in shown.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--days", "0"), "--days takes 1 to 366 days, not 0"),
        (("--days", "400"), "--days takes 1 to 366 days, not 400"),
        (("--past", "-1"), "--past takes 0 to 366 days, not -1"),
        (("--width", "10"), "--width takes 40 to 1000 columns, not 10"),
    ],
)
def test_the_command_refuses_a_window_out_of_range(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    done = timeline(tmp_path, *args)
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_terminal_gets_colour_but_not_with_no_color(tmp_path: Path) -> None:
    require_systemd_analyze()
    painted = timeline(tmp_path, tty=True, TERM="xterm-256color", COLUMNS="80")
    assert painted.returncode == 0, painted.stderr
    assert "\x1b[" in painted.stdout
    bare = timeline(tmp_path, tty=True, TERM="xterm-256color", COLUMNS="80", NO_COLOR="1")
    assert bare.returncode == 0, bare.stderr
    assert "\x1b" not in bare.stdout
    assert "backup · Europe/Berlin" in bare.stdout


@pytest.mark.parametrize("past", range(7, 15))
def test_each_day_label_of_the_past_strip_names_the_day_under_it(tmp_path: Path, past: int) -> None:
    """The groups of a week end with today, so the first may be a day or two wide: its label
    is the day's number when it fits, else none (never "2" cut from "22")."""
    glance = collected("backup.yaml", tmp_path, past=past)
    lines = plain(glance).splitlines()
    labels = lines[next(n for n, line in enumerate(lines) if line.startswith("behind")) + 1]
    first = glance.since.astimezone(BERLIN).date()
    name_width = lines[3].index("M")  # where the day labels start (Mon 07 ahead)
    days = [first + timedelta(days=n) for n in range(past + 1)]
    head = len(days) % 7
    starts = [0, *range(head, len(days), 7)] if head else list(range(0, len(days), 7))
    for start in starts:
        column = name_width + start + (start >= head > 0) + max(0, (start - head) // 7)
        word = labels[column:].split(" ")[0] if column < len(labels) else ""
        day = days[start]
        assert word in ("", f"{day:%d}", f"{day:%b}"), (start, word)


# --- wide characters; a cell a day ----------------------------------------------------------------


def on_screen(line: str) -> int:
    """The cells `line` takes on a terminal (measured apart from drawing.py's own measure)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("width", [40, 80])
def test_wide_characters_fit_the_width_on_screen(tmp_path: Path, width: int) -> None:
    require_systemd_analyze()
    setup = two_zones(tmp_path)
    reason = "カレンダーAPIがタイムアウトしました。再試行してください。" * 2
    write_two_zones_runs(
        setup,
        {"job": "ny-noon", "start": "2026-12-05T17:00:00Z", "result": "failed", "reason": reason},
    )
    glance = two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    glance = dataclasses.replace(glance, name="監視" * 30)
    out = render(glance, width=width)
    assert "failed: カ" in out
    for line in out.splitlines():
        assert on_screen(line) <= width, (on_screen(line), line)


def test_cut_measures_cells() -> None:
    assert cut("日本語のテキスト", 7) == "日本語…"
    assert cell_width(cut("日本語のテキスト", 8)) <= 8
    assert cut("abc", 3) == "abc" and cut("abcd", 3) == "ab…"
    assert cell_width("e\u0301") == 1  # a combining accent takes no cell


@pytest.mark.parametrize(("days", "width"), [(30, 80), (7, 40)])
def test_a_daily_job_is_counted_when_the_days_are_a_cell_each(
    tmp_path: Path, days: int, width: int
) -> None:
    """A cell a day: a once-a-day job is a 1 a day, not the band of a lane firing all along."""
    require_systemd_analyze()
    glance = two_zones_glance(two_zones(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC), days, 0)
    line = next(line for line in plain(glance, width).splitlines() if line.startswith("ny-noon"))
    assert "━" not in line and "1111111" in line.replace(" ", ""), line

"""REVIEW REPRODUCTIONS (branch review-glance) -- NOT production tests.

Each test here demonstrates one finding of the hostile review of `vigil timeline`, `vigil
report --html` and `vigil serve`. They are EXPECTED TO FAIL on main as of 9ad0362: a failing
test is the bug. The finding number in each name matches the review report.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.glance.collect import collect
from compiler.glance.lanes import past_days, week_ahead
from compiler.glance.model import Glance
from compiler.glance.page import page, render_page, write_page
from compiler.glance.serve import Page, open_server
from compiler.glance.timeline import render
from compiler.language.validate import load_config
from compiler.operate.setup import ConfigView
from tests.conftest import ROOT, require_systemd_analyze

CONFIG = """\
name: dst
timezone: America/New_York
jobs:
  ny-noon:
    schedule: "0 12 * * *"
    run: "echo hi"
  utc-five:
    schedule: "0 17 * * *"
    timezone: UTC
    run: "echo hi"
channels:
  sink:
    file: {folder}/deliveries.jsonl
coordinator:
  deliver_to: [sink]
"""


@pytest.fixture(autouse=True)
def _systemd_analyze() -> None:
    require_systemd_analyze()


def _setup(folder: Path, text: str = CONFIG) -> ConfigView:
    config = folder / "vigil.yaml"
    config.write_text(text.format(folder=folder), encoding="utf-8")
    setup = ConfigView.of_config(load_config(config).config)
    state = folder / "state"
    state.mkdir(exist_ok=True)
    return dataclasses.replace(setup, state_dir=str(state))


def _runs(setup: ConfigView, *records: dict[str, object]) -> None:
    lines = [json.dumps({"kind": "job", "config": "dst", **r}) for r in records]
    (Path(setup.state_dir) / "runs.jsonl").write_text("".join(f"{line}\n" for line in lines))


def _glance(setup: ConfigView, now: datetime, days: int = 7, past: int = 7) -> Glance:
    return collect(setup, now=now, days=days, past=past, warn=lambda _: None)


# --- 1. the SVG time axis mixes wall-clock and real differences across a clock change ----------


def test_finding_1a_same_instant_drawn_at_same_x_in_the_week_ahead(tmp_path: Path) -> None:
    """12:00 New York and 17:00 UTC are the same instant after 1 Nov 2026 (EST): the week-ahead
    chart must put both ticks at one x. It puts them an hour apart (Python subtracts two
    datetimes of one tzinfo by wall clock: Axis.x)."""
    glance = _glance(_setup(tmp_path), datetime(2026, 10, 30, 14, tzinfo=UTC), past=0)
    svg = str(week_ahead(glance))
    ticks = {}
    for lane in ("ny-noon", "utc-five"):
        pattern = rf'<rect x="([\d.]+)"[^>]*class="firing"><title>{lane}: Thu 5 Nov 12:00</title>'
        ticks[lane] = float(re.search(pattern, svg)[1])  # type: ignore[index]
    assert ticks["ny-noon"] == pytest.approx(ticks["utc-five"], abs=0.5), ticks


def test_finding_1b_a_run_before_midnight_is_drawn_in_its_own_day(tmp_path: Path) -> None:
    """A run at 23:30 on Sunday 1 Nov (New York, after the fall-back) must be left of Monday
    2 Nov's midnight line in the past-days chart; it is drawn right of it (Monday's column)."""
    setup = _setup(tmp_path)
    _runs(setup, {"job": "ny-noon", "start": "2026-11-02T04:30:00Z", "result": "failed"})
    glance = _glance(setup, datetime(2026, 11, 6, 17, tzinfo=UTC), past=7)
    svg = str(past_days(glance))
    midnights = [float(x) for x in re.findall(r'<line x1="([\d.]+)"[^>]*class="day"', svg)]
    names = re.findall(r'class="dayname">([^<]+)<', svg)
    monday = midnights[names.index("Mon 2 Nov")]
    cross = float(re.search(r'<path d="M([\d.]+)[^"]*" class="run failed"', svg)[1]) + 5  # type: ignore[index]
    assert cross < monday, f"run at x={cross}, Monday's midnight at x={monday}"


# --- 2. a run's cost of NaN / Infinity (valid to Python's json) crashes the page ----------------


@pytest.mark.parametrize("cost", ["NaN", "Infinity", "1e999"])
def test_finding_2_non_finite_cost_is_a_note_not_a_traceback(tmp_path: Path, cost: str) -> None:
    setup = _setup(tmp_path)
    line = ('{"job":"ny-noon","kind":"job","config":"dst","start":"2026-12-05T17:00:00Z",'
            f'"result":"ok","tokens_in":10,"cost_usd":{cost}}}\n')  # fmt: skip
    (Path(setup.state_dir) / "runs.jsonl").write_text(line)
    glance = _glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    html = render_page(glance)  # ValueError / OverflowError in spendchart._rounded_up
    assert "nan" not in html.lower().split("<style>")[0]


# --- 3. serve: DNS rebinding, crashes answered with an empty reply, no timeouts -----------------


def _serving(gather):  # type: ignore[no-untyped-def]
    server = open_server(gather, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_finding_3a_serve_refuses_a_foreign_host_header(tmp_path: Path) -> None:
    """A page on evil.example whose name rebinds to 127.0.0.1 reads the status page (reasons,
    nag titles, spend, paths) unless the Host header is checked: it must be refused (421/403)."""
    glance = _glance(_setup(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC))
    server = _serving(lambda: glance)
    try:
        connection = http.client.HTTPConnection(*server.server_address[:2], timeout=20)
        connection.request("GET", "/", headers={"Host": "evil.example"})
        status = connection.getresponse().status
    finally:
        server.shutdown()
    assert status in (400, 403, 421), status


def test_finding_3b_serve_answers_500_when_drawing_fails() -> None:
    """Anything but a VigilError in gather/render (finding 2's NaN, a bug) drops the connection
    with no reply and prints a traceback to stderr; it must answer 500 with a line."""

    def broken() -> Glance:
        raise ValueError("cannot convert float NaN to integer")

    server = _serving(broken)
    try:
        connection = http.client.HTTPConnection(*server.server_address[:2], timeout=20)
        connection.request("GET", "/")
        status = connection.getresponse().status  # RemoteDisconnected today
    finally:
        server.shutdown()
    assert status == 500


def test_finding_3c_an_idle_connection_is_timed_out() -> None:
    """No timeout: every idle connection holds a thread forever (ThreadingHTTPServer, daemon
    threads, unbounded): a local process, or anyone with --bind, exhausts threads."""
    assert Page.timeout is not None


# --- 4. escape sequences from state reach the terminal through `vigil timeline` ----------------


def test_finding_4_timeline_writes_no_escape_code_from_a_state_file(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "bruba.yaml").read_text(encoding="utf-8")
    state = tmp_path / "state"
    (state / "state").mkdir(parents=True)
    config = tmp_path / "bruba.yaml"
    config.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {state}\n", 1))
    key = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mevil"  # a nag key comes from a finding (job output)
    nag = {"items": {key: {"nagCount": 1, "fields": {"title": "t"}}}}
    (state / "state" / "nag-reminders.json").write_text(json.dumps(nag))
    shown = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "timeline", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "VIGIL_NOW": "2026-12-07T14:00:00Z"},
    )  # fmt: skip
    assert shown.returncode == 0
    assert "\x1b" not in shown.stdout + shown.stderr, repr(shown.stderr)


# --- 5. plain timeline wider than --width with East Asian wide characters ------------------------


def test_finding_5_plain_lines_fit_the_width_on_screen(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    reason = "カレンダーAPIがタイムアウトしました。再試行してください。" * 2
    _runs(setup, {"job": "ny-noon", "start": "2026-12-05T17:00:00Z", "result": "failed",
                  "reason": reason})  # fmt: skip
    out = render(_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC)), width=80)
    for line in out.splitlines():
        cells = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
        assert cells <= 80, (cells, line)


# --- 6. runs.jsonl is read (whole, into memory) three times per picture -------------------------


def test_finding_6_runs_jsonl_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.history

    setup = _setup(tmp_path)
    _runs(setup, {"job": "ny-noon", "start": "2026-12-05T17:00:00Z", "result": "ok"})
    reads = []
    original = runner.history._lines
    monkeypatch.setattr(runner.history, "_lines", lambda d: reads.append(d) or original(d))
    _glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    assert len(reads) == 1, f"read {len(reads)} times"


# --- 7. the page is world-readable although the state it shows is 0600 --------------------------


def test_finding_7_report_is_private_like_the_state(tmp_path: Path) -> None:
    glance = _glance(_setup(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC))
    target = tmp_path / "page.html"
    old = os.umask(0o022)
    try:
        write_page(glance, target)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0, oct(target.stat().st_mode)


# --- 8. firings of many timezone'd jobs: 64 systemd iterations each, whatever is needed ---------


def test_finding_8_three_hundred_daily_jobs_are_drawn_in_seconds() -> None:
    from compiler.language.schedule import firings_within

    timers = {f"j{n}": ([f"*-*-* {n % 24:02}:{n % 60:02}:00"], "Europe/Berlin") for n in range(300)}
    now = datetime(2026, 12, 7, 14, tzinfo=UTC)
    started = time.monotonic()
    firings_within(timers, now, datetime(2026, 12, 14, tzinfo=UTC))
    assert time.monotonic() - started < 3.0  # ~10 s here; 1,000 jobs: ~30 s per page load


# --- 9. the trouble table sorts ISO strings, not moments -----------------------------------------


def test_finding_9_trouble_rows_newest_first_across_offsets(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    _runs(
        setup,
        {"job": "ny-noon", "start": "2026-12-05T17:00:00+00:00", "result": "failed"},
        {"job": "utc-five", "start": "2026-12-05T18:30:00+05:00", "result": "failed"},  # 13:30Z
    )
    rows = page(_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC)))["trouble"]
    assert [row["lane"] for row in rows] == ["ny-noon", "utc-five"]


# --- 10. every run is an SVG path with a tooltip: the page grows without bound -------------------


def test_finding_10_page_size_is_bounded(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    records = [
        {"job": "ny-noon", "start": f"2026-12-0{1 + n // 5000}T{n // 60 % 24:02}:{n % 60:02}:00Z",
         "result": "ok", "duration_s": 1.0}
        for n in range(20000)
    ]  # fmt: skip
    _runs(setup, *records)
    html = render_page(_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC)))
    assert len(html) < 2_000_000, f"{len(html):,} bytes"


# --- 11. a daily job drawn as "fires all along" when the days ahead are a cell a day -------------


def test_finding_11_a_daily_job_is_not_a_band(tmp_path: Path) -> None:
    """`vigil timeline --days 30` at 80 columns (or the default week at 40): one cell a day, and
    dense() calls a lane with one firing per cell dense, so a once-a-day job is drawn `━` like
    the 15-minute heartbeat. It must show its count (1) per day."""
    glance = _glance(_setup(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC), days=30, past=0)
    out = render(glance, width=80)
    row = next(line for line in out.splitlines() if line.startswith("ny-noon"))
    assert "━" not in row, row

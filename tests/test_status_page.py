"""The status page (compiler/glance/page.py) drawn from the real collector's Glance of the
reference workload with a month of runs: self-contained, escaped, each lane's next firing as
an independent cron implementation computes it, the failed run's reason in its mark's tooltip,
and the month's spend equal to the ledger's (`vigil cost`)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from compiler.glance.lanes import past_runs, week_ahead
from compiler.glance.model import InstalledGeneration
from compiler.glance.page import RECENT_TROUBLE, render_page, write_page
from compiler.glance.page import page as page_values
from compiler.operate.cost import month_to_date
from tests.conftest import require_systemd_analyze
from tests.glance_support import (
    FAILED_REASON,
    NOW,
    UNRECORDED_USD,
    Bruba,
    bruba_with_history,
    two_zones,
    two_zones_glance,
    write_two_zones_runs,
)

NEW_YORK = ZoneInfo("America/New_York")
BRUBA_CRON = {
    "nightly-reset-prep": "55 3 * * *",
    "nightly-reset-execute": "2 4 * * *",
    "nightly-reset-wake": "7 4 * * *",
    "reminder-check": "0 9,14,18 * * *",
    "staleness-check": "0 10 * * 1",
    "calendar-prep": "0 7 * * 1-5",
    "morning-briefing": "15 7 * * 1-5",
}
"""bruba's seven jobs, their schedules as examples/bruba.yaml writes them."""


@dataclasses.dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class Parsed(HTMLParser):
    """Every element with its attributes, and the text directly inside it."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {key: value or "" for key, value in attrs})
        self.elements.append(element)
        if tag not in ("meta", "br", "input", "img", "link"):
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text += data

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [
            element
            for element in self.elements
            if (tag is None or element.tag == tag)
            and all(element.attrs.get(key.replace("_", "-")) == v for key, v in attrs.items())
        ]


def expected_next(job: str) -> datetime:
    """The next firing after NOW, by croniter from the YAML's cron expression."""
    return croniter(BRUBA_CRON[job], NOW.astimezone(NEW_YORK)).get_next(datetime)


def shown(moment: datetime) -> str:
    local = moment.astimezone(NEW_YORK)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


@pytest.fixture(scope="module")
def bruba(tmp_path_factory: pytest.TempPathFactory) -> Bruba:
    require_systemd_analyze()
    return bruba_with_history(tmp_path_factory.mktemp("bruba"))


@pytest.fixture(scope="module")
def page(bruba: Bruba) -> str:
    return render_page(bruba.glance())


def test_the_page_fetches_nothing_and_runs_nothing(page: str) -> None:
    parsed = Parsed(page)
    for element in parsed.elements:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = element.attrs.get(name)
            assert value is None or value.startswith(("#", "data:")), (element.tag, name, value)
    tags = {element.tag for element in parsed.elements}
    assert not tags & {"script", "link", "iframe", "img", "object", "embed", "base", "form"}
    assert "://" not in page  # no address anywhere, not even in CSS (url(), @import)
    assert "@import" not in page and "url(" not in page
    [policy] = parsed.find("meta", http_equiv="Content-Security-Policy")
    assert policy.attrs["content"].startswith("default-src 'none'")


def test_every_job_with_its_next_firing(page: str) -> None:
    parsed = Parsed(page)
    rows = {row.attrs["data-lane"]: row for row in parsed.find("tr", data_kind="job")}
    assert list(rows) == list(BRUBA_CRON)
    cells = [cell for cell in parsed.find("td") if cell.attrs.get("class") == "next"]
    for job, row in rows.items():
        expected = expected_next(job)
        assert datetime.fromisoformat(row.attrs["data-next"]) == expected, job
        assert row.attrs["data-next"] == expected.isoformat()
    assert sorted(cell.text for cell in cells) == sorted(
        [shown(expected_next(job)) for job in BRUBA_CRON] + ["-", "-", "Mon 7 Dec 09:45"]
    )


def test_a_failed_runs_mark_says_when_how_long_what_and_why(page: str) -> None:
    parsed = Parsed(page)
    [failed] = parsed.find("path", data_result="failed")
    assert failed.attrs["data-lane"] == "calendar-prep"
    assert "run failed" in failed.attrs["class"]
    tooltip = parsed.elements[parsed.elements.index(failed) + 1]
    assert tooltip.tag == "title"  # the mark's first child: what a browser shows on hover
    assert tooltip.text == (
        f"calendar-prep · Fri 4 Dec 07:00 · 1.5 s · failed (exit status 3)\n{FAILED_REASON}"
    )
    results = {
        mark.attrs["data-result"] for mark in parsed.find("path") if "data-result" in mark.attrs
    }
    assert results == {"ok", "failed", "skipped", "missed"}
    shapes = {
        mark.attrs["data-result"]: mark.attrs["d"].split("l")[0].split("a")[0].split("h")[0]
        for mark in parsed.find("path")
        if "data-result" in mark.attrs
    }
    assert len(shapes) == 4  # a shape of its own each: colour is never the only difference


def test_reasons_and_names_are_text_never_markup(tmp_path: Path) -> None:
    require_systemd_analyze()
    bruba = bruba_with_history(tmp_path)
    hostile = "<script>alert('x')</script> & \"quotes\" <b>"
    bruba.add_run(
        job="reminder-check", start="2026-12-06T20:00:00Z", result="timeout", reason=hostile
    )
    page = render_page(bruba.glance())
    assert "<script" not in page and "<b>" not in page
    parsed = Parsed(page)
    assert any(hostile in element.text for element in parsed.find("title"))
    assert any(element.text == hostile for element in parsed.find("td"))


def test_the_months_total_is_the_ledgers(bruba: Bruba, page: str, vigil, monkeypatch) -> None:
    parsed = Parsed(page)
    [total] = parsed.find(id="cost-total")
    ledger = month_to_date(bruba.state, "bruba", "America/New_York", NOW, warn=pytest.fail)
    expected = sum(usd for usd, _, _ in ledger.values())
    assert float(total.attrs["data-usd"]) == pytest.approx(expected, abs=1e-6)
    assert total.text == f"${expected:,.2f}"
    segments = [e for e in parsed.find("rect") if "segment" in e.attrs.get("class", "")]
    assert sum(float(e.attrs["data-usd"]) for e in segments) == pytest.approx(expected, abs=1e-5)
    earlier = [e for e in segments if "hatched" in e.attrs["class"]]
    assert [float(e.attrs["data-usd"]) for e in earlier] == pytest.approx([UNRECORDED_USD])
    monkeypatch.setenv("VIGIL_NOW", NOW.isoformat())
    result = vigil("cost", bruba.config, "--json")
    assert result.exit_code == 0, result.stderr
    spent = sum(row["spent_usd"] for row in json.loads(result.stdout))
    assert float(total.attrs["data-usd"]) == pytest.approx(spent, abs=1e-6)


def test_budgets_against_their_limits(page: str) -> None:
    parsed = Parsed(page)
    [bar] = parsed.find("rect", data_scope="global")
    assert "spent under" in bar.attrs["class"]
    assert any(e.text == "global budget: $0.08 of $10.00 (1%)" for e in parsed.find("title"))


def test_not_installed_and_installed(bruba: Bruba, page: str) -> None:
    assert "Not installed (shown from the file)." in page
    glance = dataclasses.replace(bruba.glance(), generation=_generation(drift=("bin/x",)))
    parsed = Parsed(render_page(glance))
    [number] = parsed.find(id="generation")
    assert number.text == "7"
    text = " ".join(element.text for element in parsed.elements)
    for words in ("0123456789ab", "abcdef012345 (dirty)", "changed since it was applied", "bin/x"):
        assert words in text
    clean = render_page(dataclasses.replace(glance, generation=_generation()))
    assert "match its manifest" in clean and "changed since" not in clean


def _generation(**more: Any) -> InstalledGeneration:
    return InstalledGeneration(
        generation=7,
        config_file="/home/u/vigil.yaml",
        config_sha256="0123456789abcdef" * 4,
        git={"revision": "abcdef0123456789", "dirty": True},
        applied="2026-12-01T10:00:00+00:00",
        config_changed=bool(more),
        **more,
    )


def test_written_whole_over_the_last_page(bruba: Bruba, tmp_path: Path) -> None:
    target = tmp_path / "status.html"
    target.write_text("old")
    write_page(bruba.glance(), target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [path.name for path in tmp_path.iterdir()] == ["status.html"]


def test_report_html_through_the_cli(bruba: Bruba, tmp_path: Path, vigil, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_NOW", NOW.isoformat())
    target = tmp_path / "out" / "page.html"
    result = vigil("report", "--config", bruba.config, "--html", target)
    assert result.exit_code == 0, result.stderr
    assert f"wrote {target}" in result.stderr
    assert Parsed(target.read_text()).find(id="cost-total")


# --- from a config of two zones: clock changes, odd run records, many runs ------------------------


def _tick(svg: str, lane: str, when: str) -> float:
    found = re.search(rf'<rect x="([\d.]+)"[^>]*class="firing"><title>{lane}: {when}</title>', svg)
    assert found, (lane, when)
    return float(found[1])


def test_one_instant_is_one_x_in_the_week_ahead_across_a_clock_change(tmp_path: Path) -> None:
    """12:00 in New York and 17:00 UTC are one instant after the clocks went back (1 Nov 2026):
    the week ahead, drawn from before the change, puts both ticks at one x (the axis places
    moments by their instants, not by the wall clocks Python subtracts within one zone)."""
    glance = two_zones_glance(two_zones(tmp_path), datetime(2026, 10, 30, 14, tzinfo=UTC), past=0)
    svg = str(week_ahead(glance))
    ny, utc = (_tick(svg, lane, "Thu 5 Nov 12:00") for lane in ("ny-noon", "utc-five"))
    assert ny == pytest.approx(utc, abs=0.5)


def test_a_run_before_midnight_is_drawn_in_its_own_day_after_a_clock_change(
    tmp_path: Path,
) -> None:
    """23:30 on Sunday 1 Nov in New York (after the fall-back) is left of Monday's midnight."""
    setup = two_zones(tmp_path)
    write_two_zones_runs(
        setup, {"job": "ny-noon", "start": "2026-11-02T04:30:00Z", "result": "failed"}
    )
    svg = str(past_runs(two_zones_glance(setup, datetime(2026, 11, 6, 17, tzinfo=UTC))))
    midnights = [float(x) for x in re.findall(r'<line x1="([\d.]+)"[^>]*class="day"', svg)]
    names = re.findall(r'class="dayname">([^<]+)<', svg)
    monday = midnights[names.index("Mon 2 Nov")]
    cross = float(re.search(r'<path d="M([\d.]+)[^"]*" class="run failed"', svg)[1]) + 5  # type: ignore[index]
    assert cross < monday, f"run at x={cross}, Monday's midnight at x={monday}"


@pytest.mark.parametrize("cost", ["NaN", "Infinity", "-Infinity", "1e999", "-3"])
def test_a_cost_that_is_no_amount_counts_nothing(tmp_path: Path, cost: str) -> None:
    """NaN, Infinity and 1e999 are valid to Python's json: the page is drawn, the run spent 0."""
    setup = two_zones(tmp_path)
    line = ('{"job":"ny-noon","kind":"job","config":"dst","start":"2026-12-05T17:00:00Z",'
            f'"result":"ok","tokens_in":10,"cost_usd":{cost}}}\n')  # fmt: skip
    (Path(setup.state_dir) / "runs.jsonl").write_text(line)
    glance = two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    html = render_page(glance)
    assert "nan" not in html.lower().split("<style>")[0]
    assert glance.spend is not None and glance.spend.total_usd == 0.0


def test_the_page_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It shows what the state holds (reasons, nag titles, spend): 0600, as the state is."""
    glance = two_zones_glance(two_zones(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC))
    target = tmp_path / "page.html"
    old = os.umask(0o022)
    try:
        write_page(glance, target)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_trouble_rows_are_newest_first_by_instant_across_offsets(tmp_path: Path) -> None:
    setup = two_zones(tmp_path)
    write_two_zones_runs(
        setup,
        {"job": "ny-noon", "start": "2026-12-05T17:00:00+00:00", "result": "failed"},
        {"job": "utc-five", "start": "2026-12-05T18:30:00+05:00", "result": "failed"},  # 13:30Z
    )
    rows = page_values(two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC)))["trouble"]
    assert [row["lane"] for row in rows] == ["ny-noon", "utc-five"]


def test_a_busy_history_is_a_mark_a_day_and_the_page_stays_small(tmp_path: Path) -> None:
    """20,000 runs in four days: a mark per lane and day (its worst run, the counts on hover),
    the trouble table the latest RECENT_TROUBLE failures and how many more."""
    setup = two_zones(tmp_path)
    records = [
        {"job": "ny-noon", "start": f"2026-12-0{1 + n // 5000}T{n // 60 % 24:02}:{n % 60:02}:00Z",
         "result": "failed" if n % 100 == 0 else "ok", "duration_s": 1.0}
        for n in range(20000)
    ]  # fmt: skip
    write_two_zones_runs(setup, *records)
    glance = two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))
    html = render_page(glance)
    assert len(html) < 200_000, f"{len(html):,} bytes"
    marks = re.findall(r'class="run day (\w+)"[^>]*><title>([^<]*)</title>', html)
    assert marks and all(result == "failed" for result, _ in marks), marks
    assert any("runs: " in words and "failed" in words for _, words in marks)
    assert f"The latest {RECENT_TROUBLE} shown; {200 - RECENT_TROUBLE} more" in html


def test_a_few_runs_a_day_are_a_mark_each(tmp_path: Path) -> None:
    setup = two_zones(tmp_path)
    write_two_zones_runs(
        setup,
        *({"job": "ny-noon", "start": f"2026-12-05T1{n}:00:00Z", "result": "ok"} for n in range(6)),
    )
    svg = str(past_runs(two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC))))
    assert svg.count('class="run ok"') == 6 and "run day" not in svg


def test_no_past_days_asked_no_past_section(tmp_path: Path) -> None:
    html = render_page(
        two_zones_glance(two_zones(tmp_path), datetime(2026, 12, 7, 14, tzinfo=UTC), past=0)
    )
    assert "The past 0 days" not in html and "No past runs asked" in html


def test_the_spend_chart_runs_to_today(tmp_path: Path) -> None:
    """Spend on the 2nd only, drawn on the 7th: the days to the 7th are columns (a quiet day
    is a day, not the end of the month)."""
    setup = two_zones(tmp_path)
    write_two_zones_runs(
        setup,
        {"job": "ny-noon", "start": "2026-12-02T17:00:00Z", "result": "ok", "tokens_in": 10,
         "cost_usd": 0.5},
    )  # fmt: skip
    drawn = page_values(two_zones_glance(setup, datetime(2026, 12, 7, 14, tzinfo=UTC)))
    chart = drawn["spend"]["chart"]
    days = re.findall(r'class="axis mid">(\d+)<', str(chart))
    assert days == [str(n) for n in range(1, 8)], days

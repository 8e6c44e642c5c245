"""The status page (compiler/glance/page.py) drawn from the real collector's Glance of the
reference workload with a month of runs: self-contained, escaped, each lane's next firing as
an independent cron implementation computes it, the failed run's reason in its mark's tooltip,
and the month's spend equal to the ledger's (`vigil cost`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from compiler.glance.model import InstalledGeneration
from compiler.glance.page import render_page, write_page
from compiler.operate.cost import month_to_date
from tests.conftest import require_systemd_analyze
from tests.glance_support import FAILED_REASON, NOW, UNRECORDED_USD, Bruba, bruba_with_history

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

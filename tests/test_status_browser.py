"""The status page in a real browser, the acceptance test: Debian's Chromium (/usr/bin/chromium)
driven by Playwright (never a browser of Playwright's own), on the page `vigil report --html`
writes and on the one `vigil serve` serves. No console error, no request but the page's own,
bruba's seven jobs with their next firings, a failed run's reason on hover, the month's total
equal to `vigil cost`'s. A screenshot goes to tests/artifacts/status-page.png.

Skipped where Chromium or Playwright is missing, unless VIGIL_REQUIRE_CHROMIUM is set (CI)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compiler.glance.page import write_page
from tests.conftest import ROOT, require_systemd_analyze
from tests.glance_support import FAILED_REASON, NOW, Bruba, bruba_with_history, start_serve
from tests.test_status_page import BRUBA_CRON, expected_next, shown

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"


def skip_or_fail(reason: str) -> None:
    if os.environ.get("VIGIL_REQUIRE_CHROMIUM"):
        pytest.fail(f"{reason} (VIGIL_REQUIRE_CHROMIUM is set, so this is not skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (Debian's chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a new, empty one: nothing carried
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def bruba(tmp_path_factory: pytest.TempPathFactory) -> Bruba:
    require_systemd_analyze()
    return bruba_with_history(tmp_path_factory.mktemp("bruba"))


class Watched:
    """A page with what it logged, threw and requested."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


def month_to_date_of_vigil_cost(bruba: Bruba, vigil: Any, monkeypatch: Any) -> float:
    monkeypatch.setenv("VIGIL_NOW", NOW.isoformat())
    result = vigil("cost", bruba.config, "--json")
    assert result.exit_code == 0, result.stderr
    return float(sum(row["spent_usd"] for row in json.loads(result.stdout)))


def check_page(watched: Watched, expected_usd: float) -> None:
    page = watched.page
    rows = page.locator("tr[data-kind=job]")
    assert rows.count() == 7
    for n, job in enumerate(BRUBA_CRON):
        row = rows.nth(n)
        assert row.get_attribute("data-lane") == job
        assert row.get_attribute("data-next") == expected_next(job).isoformat()
        assert row.locator("td.next").inner_text() == shown(expected_next(job))
        assert row.is_visible()
    check_failed_mark(page)
    total = page.locator("#cost-total")
    assert float(total.get_attribute("data-usd") or "nan") == pytest.approx(expected_usd, abs=1e-6)
    assert total.inner_text() == f"${expected_usd:,.2f}"
    segments = page.locator("svg rect.segment").evaluate_all(
        "bars => bars.reduce((sum, bar) => sum + Number(bar.dataset.usd), 0)"
    )
    assert segments == pytest.approx(expected_usd, abs=1e-5)


def check_failed_mark(page: Any) -> None:
    """The tooltip of an SVG shape is its <title> child, shown by the browser on hover (no
    script). Playwright moves the mouse to the mark's centre; the element under the pointer
    there must be the mark (nothing drawn over it), and its title says the reason."""
    mark = page.locator("path.run.failed")
    assert mark.count() == 1
    mark.hover()
    hovered = mark.evaluate(
        """mark => {
            const box = mark.getBoundingClientRect();
            const under = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
            return under === mark && mark.matches(':hover');
        }"""
    )
    assert hovered
    tooltip = mark.locator("title").text_content()
    assert tooltip.startswith("calendar-prep · Fri 4 Dec 07:00 · 1.5 s · failed (exit status 3)")
    assert tooltip.endswith(FAILED_REASON)


def test_the_written_page_in_chromium(
    browser, bruba: Bruba, tmp_path: Path, vigil, monkeypatch
) -> None:
    target = tmp_path / "status.html"
    write_page(bruba.glance(), target)
    watched = Watched(browser)
    watched.page.goto(target.as_uri())
    assert watched.requests == [("GET", target.as_uri())]  # the file itself, nothing else
    check_page(watched, month_to_date_of_vigil_cost(bruba, vigil, monkeypatch))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    watched.page.mouse.move(0, 0)
    watched.page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert watched.errors == []
    watched.page.close()


def test_the_served_page_in_chromium(browser, bruba: Bruba, vigil, monkeypatch) -> None:
    served = start_serve(bruba.config)
    try:
        watched = Watched(browser)
        watched.page.goto(served.url)
        check_page(watched, month_to_date_of_vigil_cost(bruba, vigil, monkeypatch))
        assert watched.requests == [("GET", served.url)]  # one GET /: no favicon, no fetch
        assert watched.errors == []
        watched.page.close()
    finally:
        code, err = served.stop()
    assert code == 0 and "Traceback" not in err, err

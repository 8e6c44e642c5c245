"""`vigil cost`: firings per month, the estimate, and month-to-date spend from runs.jsonl."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.language.loader import load_text
from compiler.language.model import Job
from compiler.language.validate import validate_document
from compiler.operate.cost import estimate, firings_per_month, month_to_date
from compiler.operate.setup import ConfigView
from tests.conftest import ROOT, require_systemd_analyze


def schedule_of(schedule: str | list[str]) -> list[str]:
    """The schedule as a job's model holds it."""
    return list(Job.model_validate({"schedule": schedule, "run": "true"}).schedule)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 9,14,18 * * *", 3 * 365 / 12),
        ("0 10 * * 1", 52 / 12),  # 2027 has 52 Mondays
        ("0 7 * * 1-5", 261 / 12),  # and 261 weekdays
        ("*/15 * * * *", 96 * 365 / 12),
        ("0 0 1 * *", 1.0),
        ("0 0 13 * 5", (12 + 53 - 1) / 12),  # the 13th OR a Friday; Aug 13 2027 is a Friday
        (["0 9 * * *", "0 21 * * *"], 2 * 365 / 12),
        ("@reboot", 0.0),
    ],
)
def test_cron_firings_per_month(schedule, expected: float) -> None:
    assert firings_per_month(schedule_of(schedule), "UTC") == pytest.approx(expected)


def test_calendar_firings_are_counted_by_systemd() -> None:
    require_systemd_analyze()
    assert firings_per_month(schedule_of("Mon..Fri *-*-* 07:00"), "UTC") == pytest.approx(
        261 / 12, 0.01
    )
    assert firings_per_month(schedule_of("*:0/5"), "UTC") == pytest.approx(
        288 * 365.2425 / 12, 0.01
    )


def unexpected(message: str) -> None:
    pytest.fail(f"unexpected warning: {message}")


def write_runs(directory: Path, runs: list[dict[str, object]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(run) + "\n" for run in runs)
    (directory / "runs.jsonl").write_text(text + "not json\n")


def test_month_to_date_counts_only_this_month(tmp_path: Path) -> None:
    write_runs(
        tmp_path,
        [
            {
                "job": "a",
                "start": "2026-11-02T09:00:00Z",
                "tokens_in": 900,
                "tokens_out": 100,
                "cost_usd": 0.0014,
            },
            {
                "job": "a",
                "start": "2026-11-03T09:00:00Z",
                "tokens_in": 0,
                "tokens_out": 0,
                "cost_usd": 0,
            },
            {
                "job": "a",
                "start": "2026-10-30T09:00:00Z",
                "tokens_in": 5000,
                "tokens_out": 5000,
                "cost_usd": 9.0,
            },
            {
                "job": "b",
                "start": "2026-11-04T09:00:00Z",
                "tokens_in": 10,
                "tokens_out": 10,
                "cost_usd": 0.5,
            },
        ],
    )
    totals = month_to_date(
        tmp_path, "demo", "UTC", datetime(2026, 11, 21, tzinfo=UTC), warn=unexpected
    )
    assert totals["a"] == pytest.approx((0.0014, 1000, 1))
    assert totals["b"] == pytest.approx((0.5, 20, 1))


def test_month_to_date_is_the_budgets_month_in_the_configs_timezone(tmp_path: Path) -> None:
    """03:00 UTC on 1 November is still October in New York: the run counts for October."""
    late = {"job": "a", "start": "2026-11-01T03:00:00Z", "tokens_in": 700, "cost_usd": 0.25}
    write_runs(tmp_path, [late])
    in_november = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert month_to_date(tmp_path, "demo", "America/New_York", in_november, warn=unexpected) == {}
    assert month_to_date(tmp_path, "demo", "UTC", in_november, warn=unexpected) == {
        "a": (0.25, 700, 1)
    }
    in_october = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)
    assert month_to_date(tmp_path, "demo", "America/New_York", in_october, warn=unexpected) == {
        "a": (0.25, 700, 1)
    }


def test_month_to_date_reads_the_spend_ledger_budgets_count(tmp_path: Path) -> None:
    """Once a month has a ledger, rotation of runs.jsonl cannot make `vigil cost` forget."""
    write_runs(tmp_path, [])
    (tmp_path / "state").mkdir()
    ledger = {
        "version": 1,
        "month": "2026-12",
        "jobs": {"a": {"tokens": 5_000_000, "usd": 9.999, "calls": 4000}},
        "reservations": {},
    }
    (tmp_path / "state" / "spend-2026-12.json").write_text(json.dumps(ledger))
    totals = month_to_date(
        tmp_path, "demo", "Europe/Berlin", datetime(2026, 12, 29, tzinfo=UTC), warn=unexpected
    )
    assert totals == {"a": (9.999, 5_000_000, 4000)}


def test_month_to_date_of_a_ledger_of_another_shape_is_runs_jsonl_and_says_so(
    tmp_path: Path,
) -> None:
    """What the next run will count once it sets the file aside, and the report changes
    nothing itself."""
    write_runs(tmp_path, [{"job": "a", "start": "2026-12-03T09:00:00Z", "tokens_in": 70}])
    (tmp_path / "state").mkdir()
    book = tmp_path / "state" / "spend-2026-12.json"
    book.write_text(json.dumps({"version": 2, "jobs": {"a": {"tokens": 5_000_000}}}))
    said: list[str] = []
    totals = month_to_date(
        tmp_path, "demo", "UTC", datetime(2026, 12, 29, tzinfo=UTC), warn=said.append
    )
    assert totals == {"a": (0.0, 70, 1)}
    err = "\n".join(said)
    assert "state/spend-2026-12.json is version 2" in err
    assert "spend may be undercounted" in err
    assert book.exists()


def test_reference_workload_cost_beside_the_seed_estimate(tmp_path: Path) -> None:
    text = (ROOT / "examples/bruba.yaml").read_text()
    text = text.replace("name: bruba\n", f"name: bruba\nstate_dir: {tmp_path}\n")
    config = validate_document(load_text(text, "bruba.yaml"), check_calendar=False).config
    rows = {row.job: row for row in estimate(ConfigView.of_config(config), warn=unexpected)}
    # The reference design's own table: reminder-check ~$0.20, staleness ~$0.02,
    # calendar-prep ~$0.05, morning-briefing ~$0.50, the LLM heartbeat ~$3.00 (~$4 in all).
    assert rows["reminder-check"].estimate_usd == pytest.approx(0.20, abs=0.02)
    assert rows["staleness-check"].estimate_usd == pytest.approx(0.0135, abs=0.01)
    assert rows["calendar-prep"].estimate_usd == pytest.approx(0.06, abs=0.02)
    assert rows["nightly-reset-prep"].estimate_usd == 0.0
    total = sum(row.estimate_usd or 0 for row in rows.values())
    assert total < 1.0  # vigil's coordinator is rules: the $3 heartbeat is gone


def test_cost_cli_table_and_json(vigil) -> None:
    result = vigil("cost", ROOT / "examples/bruba.yaml")
    assert result.exit_code == 0, result.stderr
    assert "coordinator heartbeat" in result.stdout and "$0.00" in result.stdout
    data = json.loads(vigil("cost", ROOT / "examples/bruba.yaml", "--json").stdout)
    by_job = {row["job"]: row for row in data}
    assert by_job["reminder-check"]["firings_per_month"] == pytest.approx(91.25)
    assert by_job["morning-briefing"]["model"] == "claude-sonnet-4-5"


def test_status_and_cost_count_the_same_month(tmp_path: Path) -> None:
    """A run at 03:00 UTC on 1 March is February's in New York, for budgets, `vigil cost` and
    `vigil status` alike."""
    from compiler.layout import Scope
    from compiler.operate.status import collect

    text = (ROOT / "examples/bruba.yaml").read_text()
    text = text.replace("name: bruba\n", f"name: bruba\nstate_dir: {tmp_path}\n")
    config = validate_document(load_text(text, "bruba.yaml"), check_calendar=False).config
    assert config.timezone == "America/New_York"
    run = {
        "job": "reminder-check",
        "kind": "job",
        "config": "bruba",
        "start": "2026-03-01T03:00:00Z",
        "result": "ok",
        "tokens_in": 1000,
        "tokens_out": 200,
        "cost_usd": 0.002,
    }
    write_runs(tmp_path, [run])
    for now, tokens in (
        (datetime(2026, 3, 1, 4, 0, tzinfo=UTC), 1200),
        (datetime(2026, 3, 2, tzinfo=UTC), 0),
    ):
        scope = Scope(root=tmp_path)
        rows = {
            row.name: row
            for row in collect(
                ConfigView.of_config(config), scope, tmp_path, now=now, warn=unexpected
            )
        }
        costs = {
            row.job: row for row in estimate(ConfigView.of_config(config), now=now, warn=unexpected)
        }
        assert rows["reminder-check"].tokens_month == costs["reminder-check"].spent_tokens == tokens


def test_cost_shows_each_jobs_median_tokens_per_run_beside_its_estimate(
    vigil, tmp_path: Path
) -> None:
    """The median of the job's last 20 model runs (older ones and other configs' do not
    count); a job without model runs shows '-'."""
    text = (ROOT / "examples/bruba.yaml").read_text()
    config = tmp_path / "vigil.yaml"
    config.write_text(text.replace("name: bruba\n", f"name: bruba\nstate_dir: {tmp_path}\n"))
    base = {"job": "reminder-check", "kind": "job", "config": "bruba", "result": "ok"}
    old = [{**base, "tokens_in": 90000, "tokens_out": 0}] * 5  # beyond the last 20
    recent = [{**base, "tokens_in": 1000 + 10 * n, "tokens_out": 200} for n in range(20)]
    other = [{**base, "config": "other", "tokens_in": 5, "tokens_out": 0}] * 30
    write_runs(tmp_path, [*old, *recent, *other])
    result = vigil("cost", config)
    assert result.exit_code == 0, result.stderr
    [line] = [row for row in result.stdout.splitlines() if row.startswith("reminder-check ")]
    assert line.split()[4] == "1,295"  # 1,200 + the median of 0, 10, ..., 190 (95)
    [briefing] = [row for row in result.stdout.splitlines() if row.startswith("morning-briefing")]
    assert briefing.split()[4] == "-"
    data = json.loads(vigil("cost", config, "--json").stdout)
    assert {row["job"]: row["median_tokens"] for row in data}["reminder-check"] == 1295


def test_month_to_date_counts_a_cost_that_is_no_amount_as_nothing(tmp_path: Path) -> None:
    """`vigil cost --json` is JSON: a run's NaN or Infinity (valid to Python's json) is 0."""
    write_runs(
        tmp_path,
        [
            {"job": "a", "start": "2026-11-02T09:00:00Z", "tokens_in": 9, "cost_usd": math.nan},
            {"job": "a", "start": "2026-11-03T09:00:00Z", "tokens_in": 1, "cost_usd": math.inf},
            {"job": "a", "start": "2026-11-04T09:00:00Z", "tokens_in": 5, "cost_usd": 0.25},
        ],
    )
    totals = month_to_date(
        tmp_path, "demo", "UTC", datetime(2026, 11, 21, tzinfo=UTC), warn=unexpected
    )
    assert totals["a"] == (0.25, 15, 3)
    json.dumps(totals, allow_nan=False)

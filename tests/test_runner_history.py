"""runs.jsonl: the fields of a record, rotation, concurrent appends, and the reading helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.history import Usage, append_line, last_run, runs, usage_since
from tests.runner_support import ROOT, run_runner, shell_spec, write_spec

FIELDS = {
    "job",
    "kind",
    "config",
    "invocation_id",
    "start",
    "end",
    "duration_s",
    "exit_status",
    "result",
    "reason",
    "command_exit",
    "finding_written",
    "findings",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "model",
    "notes",
}


def test_one_line_per_run_with_every_field(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, shell_spec(tmp_path, "echo hi"))
    for _ in range(3):
        assert run_runner("job", spec).returncode == 0
    lines = (tmp_path / "state" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert set(record) == FIELDS
    assert record["kind"] == "job"
    assert record["config"] == "bruba"
    start = datetime.fromisoformat(record["start"])
    end = datetime.fromisoformat(record["end"])
    assert start.tzinfo is not None and start <= end
    assert record["duration_s"] >= 0
    assert (record["tokens_in"], record["tokens_out"], record["cost_usd"]) == (0, 0, 0.0)


def test_rotation_keeps_one_old_file(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, shell_spec(tmp_path, "true", history_max_bytes=1000))
    for _ in range(8):
        assert run_runner("job", spec).returncode == 0
    state = tmp_path / "state"
    current = state / "runs.jsonl"
    old = state / "runs.jsonl.1"
    assert old.exists()
    assert current.stat().st_size <= 1000
    assert old.stat().st_size <= 1000
    assert not (state / "runs.jsonl.2").exists()
    # Reading sees the old file too, oldest first.
    starts = [record["start"] for record in runs(str(state))]
    assert starts == sorted(starts)
    assert len(starts) >= 3


def test_reading_skips_what_is_not_a_record_and_keeps_every_record_whole(tmp_path: Path) -> None:
    """The one reader of runs.jsonl (the runner's, `vigil status` and `vigil run --wait`): the
    rotated file first; a torn line, a line that is not an object or not UTF-8 skipped; a record
    whose text holds a line separator (U+2028, which JSON leaves as it is) kept whole."""
    (tmp_path / "runs.jsonl.1").write_text('{"job": "old"}\n{"job": "to', encoding="utf-8")
    lines = [
        json.dumps({"job": "a", "reason": "one\u2028two"}, ensure_ascii=False).encode(),
        b"[1, 2]",
        b'{"job": "\xff"}',
        b'{"job": "b"}',
        b'{"job": "tor',
    ]
    (tmp_path / "runs.jsonl").write_bytes(b"\n".join(lines))
    records = [{"job": "old"}, {"job": "a", "reason": "one\u2028two"}, {"job": "b"}]
    assert list(runs(str(tmp_path))) == records


def test_a_runs_file_that_cannot_be_read_is_an_error_not_an_empty_history(tmp_path: Path) -> None:
    """`vigil status` then says what it cannot read instead of showing no failures."""
    (tmp_path / "runs.jsonl").mkdir()
    with pytest.raises(IsADirectoryError):
        list(runs(str(tmp_path)))


WRITER = """
import sys

from runner.history import append_line
state, writer = sys.argv[1], sys.argv[2]
for n in range(50):
    line = '{"job": "w%s", "n": %d, "pad": "%s"}' % (writer, n, writer * 300)
    append_line(state, line, 10**9)
"""


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(i)], cwd=ROOT)
        for i in range(8)
    ]
    assert all(writer.wait(timeout=30) == 0 for writer in writers)
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 400
    records = [json.loads(line) for line in lines]
    for i in range(8):
        mine = [r["n"] for r in records if r["job"] == f"w{i}"]
        assert mine == list(range(50))
    assert all(r["pad"] == r["job"][1:] * 300 for r in records)


def test_concurrent_appends_with_rotation_lose_nothing(tmp_path: Path) -> None:
    writer = WRITER.replace("10**9", "20000")
    writers = [
        subprocess.Popen([sys.executable, "-c", writer, str(tmp_path), str(i)], cwd=ROOT)
        for i in range(8)
    ]
    assert all(w.wait(timeout=30) == 0 for w in writers)
    # 400 lines of ~330 bytes do not fit in two 20 kB files: some were rotated away, but every
    # line still on disk is whole, and no rotation clobbered a fresh file.
    for name in ("runs.jsonl", "runs.jsonl.1"):
        for line in (tmp_path / name).read_text().splitlines():
            json.loads(line)
    assert (tmp_path / "runs.jsonl.1").stat().st_size > 10000


def test_last_run_and_month_usage(tmp_path: Path) -> None:
    state = str(tmp_path)
    records = [
        {"job": "a", "kind": "job", "config": "c", "start": "2026-01-31T23:00:00Z",
         "result": "ok", "tokens_in": 500, "tokens_out": 500, "cost_usd": 1.0},
        {"job": "a", "kind": "job", "config": "c", "start": "2026-02-01T01:00:00Z",
         "result": "failed", "tokens_in": 100, "tokens_out": 20, "cost_usd": 0.5},
        {"job": "b", "kind": "job", "config": "c", "start": "2026-02-02T01:00:00Z",
         "result": "ok", "tokens_in": 10, "tokens_out": 5, "cost_usd": 0.25},
        {"job": "a", "kind": "job", "config": "other", "start": "2026-02-02T01:00:00Z",
         "result": "ok", "tokens_in": 999, "tokens_out": 999, "cost_usd": 9.0},
    ]  # fmt: skip
    for record in records:
        append_line(state, json.dumps(record), 10**6)
    append_line(state, "{torn line", 10**6)
    last = last_run(state, "a")
    assert last is not None and last["config"] == "other"
    assert last_run(state, "nobody") is None
    per_job, overall = usage_since(state, "c", datetime(2026, 2, 1, tzinfo=UTC))
    assert (per_job["a"].tokens, per_job["a"].usd) == (120, 0.5)
    assert (overall.tokens, overall.usd) == (135, 0.75)


@pytest.mark.parametrize("cost", ["NaN", "Infinity", "-Infinity", "1e999", "-0.5", "1" + "0" * 400])
def test_a_cost_or_count_that_is_no_amount_counts_nothing(tmp_path: Path, cost: str) -> None:
    """NaN, Infinity and 1e999 are valid to Python's json, a negative amount is none: every
    reader of runs.jsonl (budgets, `vigil cost`, the pictures) counts such a run's spend 0."""
    line = ('{"job":"a","kind":"job","config":"c","start":"2026-02-02T01:00:00Z","result":"ok",'
            f'"tokens_in":-5,"tokens_out":10,"cost_usd":{cost}}}')  # fmt: skip
    append_line(str(tmp_path), line, 10**6)
    usage = Usage.of_run(next(runs(str(tmp_path))))
    assert (usage.tokens, usage.usd, usage.calls) == (10, 0.0, 1)
    _, overall = usage_since(str(tmp_path), "c", datetime(2026, 2, 1, tzinfo=UTC))
    assert (
        json.dumps(overall.as_json(), allow_nan=False) == '{"tokens": 10, "usd": 0.0, "calls": 1}'
    )
    assert Usage.of({"tokens": 3, "usd": float("nan"), "calls": 1}).usd == 0.0

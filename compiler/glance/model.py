"""What the pictures show: one Glance, gathered by glance/collect.py and drawn by the terminal
timeline and the status page alike. Every moment is an aware datetime; a drawing shows it in
`Glance.timezone` (the config's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any


class LaneKind(StrEnum):
    JOB = "job"
    WATCH = "watch"
    COORDINATOR = "coordinator"


class Mark(StrEnum):
    """A past run as a mark: runs.jsonl's result words fall into these four."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    """It did not run its command, by design: its `after:` predecessor did not succeed."""
    MISSED = "missed"
    """A timer firing no run followed (recorded by the heartbeat)."""


MOST_PER_CELL = 9
"""A lane firing more often than this per cell (on average) is drawn as a band: a count of
10 or more says nothing a band does not."""


def day_start(day: date, where: tzinfo) -> datetime:
    """The first instant of `day` in `where`: midnight, or when the clock jumped past it (a
    zone that changes its clocks at midnight has no 00:00 that day)."""
    midnight = datetime.combine(day, time(), where)
    if midnight.astimezone(UTC).astimezone(where).replace(tzinfo=None) == midnight.replace(
        tzinfo=None
    ):
        return midnight
    # In the gap: the jump happened between the wall clock read with the offset after it
    # (fold=1, earlier in real time) and with the one before it; step a minute at a time.
    moment = midnight.replace(fold=1).astimezone(UTC)
    while moment.astimezone(where).date() < day:
        moment += timedelta(minutes=1)
    return moment.astimezone(where)


class ShadeKind(StrEnum):
    QUIET = "quiet"
    """Quiet hours: alerts wait (but urgent ones) until they end."""
    MAINTENANCE = "maintenance"
    """A maintenance window: matching alerts are held or dropped."""


@dataclass(frozen=True)
class Run:
    """One line of runs.jsonl."""

    start: datetime
    mark: Mark
    result: str
    """The runner's own word (ok, failed, timeout, budget, missed...)."""
    duration_s: float | None = None
    reason: str | None = None
    exit_status: int | None = None
    tokens: int = 0
    cost_usd: float = 0.0


def failed_runs(runs: Iterable[Run]) -> int:
    """How many of `runs` failed: the terminal's tally and the page's table count alike."""
    return sum(run.mark is Mark.FAILED for run in runs)


@dataclass(frozen=True)
class Lane:
    """One row of the pictures: a job, a watch or the coordinator."""

    name: str
    kind: LaneKind
    firings: tuple[datetime, ...] = ()
    """When it runs (a watch: its deadlines) within the window ahead."""
    runs: tuple[Run, ...] = ()
    """What ran within the window behind, oldest first."""
    cut: bool = False
    """More firings than are computed (a job every minute): the window is full of them."""
    schedule: str = ""
    """The schedule as systemd reads it, or what a watch awaits."""
    note: str = ""
    """Paused, disabled, not installed...: why it may not run as drawn."""

    def dense(self, cells: int, most: int = MOST_PER_CELL) -> bool:
        """Fires more than `most` times a cell on average over `cells` cells (a heartbeat, a
        job every minute), or more often than computed: drawn as a band, not firing by firing."""
        return self.cut or len(self.firings) > most * max(cells, 1)

    def next_firing(self, now: datetime) -> datetime | None:
        """The first firing at or after `now` (compared as instants, not wall clocks)."""
        return next((f for f in self.firings if f.timestamp() >= now.timestamp()), None)

    @property
    def failed(self) -> int:
        """How many of its runs behind failed (missed firings are counted apart)."""
        return failed_runs(self.runs)


@dataclass(frozen=True)
class Shade:
    """A stretch of time drawn shaded: quiet hours or a maintenance window (in UTC)."""

    kind: ShadeKind
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class BudgetUse:
    """A monthly limit and what counts against it this month."""

    scope: str
    """`global` (every job's calls) or the job's name."""
    monthly_usd: float | None
    monthly_tokens: int | None
    spent_usd: float
    spent_tokens: int


@dataclass(frozen=True)
class Spend:
    """This calendar month's model spend (in the config's timezone)."""

    month: str
    """2026-12."""
    by_day: dict[date, dict[str, float]]
    """Day -> job -> USD, from the run history."""
    by_job: dict[str, tuple[float, int, int]]
    """Job -> (USD, tokens, calls) month to date: the ledger budgets count (`vigil cost`)."""
    unrecorded: dict[str, float]
    """Job -> USD the ledger holds and the run history no longer does (rotated, or a call
    whose run died): drawn apart, so that the days add up to the month."""
    budgets: tuple[BudgetUse, ...]

    @property
    def total_usd(self) -> float:
        return sum(usd for usd, _, _ in self.by_job.values())


@dataclass(frozen=True)
class InstalledGeneration:
    """The generation that runs, and whether what is on disk is still what it installed."""

    generation: int
    config_file: str | None
    config_sha256: str | None
    git: dict[str, Any] | None
    """The config's git revision when applied (None: not in a repository)."""
    applied: str | None
    """When the generation was made (ISO 8601)."""
    drift: tuple[str, ...] = ()
    """Installed files changed by hand since."""
    config_changed: bool = False
    """The config file's content is not what was applied."""


@dataclass(frozen=True)
class Glance:
    name: str
    timezone: str
    now: datetime
    since: datetime
    """The window behind starts here (past runs)."""
    until: datetime
    """The window ahead ends here (firings)."""
    lanes: tuple[Lane, ...]
    shades: tuple[Shade, ...]
    nag: tuple[dict[str, Any], ...] = ()
    """Open nag items, as `vigil state` lists them."""
    watches: tuple[dict[str, Any], ...] = ()
    """Watch instances, as `vigil watches` lists them."""
    spend: Spend | None = None
    generation: InstalledGeneration | None = None
    """None: the config is not installed; shown as written."""
    problems: tuple[str, ...] = field(default_factory=tuple)
    """What could not be read (a state file of an unknown shape...), said with the picture."""

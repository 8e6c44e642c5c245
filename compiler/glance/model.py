"""What the pictures show: one Glance, gathered by glance/collect.py and drawn by the terminal
timeline and the status page alike. Every moment is an aware datetime; a drawing shows it in
`Glance.timezone` (the config's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
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

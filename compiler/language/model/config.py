"""The whole config file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.language.model.channels import Channel
from compiler.language.model.coordinator import Coordinator
from compiler.language.model.fleet import Fleet
from compiler.language.model.gating import Inhibit, Maintenance
from compiler.language.model.jobs import Job
from compiler.language.model.llm import Budget, LlmDefaults
from compiler.language.model.nag import NagRule
from compiler.language.model.release import Release
from compiler.language.model.replies import ReplySource
from compiler.language.model.types import Name, Names, PathStr, StrictModel, TimeZone
from compiler.language.model.watches import Watch


class Config(StrictModel):
    """A vigil config: the background layer of one agent setup."""

    model_config = StrictModel.model_config | {"title": "vigil config"}

    version: Literal[1] = 1
    """Version of the config language."""
    name: Name
    """Prefix of every unit name (`<name>-<job>.service`) and of the default state directory."""
    timezone: TimeZone = "UTC"
    """Default timezone of every schedule, deadline and quiet-hours window."""
    state_dir: PathStr | None = None
    """Where inbox/, outbox/, state/ and runs.jsonl live; default ~/.local/state/vigil/<name>."""
    secrets: dict[Name, PathStr] = {}
    """Secret name -> file holding it. Passed to services with LoadCredential=, never copied."""
    llm: LlmDefaults = LlmDefaults()
    """Defaults for jobs with a `prompt`."""
    budget: Budget | None = None
    """Monthly limit over all jobs together."""
    channels: dict[Name, Channel] = Field(default_factory=dict)
    """Where messages go."""
    jobs: dict[Name, Job] = Field(default_factory=dict)
    """Scheduled detectors and actions."""
    watches: dict[Name, Watch] = Field(default_factory=dict)
    """Future conditions: deadlines, matches, expected files, silences."""
    nag: dict[Name, NagRule] = Field(default_factory=dict)
    """Escalation rules for the items sources report."""
    coordinator: Coordinator
    """How findings become delivered messages."""
    inhibit: dict[Name, Inhibit] = Field(default_factory=dict)
    """While one condition holds (a job failing), hold back the alerts that follow from it."""
    maintenance: dict[Name, Maintenance] = Field(default_factory=dict)
    """Recurring windows in which matching alerts are held (or dropped)."""
    replies: dict[Name, ReplySource] = Field(default_factory=dict)
    """Where the person's answers come from (reply to acknowledge, snooze...): each a
    long-running service writing what it receives into the inbox."""
    release: Release = Release()
    """How changes go live (canary applies, automatic rollback) and when failing jobs pause."""
    fleet: Fleet | None = None
    """Several machines sharing one coordinator over NATS: the config is compiled for one of
    `hosts` at a time (`--host`), which gets its jobs, a forwarder and, on a coordinator host,
    the coordinator."""
    hosts: Names | None = None
    """The fleet's machines (with `fleet:` only); each job names its `host:` or runs on all."""

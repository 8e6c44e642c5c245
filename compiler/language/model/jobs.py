"""Jobs: scheduled detectors and actions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator

from compiler.language.model.llm import Budget, ExpectedTokens
from compiler.language.model.release import CanaryMode, FailureCount
from compiler.language.model.types import (
    Duration,
    EnvName,
    Line,
    Name,
    PathStr,
    PositiveDuration,
    Schedules,
    StrictModel,
    Text,
    TimeZone,
    UnitText,
)
from runner.spectypes import OutputMode


def _check_command(value: object) -> str | list[str]:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("is empty")
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        return value
    if isinstance(value, list) and value and all(isinstance(arg, str) for arg in value):
        if not value[0]:
            raise ValueError("the program (first argument) is empty")
        if any("\x00" in arg for arg in value):
            raise ValueError("contains a NUL character")
        return list(value)
    raise ValueError(
        "must be a string (run with /bin/sh -c) or a non-empty list of strings "
        "(program and arguments)"
    )


Command = Annotated[
    str | list[str],
    PlainValidator(_check_command),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "description": "A command line for /bin/sh -c."},
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "A program and its arguments, run without a shell.",
                },
            ]
        }
    ),
]


class Sandbox(StrictModel):
    """How much of the system a service may touch. standard and strict keep the kernel,
    devices, other users and privileges out of reach and differ in files; off turns it off."""

    level: Literal["strict", "standard", "off"] = "standard"
    """standard: reads everything the user can, writes only the state directory, /tmp and
    `writable`. strict: sees nothing below the home directories but the installed vigil tree,
    its Python, the working directory, `readable` and `writable`; private /tmp; no
    writable-executable memory (JIT runtimes such as node need standard); no priority changes.
    off: only a private umask, for jobs that need privileges or write all over the home."""
    writable: list[PathStr] = []
    """Paths the service may write besides vigil's state directory (a backup repository, a
    tool's cache). Paths that do not exist when the service starts are left out."""
    readable: list[PathStr] = []
    """What a strict service may also read below the home directories (standard reads
    everything anyway). Paths that do not exist when the service starts are left out."""
    network: bool = True
    """Whether the service may use the network; false leaves it a private loopback and local
    sockets only."""


class Job(StrictModel):
    """A scheduled command, optionally followed by an LLM detector prompt."""

    description: UnitText | None = None
    """What the job is for; shown in status and unit files."""
    schedule: Schedules
    """When the job runs: cron or systemd calendar syntax, one or a list."""
    timezone: TimeZone | None = None
    """Overrides the config's timezone for this job's schedule."""
    run: Command | None = None
    """The command: a string for /bin/sh -c, or a list (program and arguments)."""
    prompt: Text | None = None
    """Makes the job an LLM detector: asked only when the command reports something."""
    model: Line | None = None
    """Anthropic model for the prompt; defaults to llm.model."""
    max_tokens: Annotated[int, Field(gt=0, le=128000)] | None = None
    """Upper bound on the reply's tokens; defaults to llm.max_tokens."""
    expected_tokens: ExpectedTokens | None = None
    """Typical tokens per call, for `vigil cost`."""
    budget: Budget | None = None
    """This job's own monthly budget, on top of the global one."""
    timeout: PositiveDuration = 600
    """How long one run may take before it is stopped and counted as failed."""
    environment: dict[EnvName, Text] = {}
    """Extra environment variables for the command."""
    working_directory: PathStr | None = None
    """Directory the command runs in; defaults to the state directory."""
    secrets: list[Name] = []
    """Secrets the command may read from $CREDENTIALS_DIRECTORY."""
    enabled: bool = True
    """A disabled job is compiled but its timer is not started."""
    randomized_delay: Duration = 0
    """Spread the start by up to this long (RandomizedDelaySec=)."""
    accuracy: PositiveDuration = 60
    """How late systemd may start the job to batch wake-ups (AccuracySec=)."""
    catch_up: bool = True
    """Run once at start-up if a run was missed while the machine was off (Persistent=)."""
    output: OutputMode = "findings"
    """findings: JSON on stdout is a finding (or a list), other text is log; log: all output is
    log; message: any non-empty output becomes a finding with that message."""
    after: Name | None = None
    """A job that must have succeeded earlier in the same cycle; otherwise this run reports that
    instead of running."""
    sandbox: Sandbox = Sandbox()
    """Hardening of the job's service: what it may read, write and reach."""
    check: Command | None = None
    """A side-effect-free probe that says whether the job would work (e.g. `openclaw status`):
    run in the job's sandbox by canary applies (instead of the job) and by `preflight`."""
    canary: Annotated[CanaryMode, Field(strict=False)] | None = None
    """What a canary apply does with this job when it changed: `try` runs it, `check` runs its
    `check:`, `skip` leaves it alone. Default: `check` when the job has one, else `try`."""
    pause_after: FailureCount | None = None
    """Stop the job's timer after this many failed runs in a row (one alert; `vigil enable`
    resumes). Defaults to release.pause_after; off when neither is set."""
    preflight: PositiveDuration | None = None
    """Run `check:` this long before each firing, and alert at once when it fails."""
    host: Name | None = None
    """With `fleet:`: the machine (one of `hosts`) that runs the job."""
    hosts: Literal["all"] | None = None
    """With `fleet:`: `all` makes every machine of `hosts` run the job (instead of `host`)."""

    @model_validator(mode="after")
    def _run_or_prompt(self) -> Job:
        if self.run is None and self.prompt is None:
            raise ValueError("a job needs `run`, `prompt` or both")
        if self.prompt is None:
            for key in ("model", "max_tokens", "expected_tokens", "budget"):
                if getattr(self, key) is not None:
                    raise ValueError(f"`{key}` only applies to jobs with a `prompt`")
        if self.check is None:
            if self.canary is CanaryMode.CHECK:
                raise ValueError("`canary: check` needs a `check:` command")
            if self.preflight is not None:
                raise ValueError("`preflight` runs the job's `check:`, and it has none")
        return self

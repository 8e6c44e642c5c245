"""Job and failure specs: the JSON the compiler writes, read and checked with stdlib code.

Paths keep `~` in the spec; it is expanded here, for the user the service runs as. A spec that
does not have the expected shape is a SpecError (exit 2): nothing runs, nothing is recorded.
"""

from __future__ import annotations

import json
import os

from runner.contract import SPEC_VERSION

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from typing import Any

    from runner.spectypes import FleetJSON
    from runner.trial import Trial

__all__ = ["SPEC_VERSION"]  # also read by `vigil doctor`'s probe of another interpreter
OUTPUT_MODES = ("findings", "log", "message")
"""runner.spectypes.OutputMode at run time (tests/test_spectypes.py checks they agree)."""
DEFAULT_HISTORY_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_RETRIES = 2


class SpecError(Exception):
    """The spec file is missing, not JSON, or lacks a field this runner needs."""


class _Fields:
    """Typed access to one JSON object; every error names the field's path."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise SpecError(f"{where or 'spec'}: expected an object")
        self.data: dict[str, object] = data
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, optional: bool) -> object:
        if key not in self.data and not optional:
            raise SpecError(f"{self._name(key)}: missing")
        return self.data.get(key)

    def text(self, key: str) -> str:
        value = self._get(key, False)
        if not isinstance(value, str) or not value:
            raise SpecError(f"{self._name(key)}: expected a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, True)
        if value is None:
            return None
        if not isinstance(value, str):
            raise SpecError(f"{self._name(key)}: expected a string or null")
        return value

    def optional_number(self, key: str, *, positive: bool = True) -> float | None:
        value = self._get(key, True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{self._name(key)}: expected a number")
        if positive and value <= 0:
            raise SpecError(f"{self._name(key)}: expected a number above 0")
        return float(value)

    def number(self, key: str) -> float:
        value = self.optional_number(key)
        if value is None:
            raise SpecError(f"{self._name(key)}: missing")
        return value

    def optional_whole(self, key: str, *, minimum: int = 1) -> int | None:
        value = self._get(key, True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(f"{self._name(key)}: expected a whole number >= {minimum}")
        return value

    def whole(self, key: str, *, minimum: int = 1) -> int:
        value = self.optional_whole(key, minimum=minimum)
        if value is None:
            raise SpecError(f"{self._name(key)}: missing")
        return value

    def strings(self, key: str) -> list[str]:
        value = self._get(key, False)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{self._name(key)}: expected a non-empty list of strings")
        return [str(v) for v in value]

    def child(self, key: str, optional: bool = False) -> _Fields | None:
        value = self._get(key, optional)
        return None if value is None else _Fields(value, self._name(key))

    def string_map(self, key: str) -> dict[str, str]:
        value = self._get(key, True) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise SpecError(f"{self._name(key)}: expected an object of strings")
        return {str(k): str(v) for k, v in value.items()}

    def children(self, key: str) -> dict[str, _Fields]:
        """An optional object of objects, by key."""
        value = self._get(key, True) or {}
        if not isinstance(value, dict):
            raise SpecError(f"{self._name(key)}: expected an object")
        return {str(k): _Fields(v, f"{self._name(key)}.{k}") for k, v in value.items()}

    def objects(self, key: str) -> list[_Fields]:
        value = self._get(key, True) or []
        if not isinstance(value, list):
            raise SpecError(f"{self._name(key)}: expected a list")
        return [_Fields(item, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]


class After:
    """The predecessor of a chain step: its schedule (`calendar`: OnCalendar= lines and zone)
    and, for a schedule the runner cannot read, how recent its success must be (seconds)."""

    def __init__(self, fields: _Fields) -> None:
        self.job = fields.text("job")
        self.unit = fields.optional_text("unit")
        self.window = fields.optional_number("window")
        self.calendar: tuple[list[str], str] | None = None
        timer = fields.child("calendar", optional=True)
        if timer is not None:
            lines = timer.data.get("on_calendar")
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise SpecError(f"{timer.where}.on_calendar: expected a list of strings")
            self.calendar = ([str(x) for x in lines], timer.text("timezone"))


class Llm:
    """How to ask the model. `max_retries` is optional (the SDK's retries on 429/5xx)."""

    def __init__(self, fields: _Fields) -> None:
        self.prompt = fields.text("prompt")
        self.model = fields.text("model")
        self.max_tokens = fields.whole("max_tokens")
        self.api_key_credential = fields.optional_text("api_key_credential")
        self.base_url = fields.optional_text("base_url")
        self.timeout = fields.optional_number("timeout") or 60.0
        self.expected_tokens = fields.optional_whole("expected_tokens")
        """One call's expected input and output tokens (None: judged by the job's history)."""
        retries = fields.optional_whole("max_retries", minimum=0)
        self.max_retries = DEFAULT_MAX_RETRIES if retries is None else retries
        price = fields.child("price_per_mtok", optional=True)
        self.price_per_mtok: tuple[float, float] | None = None
        if price is not None:
            self.price_per_mtok = (
                price.optional_number("input", positive=False) or 0.0,
                price.optional_number("output", positive=False) or 0.0,
            )


class BudgetSpec:
    """A monthly limit on tokens and/or US dollars, for this job or for the whole config."""

    def __init__(self, fields: _Fields) -> None:
        self.scope = fields.text("scope")
        if self.scope not in ("job", "global"):
            raise SpecError(f"{fields.where}.scope: expected 'job' or 'global'")
        self.monthly_tokens = fields.optional_whole("monthly_tokens")
        self.monthly_usd = fields.optional_number("monthly_usd")


class _Common:
    def __init__(self, fields: _Fields, kind: str) -> None:
        version = fields.data.get("spec")
        if version != SPEC_VERSION:
            raise SpecError(f"spec: version {version!r} is not supported (expected {SPEC_VERSION})")
        found = fields.text("kind")
        if found != kind:
            raise SpecError(f"kind: this is a {found!r} spec, not a {kind!r} spec")
        self.config = fields.text("config")
        self.scope = fields.optional_text("scope") or "user"
        self.state_dir = os.path.expanduser(fields.text("state_dir"))
        self.timezone = fields.optional_text("timezone") or "UTC"
        self.history_max_bytes = (
            fields.optional_whole("history_max_bytes") or DEFAULT_HISTORY_MAX_BYTES
        )


class JobSpec(_Common):
    """A scheduled job: its command, output contract, chain, model and budgets."""

    def __init__(self, fields: _Fields) -> None:
        super().__init__(fields, "job")
        self.job = fields.text("job")
        self.unit = fields.optional_text("unit") or f"{self.config}-{self.job}.service"
        self.argv = _command(fields, "command")
        self.check_argv = _command(fields, "check")
        self.preflight = fields.optional_number("preflight")
        """Seconds before each firing the check runs (`preflight:`), or None."""
        self.timeout = fields.number("timeout")
        self.environment = fields.string_map("environment")
        directory = fields.optional_text("working_directory")
        self.working_directory = os.path.expanduser(directory) if directory else self.state_dir
        self.output = fields.optional_text("output") or "findings"
        if self.output not in OUTPUT_MODES:
            raise SpecError(f"output: expected one of {', '.join(OUTPUT_MODES)}")
        after = fields.child("after", optional=True)
        self.after = After(after) if after else None
        llm = fields.child("llm", optional=True)
        self.llm = Llm(llm) if llm else None
        self.budgets = [BudgetSpec(item) for item in fields.objects("budgets")]
        self.host = fields.optional_text("host")
        """The fleet host this spec was compiled for (`fleet:`), else None."""
        fleet = fields.child("fleet", optional=True)
        self.fleet = _fleet(fleet) if fleet else None
        """A fleet host's prompt job: the fleet's connection, for its spend ledger in NATS."""
        self.notify_recovered = fields.data.get("notify_recovered") is True
        """A successful run after a failure says so (runner.recovery)."""
        if self.argv is None and self.llm is None:
            raise SpecError("command: a job without a prompt needs a command")
        self.trial: Trial | None = None
        """Set for a try (`--try DIR`): see runner.trial."""

    @property
    def outputs_dir(self) -> str:
        """Where the run's findings and record go: the state directory, or a try's own."""
        return self.trial.directory if self.trial else self.state_dir


class FailureSpec(_Common):
    """The failure handler: where alerts go and how much journal to quote."""

    def __init__(self, fields: _Fields) -> None:
        super().__init__(fields, "failure")
        lines = fields.optional_whole("journal_lines", minimum=0)
        self.journal_lines = 20 if lines is None else lines
        self.auto_rollback = fields.data.get("auto_rollback") is True
        self.path = ""
        """Where the spec was read from: its generation is the directory above."""
        self.pause_after = {
            job: Pausing(entry) for job, entry in fields.children("pause_after").items()
        }
        """job -> when and what to pause (jobs that are never paused are absent)."""
        recovered = fields.data.get("notify_recovered")
        self.notify_recovered = frozenset(fields.strings("notify_recovered") if recovered else ())
        """The jobs whose failure leaves a marker for their recovery (runner.recovery)."""


class Pausing:
    """Pausing one job: after how many failures in a row, and which timers."""

    def __init__(self, fields: _Fields) -> None:
        self.after = fields.whole("after")
        self.timers = fields.strings("timers")


def _fleet(fields: _Fields) -> FleetJSON:
    """The parts of a spec's `fleet` a job uses: where NATS is, how to log in, which host."""
    return {
        "servers": fields.strings("servers"),
        "credential": fields.optional_text("credential"),
        "host": fields.text("host"),
        "hosts": fields.strings("hosts"),
        "coordinator_hosts": fields.strings("coordinator_hosts"),
        "lease": fields.whole("lease"),
        "config_hash": fields.text("config_hash"),
    }


def _command(fields: _Fields, key: str) -> list[str] | None:
    """`{"shell": "..."}` runs under /bin/sh -c; `{"argv": [...]}` runs without a shell."""
    command = fields.child(key, optional=True)
    if command is None:
        return None
    shell = command.data.get("shell")
    argv = command.data.get("argv")
    if isinstance(shell, str) and shell.strip() and argv is None:
        return ["/bin/sh", "-c", shell]
    if (
        shell is None
        and isinstance(argv, list)
        and argv
        and all(isinstance(arg, str) for arg in argv)
        and argv[0]
    ):
        return [str(arg) for arg in argv]
    raise SpecError(f"{key}: expected {{'shell': TEXT}} or {{'argv': [PROGRAM, ARG, ...]}}")


def _read(path: str) -> _Fields:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise SpecError(f"cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise SpecError(f"not valid JSON: {error}") from None
    return _Fields(data, "")


def read_spec(path: str, kind: str) -> Any:
    """A JSON spec of `kind` written for this runner's SPEC_VERSION, its state directory
    with `~` expanded (the coordinator's and the forwarder's: read as they are); ValueError
    for another kind or version."""
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    if spec.get("spec") != SPEC_VERSION or spec.get("kind") != kind:
        raise ValueError(f"not a version {SPEC_VERSION} {kind} spec")
    spec["state_dir"] = os.path.expanduser(spec["state_dir"])
    return spec


def file_identity(path: str) -> tuple[int, int, int] | None:
    """Which file `path` leads to now (through links): another generation's spec, or the same
    generation number made again after an uninstall, is another file. None: there is none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_mtime_ns)


def load_job_spec(path: str) -> JobSpec:
    return JobSpec(_read(path))


def load_failure_spec(path: str) -> FailureSpec:
    spec = FailureSpec(_read(path))
    spec.path = path
    return spec

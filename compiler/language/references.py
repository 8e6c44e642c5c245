"""Checks across the config: every name a key refers to exists, unit names stay unique.

Each finding is a (path, message) pair; validate.py turns paths into file positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from compiler.errors import did_you_mean as did_you_mean  # where the CLI's messages find it
from compiler.language.model import Config
from compiler.language.model.gating import Matcher, is_glob
from compiler.language.preflight import PreflightError, preflight_calendar
from runner.contract import (
    ALERT_KINDS,
    coordinator_unit,
    failure_unit,
    forward_unit,
    job_unit,
    preflight_unit,
    reply_unit,
    service,
    watch_unit,
)

Path = tuple[str | int, ...]
Problem = tuple[Path, str]

MAX_UNIT_NAME = 255


def check(config: Config) -> list[Problem]:
    return [
        *_unit_names(config),
        *_job_references(config),
        *_channel_references(config),
        *_secret_references(config),
        *_source_references(config),
        *_preflights(config),
        *_fleet(config),
        *_matcher_references(config),
        *_replies(config),
    ]


def _collides(name: str, job: str) -> bool:
    """Whether a job's units would take the name of vigil's own (coordinator, failure handler,
    a watch's)."""
    unit = job_unit(name, job)
    own = (coordinator_unit(name), failure_unit(name), forward_unit(name))
    prefixes = (watch_unit(name, ""), preflight_unit(name, ""), reply_unit(name, ""))
    return unit in own or unit.startswith(prefixes)


def _unit_names(config: Config) -> Iterator[Problem]:
    for job in config.jobs:
        if _collides(config.name, job):
            yield (
                ("jobs", job),
                (
                    f"job name {job!r} is reserved: it would collide with vigil's own "
                    f"{config.name}-{job} units; choose another name"
                ),
            )
    longest = [service(job_unit(config.name, job)) for job in config.jobs]
    longest += [service(watch_unit(config.name, watch)) for watch in config.watches]
    longest += [service(reply_unit(config.name, source)) for source in config.replies]
    for unit in longest:
        if len(unit) > MAX_UNIT_NAME:
            yield ("name",), f"unit name {unit[:40]}... is longer than {MAX_UNIT_NAME} characters"


def _preflights(config: Config) -> Iterator[Problem]:
    for name, job in config.jobs.items():
        if job.preflight is None:
            continue
        try:
            preflight_calendar(job.schedule, job.preflight)
        except PreflightError as error:
            yield ("jobs", name, "preflight"), str(error)


def _job_references(config: Config) -> Iterator[Problem]:
    jobs = config.jobs
    for name, job in jobs.items():
        if job.after is None:
            continue
        if job.after == name:
            yield ("jobs", name, "after"), "a job cannot run after itself"
        elif job.after not in jobs:
            yield ("jobs", name, "after"), did_you_mean(job.after, jobs, "job")
    yield from _after_cycles(config)
    for name, watch in config.watches.items():
        if watch.deadline and watch.deadline.job and watch.deadline.job not in jobs:
            yield (
                ("watches", name, "deadline", "job"),
                did_you_mean(watch.deadline.job, jobs, "job"),
            )


def _after_cycles(config: Config) -> Iterator[Problem]:
    reported: set[str] = set()
    for start in config.jobs:
        seen = [start]
        current = config.jobs[start].after
        while current in config.jobs and current not in seen:
            seen.append(current)
            current = config.jobs[current].after
        if current == start and start not in reported and len(seen) > 1:
            reported.update(seen)
            chain = " -> ".join([*seen, start])
            yield ("jobs", start, "after"), f"`after` forms a cycle: {chain}"


def _channel_uses(config: Config) -> Iterator[tuple[Path, str]]:
    coordinator = config.coordinator
    for i, channel in enumerate(coordinator.deliver_to):
        yield ("coordinator", "deliver_to", i), channel
    for source, policy in coordinator.sources.items():
        for i, channel in enumerate(policy.to or ()):
            yield ("coordinator", "sources", source, "to", i), channel
    if coordinator.delivery.fallback:
        yield ("coordinator", "delivery", "fallback"), coordinator.delivery.fallback
    for name, watch in config.watches.items():
        for i, channel in enumerate(watch.notify or ()):
            yield ("watches", name, "notify", i), channel
        if watch.handoff:
            yield ("watches", name, "handoff"), watch.handoff
        for i, channel in enumerate(watch.escalate.to if watch.escalate else ()):
            yield ("watches", name, "escalate", "to", i), channel
    yield from _reply_channel_uses(config)


def _reply_channel_uses(config: Config) -> Iterator[tuple[Path, str]]:
    for name, reply in config.replies.items():
        for i, channel in enumerate(reply.answer_to or ()):
            yield ("replies", name, "answer_to", i), channel


def _channel_references(config: Config) -> Iterator[Problem]:
    channels = config.channels
    for path, name in _channel_uses(config):
        if name not in channels:
            yield path, did_you_mean(name, channels, "channel")
        elif path[-1] == "handoff" and channels[name].kind != "command":
            yield (
                path,
                f"hand-off channel {name!r} must be a `command` channel (it starts an agent)",
            )


def _secret_uses(config: Config) -> Iterator[tuple[Path, str]]:
    if config.llm.api_key:
        yield ("llm", "api_key"), config.llm.api_key
    if config.fleet is not None and config.fleet.credentials is not None:
        yield ("fleet", "credentials"), config.fleet.credentials
    for name, source in config.replies.items():
        if source.telegram is not None:
            yield ("replies", name, "telegram", "token"), source.telegram.token


def _secret_references(config: Config) -> Iterator[Problem]:
    secrets = config.secrets
    uses = list(_secret_uses(config))
    for name, job in config.jobs.items():
        uses += [(("jobs", name, "secrets", i), secret) for i, secret in enumerate(job.secrets)]
    for name, channel in config.channels.items():
        if channel.apprise_secret:
            uses.append((("channels", name, "apprise_secret"), channel.apprise_secret))
    for path, secret in uses:
        if secret not in secrets:
            yield path, did_you_mean(secret, secrets, "secret")
    if config.llm.api_key is None:
        for name, job in config.jobs.items():
            if job.prompt is not None:
                yield (
                    ("jobs", name, "prompt"),
                    (
                        "a job with a `prompt` needs an API key: "
                        "set llm.api_key to the name of a secret"
                    ),
                )


# vigil's own findings (failure, budget and rejection alerts) come from this source; a watch may
# match on them ("alert me if the digest failed").
BUILTIN_SOURCE = "vigil"


def known_sources(config: Config) -> set[str]:
    external = {name for name, policy in config.coordinator.sources.items() if policy.external}
    return set(config.jobs) | external


def _source_uses(config: Config) -> Iterator[tuple[Path, str]]:
    for name, rule in config.nag.items():
        yield ("nag", name, "source"), rule.source
    for name, watch in config.watches.items():
        for kind in ("match", "absence", "deadline"):
            condition = getattr(watch, kind)
            if condition is not None and condition.source is not None:
                yield ("watches", name, kind, "source"), condition.source
        if watch.file and watch.file.armed_by and watch.file.armed_by.source:
            yield ("watches", name, "file", "armed_by", "source"), watch.file.armed_by.source


def _source_references(config: Config) -> Iterator[Problem]:
    sources = known_sources(config)
    for path, source in _source_uses(config):
        if source not in sources and source != BUILTIN_SOURCE:
            message = did_you_mean(source, sources, "source")
            yield (
                path,
                message + "; a source is a job, or declared under coordinator.sources "
                "with `external: true`",
            )
    for name, policy in config.coordinator.sources.items():
        if policy.external and name in config.jobs:
            yield (
                ("coordinator", "sources", name, "external"),
                f"{name!r} is a job, not an external source",
            )
        elif not policy.external and name not in sources and name != BUILTIN_SOURCE:
            message = did_you_mean(name, sources, "source")
            yield (
                ("coordinator", "sources", name),
                message + "; add `external: true` if something else writes it",
            )


# --- inhibit rules and maintenance windows: the names their matchers give -----------------


def _matchers(config: Config) -> Iterator[tuple[Path, Matcher]]:
    for name, rule in config.inhibit.items():
        yield ("inhibit", name, "while"), rule.while_
        yield ("inhibit", name, "hold"), rule.hold
    for name, window in config.maintenance.items():
        yield ("maintenance", name, "match"), window.match


def _matcher_references(config: Config) -> Iterator[Problem]:
    """A job, watch or source named outright must exist; a glob may match nothing yet."""
    sources = known_sources(config) | {BUILTIN_SOURCE}
    known = {"job": set(config.jobs), "watch": set(config.watches), "source": sources}
    for path, matcher in _matchers(config):
        for field, names in known.items():
            for i, value in enumerate(getattr(matcher, field) or ()):
                if not is_glob(value) and value not in names:
                    yield (*path, field, i), did_you_mean(value, names, field)
        yield from _own_kinds_from_vigil(path, matcher)
    for name, rule in config.inhibit.items():
        if not _ends(config, rule.while_):
            yield (
                ("inhibit", name, "while"),
                "it would hold alerts until something that never ends: name what has an end, "
                "a job's failures (kind: failure, which end when it runs fine again), a watch, "
                "or a source with a `dedup_key` (its conditions end when resolved)",
            )


OWN_KINDS = frozenset(ALERT_KINDS) - {"nag", "watch", "finding"}
"""The kinds of alert vigil itself raises: their source is `vigil`, the job they are about is
`job:`."""


def _own_kinds_from_vigil(path: Path, matcher: Matcher) -> Iterator[Problem]:
    """`source: gw, kind: failure` can never match: a failure comes from vigil, about job gw."""
    kinds = matcher.kind or []
    sources = matcher.source or []
    own = kinds and all(any(fnmatchcase(k, glob) for k in OWN_KINDS) for glob in kinds)
    if own and sources and not any(fnmatchcase(BUILTIN_SOURCE, glob) for glob in sources):
        yield (
            (*path, "source"),
            f"alerts of kind {', '.join(kinds)} come from source {BUILTIN_SOURCE!r}: name the "
            "job they are about with `job:`",
        )


def _ends(config: Config, condition: Matcher) -> bool:
    """Whether the alerts an inhibit rule's `while` matches belong to items that end: job
    failures (recovery is reported), watch instances, deduplicated conditions."""
    kinds = condition.kind or []
    if kinds and all(fnmatchcase(k, glob) for glob in kinds for k in ("failure",)):
        return True
    if condition.watch or (kinds and all(glob == "watch" for glob in kinds)):
        return True
    deduplicated = {n for n, p in config.coordinator.sources.items() if p.dedup_key}
    sources = condition.source or []
    return bool(sources) and all(
        any(fnmatchcase(name, glob) for name in deduplicated)
        and not any(fnmatchcase(name, glob) for name in known_sources(config) - deduplicated)
        for glob in sources
    )


def _signal_readers(config: Config) -> Iterator[Problem]:
    """Two signal sources on one daemon and account listening to one number would both write
    each of its messages: one person's reply applied twice."""
    heard: dict[tuple[str, str, str], str] = {}
    for name, source in config.replies.items():
        if source.signal is None:
            continue
        daemon = str(source.signal.url or source.signal.socket)
        for i, number in enumerate(source.signal.numbers):
            key = (daemon, str(source.signal.account or ""), number)
            if key in heard:
                yield (
                    ("replies", name, "signal", "numbers", i),
                    f"reply source {heard[key]!r} already listens to {number} on this daemon",
                )
            heard.setdefault(key, name)


# --- several machines: hosts and where each job runs ----------------------------------------


def _fleet(config: Config) -> Iterator[Problem]:
    if config.fleet is None:
        yield from _fleet_keys_without_fleet(config)
        return
    if config.hosts is None:
        yield ("fleet",), "a fleet needs `hosts:`, the list of its machines"
        return
    yield from _job_hosts(config, config.hosts)
    for i, host in enumerate(config.coordinator.hosts or ()):
        if host not in config.hosts:
            yield ("coordinator", "hosts", i), did_you_mean(host, config.hosts, "host")
    if not config.coordinator.sandbox.network:
        yield (
            ("coordinator", "sandbox", "network"),
            "a fleet's coordinator and forwarder reach NATS: they need the network",
        )
    for name, watch in config.watches.items():
        if watch.timer is not None:  # checked by a timer of its own, on one machine
            yield (
                ("watches", name),
                "a watch with a deadline or a schedule is not supported in a fleet yet: its "
                "timer would judge one machine's runs and sources, not the fleet's",
            )


def _job_hosts(config: Config, hosts: list[str]) -> Iterator[Problem]:
    """Each job of a fleet runs on one known host, or on all of them."""
    for name, job in config.jobs.items():
        if job.host is not None and job.hosts is not None:
            yield ("jobs", name, "hosts"), "set `host:` or `hosts: all`, not both"
        elif job.host is None and job.hosts is None:
            yield (
                ("jobs", name),
                "a job of a fleet needs `host:` (one of " + ", ".join(hosts) + ") or `hosts: all`",
            )
        elif job.host is not None and job.host not in hosts:
            yield ("jobs", name, "host"), did_you_mean(job.host, hosts, "host")
        elif job.after in config.jobs and not _runs_wherever(config, job.after, name):
            yield (
                ("jobs", name, "after"),
                f"job {job.after!r} does not run on every host this job runs on: a chain "
                "step's predecessor must run on the same machine",
            )


def _runs_wherever(config: Config, predecessor: str, job: str) -> bool:
    """Whether `predecessor` runs on every host `job` does."""
    before, after = config.jobs[predecessor], config.jobs[job]
    return before.hosts == "all" or (after.hosts is None and before.host == after.host)


def _fleet_keys_without_fleet(config: Config) -> Iterator[Problem]:
    needs = "needs `fleet:` (several machines sharing one coordinator)"
    if config.hosts is not None:
        yield ("hosts",), f"`hosts` {needs}"
    for name, job in config.jobs.items():
        for key in ("host", "hosts"):
            if getattr(job, key) is not None:
                yield ("jobs", name, key), f"`{key}` {needs}"
    if config.coordinator.hosts is not None:
        yield ("coordinator", "hosts"), f"`hosts` {needs}"


# --- reply sources ---------------------------------------------------------------------------


def _replies(config: Config) -> Iterator[Problem]:
    if config.fleet is not None and config.replies:
        # Every coordinator host would poll the same bot (Telegram allows one poller).
        yield ("replies",), "reply sources are not supported in a fleet yet"
    polled: dict[str, str] = {}
    yield from _signal_readers(config)
    for name, source in config.replies.items():
        if source.telegram is None:
            continue
        token = source.telegram.token
        if token in polled:  # Telegram answers a second getUpdates poller with 409 Conflict
            yield (
                ("replies", name, "telegram", "token"),
                f"reply source {polled[token]!r} already reads this bot: a bot has one reader",
            )
        polled.setdefault(token, name)

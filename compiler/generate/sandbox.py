"""What each generated service may touch: the settings _sandbox.j2 turns into directives.

Levels (a job's or the coordinator's `sandbox.level`):

- standard: the system is read-only (ProtectSystem=strict), home directories are read-only,
  writable are the state directory, /tmp and the config's `writable` paths; no devices, kernel
  knobs, capabilities, SUID files, new namespaces or exotic sockets.
- strict: as standard, but home directories are an empty tmpfs into which only the installed
  vigil tree, the Python that runs the runner, the working directory and `readable` are bound
  read-only, and the state directory and `writable` read-write; /tmp is private; no
  writable-executable memory and no scheduling-priority changes.
- off: only UMask=0077.

Watch and failure services run nothing but the runner (and journalctl), so they get standard
with no network, no writable /tmp and the strict-level memory and priority rules.

In a user manager the mount and network namespacing needs PrivateUsers=yes (systemd.exec(5)).
Measured on systemd 252 under a non-root user manager: ProtectProc=, ProcSubset= and
IPAddressDeny= start but have no effect there (no hidepid on /proc, no BPF firewall), so they
are only written for system scope, where PID 1 applies them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from compiler.generate import specs
from compiler.language.model import Config, Job
from compiler.language.model.jobs import Sandbox
from compiler.language.model.replies import ReplySource


@dataclass(frozen=True)
class Policy:
    """One service's sandbox, as the template needs it. Paths are config paths (`~/...`)."""

    level: str  # strict | standard | off
    system: bool
    network: bool
    trusted: bool  # runs only vigil's own code: no JIT memory, no priority changes, no /tmp
    writable: tuple[str, ...]
    readable: tuple[str, ...] = ()


def job_policy(config: Config, job: Job, system: bool, runtime: Sequence[str]) -> Policy:
    extra = [job.working_directory] if job.working_directory else []
    return _policy(config, job.sandbox, system, runtime, writable=[], readable=extra)


def coordinator_policy(config: Config, system: bool, runtime: Sequence[str]) -> Policy:
    # A file channel appends to its file and may create it: its directory must be writable.
    files = [posixpath.dirname(c.file) for c in config.channels.values() if c.file]
    return _policy(config, config.coordinator.sandbox, system, runtime, writable=files)


def forward_policy(config: Config, system: bool, runtime: Sequence[str]) -> Policy:
    """A fleet host's forwarder: the coordinator's sandbox, without its channels' files."""
    return _policy(config, config.coordinator.sandbox, system, runtime, writable=[])


def reply_policy(
    config: Config, source: ReplySource, system: bool, runtime: Sequence[str]
) -> Policy:
    """A reply source: the coordinator's sandbox level with the network (the Bot API, a
    signal-cli daemon's HTTP) and, when strict, the directory of signal-cli's socket."""
    readable = []
    if source.signal is not None and source.signal.socket is not None:
        readable.append(posixpath.dirname(source.signal.socket))
    settings = config.coordinator.sandbox.model_copy(update={"network": True})
    return _policy(config, settings, system, runtime, writable=[], readable=readable)


def internal_policy(config: Config, system: bool) -> Policy:
    """Watch and failure services: the runner reads anything, writes the state directory."""
    return Policy(
        level="standard",
        system=system,
        network=False,
        trusted=True,
        writable=(_normal(specs.state_dir(config, system)),),
    )


def _policy(
    config: Config,
    sandbox: Sandbox,
    system: bool,
    runtime: Sequence[str],
    *,
    writable: Iterable[str],
    readable: Iterable[str] = (),
) -> Policy:
    state = specs.state_dir(config, system)
    # Strict hides the home directories: bind back what the service runs (user scope installs
    # its tree below the home directory) and where its interpreter lives.
    tree = [] if system else [f"~/.local/share/vigil/{config.name}"]
    return Policy(
        level=sandbox.level,
        system=system,
        network=sandbox.network,
        trusted=False,
        writable=_unique([state, *writable, *sandbox.writable]),
        readable=_unique([*tree, *runtime, *readable, *sandbox.readable]),
    )


def _normal(path: str) -> str:
    """`~/b/` as `~/b`, so that a path is bound once (the model rejects `..` and `//`)."""
    return posixpath.normpath(path)


def _unique(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_normal(path) for path in paths))

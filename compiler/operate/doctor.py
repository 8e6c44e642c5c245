"""`vigil doctor`: is this machine ready to run the config, and is the installed setup healthy?
Each check says ok, warn or fail, and how to fix what is wrong."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from compiler.errors import VigilError
from compiler.generate.build import default_python
from compiler.generate.packages import missing, needs
from compiler.install.apply import start_flags
from compiler.install.generations import Installation
from compiler.install.pauses import read_pauses
from compiler.install.plan import make_plan
from compiler.install.systemctl import Systemctl
from compiler.language.model import Config
from compiler.layout import Scope
from runner.contract import DEAD, INBOX, OUTBOX, coordinator_unit, path_unit
from runner.packages import requirement

MIN_SYSTEMD = 240  # LoadCredential=, OnFailure= with %n, the timers vigil writes
STUCK_INBOX_SECONDS = 300
STUCK_OUTBOX_SECONDS = 3600


class CheckResult(StrEnum):
    """What one check found."""

    OK = "ok"
    WARN = "warn"  # worth a look; the setup runs
    FAIL = "fail"  # `vigil doctor` exits 1


@dataclass
class Check:
    name: str
    status: CheckResult
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Setup:
    """What the checks examine: a config, the scope it installs into and its state directory.
    One argument for every check, so each reads only the parts it needs."""

    config: Config
    scope: Scope
    state: Path


def run_checks(config: Config, scope: Scope, state: Path) -> list[Check]:
    setup = Setup(config, scope, state)
    checks: list[Check] = []
    for probe in _probes():
        try:
            checks.extend(probe(setup))
        except VigilError as error:
            checks.append(
                Check(probe.__name__.strip("_").replace("_", " "), CheckResult.FAIL, str(error))
            )
    return checks


Probe = Callable[[Setup], Iterator[Check]]


def _probes() -> list[Probe]:
    return [
        _systemd_version,
        _manager,
        _linger,
        _installed_files,
        _units_active,
        _queues,
        _packages,
        _credentials,
        _apprise_urls,
        _clock,
    ]


def _systemd_version(_setup: Setup) -> Iterator[Check]:
    # The machine's systemd, whatever the setup: the argument is the one every check takes.
    if shutil.which("systemctl") is None:
        yield Check(
            "systemd", CheckResult.FAIL, "systemctl not found", "vigil needs a systemd machine"
        )
        return
    first = subprocess.run(["systemctl", "--version"], capture_output=True, text=True).stdout
    match = re.match(r"systemd (\d+)", first)
    version = int(match.group(1)) if match else 0
    status = CheckResult.OK if version >= MIN_SYSTEMD else CheckResult.FAIL
    yield Check(
        "systemd", status, f"systemd {version}", f"systemd {MIN_SYSTEMD} or newer is needed"
    )


def _manager(setup: Setup) -> Iterator[Check]:
    result = Systemctl(setup.scope).run("show", "--property=Version", check=False)
    if result.returncode == 0:
        yield Check("manager", CheckResult.OK, f"{setup.scope.flag.strip('-')} manager reachable")
    else:
        hint = "log in (or enable linger) so the user manager runs; check XDG_RUNTIME_DIR"
        yield Check("manager", CheckResult.FAIL, result.stderr.strip() or "not reachable", hint)


def _linger(setup: Setup) -> Iterator[Check]:
    if setup.scope.system:
        return
    user = os.environ.get("USER") or _login_name()
    if shutil.which("loginctl") is None:
        yield Check(
            "linger",
            CheckResult.WARN,
            "loginctl not found: cannot tell whether timers run after logout",
        )
        return
    result = subprocess.run(
        ["loginctl", "show-user", user, "--property=Linger"], capture_output=True, text=True
    )
    if result.stdout.strip() == "Linger=yes":
        yield Check("linger", CheckResult.OK, "the user manager keeps running after logout")
    else:
        yield Check(
            "linger",
            CheckResult.WARN,
            "linger is off or unknown: user timers stop when you log out",
            f"loginctl enable-linger {user}",
        )


def _login_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry: loginctl takes the uid too
        return str(os.getuid())


def _installed_files(setup: Setup) -> Iterator[Check]:
    installation = Installation(setup.scope, setup.config.name)
    number = installation.current()
    if number is None:
        yield Check(
            "installed",
            CheckResult.FAIL,
            f"{setup.config.name} is not installed",
            "vigil apply CONFIG",
        )
        return
    plan = make_plan(installation.load_tree(number), installation)
    if plan.drift:
        yield Check(
            "installed",
            CheckResult.FAIL,
            "changed by hand since installed: " + ", ".join(plan.drift),
            "vigil plan CONFIG shows the diff; vigil apply CONFIG restores them",
        )
    else:
        yield Check("installed", CheckResult.OK, f"generation {number} matches its manifest")


def _units_active(setup: Setup) -> Iterator[Check]:
    installation = Installation(setup.scope, setup.config.name)
    number = installation.current()
    if number is None or not setup.scope.live:
        return
    wanted = [u for u, on in start_flags(installation.load_tree(number)).items() if on]
    shown = Systemctl(setup.scope).show_many(
        wanted, "ActiveState", "Result", "LoadState", "UnitFileState"
    )
    inactive = [u for u in wanted if shown.get(u, {}).get("ActiveState") != "active"]
    if not inactive:
        yield Check("units", CheckResult.OK, f"{len(wanted)} timers and path units active")
    scope = "system" if setup.scope.system else "user"
    pauses = read_pauses(setup.state, setup.config.name, scope, _ignore)
    paused = {unit: pause for pause in pauses for unit in pause.timers}
    said: set[str] = set()
    for unit in inactive:
        info = shown.get(unit, {})
        pause = paused.get(unit)
        if pause is not None:
            # Paused by its failure handler (pause_after): worth a word, not a failure.
            if pause.job in said:
                continue  # its preflight's timer, stopped with it
            said.add(pause.job)
            yield Check(
                "units", CheckResult.WARN, f"{pause.job} paused {pause.words()}", pause.resume
            )
            continue
        if info.get("UnitFileState") == "disabled" and info.get("Result") == "success":
            # Paused on purpose (`vigil disable`): worth a word, not a failure.
            yield Check(
                "units",
                CheckResult.WARN,
                f"{unit} was disabled by hand",
                "`vigil enable` resumes it; `enabled: false` in the config keeps it off",
            )
            continue
        state_words = (
            f"{info.get('ActiveState')} (load {info.get('LoadState')}, {info.get('Result')})"
        )
        why = f"{unit} is {state_words}"
        ctl = f"systemctl {setup.scope.flag}"
        hint = f"{ctl} reset-failed {unit} && {ctl} start {unit}"
        if info.get("Result") == "start-limit-hit":
            why += ": it hit the start limit"
        yield Check("units", CheckResult.FAIL, why, hint)


def _ignore(_warning: str) -> None:
    """A pause record of another shape is `vigil status`'s and `plan`'s to name."""


def _queues(setup: Setup) -> Iterator[Check]:
    now = datetime.now(UTC).timestamp()
    inbox = setup.state / INBOX
    old = (
        [p for p in inbox.iterdir() if now - p.lstat().st_mtime > STUCK_INBOX_SECONDS]
        if inbox.is_dir()
        else []
    )
    if old:
        yield Check(
            "inbox",
            CheckResult.FAIL,
            f"{len(old)} findings waiting for over {STUCK_INBOX_SECONDS // 60} minutes",
            f"is {path_unit(coordinator_unit(setup.config.name))} active? `vigil logs coordinator`",
        )
    else:
        yield Check("inbox", CheckResult.OK, "nothing stuck")
    outbox = setup.state / OUTBOX
    queued = [p for p in outbox.glob("*.json") if now - p.stat().st_mtime > STUCK_OUTBOX_SECONDS]
    dead = list((outbox / DEAD).glob("*.json")) if (outbox / DEAD).is_dir() else []
    if dead:
        yield Check(
            "outbox", CheckResult.WARN, f"{len(dead)} dead-lettered messages", "vigil outbox"
        )
    if queued:
        yield Check(
            "outbox",
            CheckResult.WARN,
            f"{len(queued)} messages retrying for over an hour",
            "vigil outbox",
        )
    if not dead and not queued:
        yield Check("outbox", CheckResult.OK, "nothing stuck")


def _packages(setup: Setup) -> Iterator[Check]:
    # The interpreter the installed units run with; before any install, the one apply would use.
    python = str(
        Installation(setup.scope, setup.config.name).manifest().get("python") or default_python()
    )
    wanted = needs(setup.config)
    problems = missing(python, wanted)
    for problem in problems:
        yield Check("packages", CheckResult.FAIL, problem.detail, problem.fix)
    if not problems:
        names = ", ".join(need.distribution for need in wanted)
        yield Check("packages", CheckResult.OK, f"{python} has what the units import ({names})")


def _credentials(setup: Setup) -> Iterator[Check]:
    missing = 0
    for name, path in setup.config.secrets.items():
        resolved = Path(os.path.expanduser(path))
        if not os.access(resolved, os.R_OK):
            missing += 1
            yield Check(
                "credentials",
                CheckResult.FAIL,
                f"secret {name}: {resolved} is missing or unreadable",
                f"create it (chmod 600) or fix secrets.{name}",
            )
    if not missing:
        yield Check("credentials", CheckResult.OK, f"{len(setup.config.secrets)} secrets readable")


def _apprise_urls(setup: Setup) -> Iterator[Check]:
    urls = {}
    for name, channel in setup.config.channels.items():
        if channel.apprise:
            urls[name] = channel.apprise
        elif channel.apprise_secret:
            path = Path(os.path.expanduser(setup.config.secrets.get(channel.apprise_secret, "")))
            if os.access(path, os.R_OK):
                urls[name] = path.read_text(encoding="utf-8").strip()
    if not urls:
        return
    try:
        import apprise
    except ImportError:
        yield Check(
            "channels",
            CheckResult.WARN,
            "cannot check the apprise URLs: vigil's own interpreter lacks apprise",
            f"{default_python()} -m pip install '{requirement('apprise')}'",
        )
        return
    for name, url in urls.items():
        if apprise.Apprise().add(url):
            yield Check(
                "channels", CheckResult.OK, f"{name}: {url.split('://', 1)[0]}:// URL understood"
            )
        else:
            yield Check(
                "channels",
                CheckResult.FAIL,
                f"{name}: apprise does not understand the URL",
                "see apprise's URL formats",
            )


def _clock(setup: Setup) -> Iterator[Check]:
    year = datetime.now(UTC).year
    if year < 2024:
        yield Check(
            "clock", CheckResult.FAIL, f"the clock says {year}", "set the time (timedatectl)"
        )
        return
    synced = ""
    if shutil.which("timedatectl"):
        result = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized"], capture_output=True, text=True
        )
        synced = result.stdout.strip()
    if synced == "NTPSynchronized=no":
        yield Check(
            "clock", CheckResult.WARN, "the clock is not synchronized", "timedatectl set-ntp true"
        )
    else:
        yield Check(
            "clock",
            CheckResult.OK,
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; schedules in {setup.config.timezone}",
        )

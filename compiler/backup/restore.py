"""`vigil import`: an export archive back onto a machine, through the normal apply.

The order keeps a crash from leaving a setup that looks installed and is not: the archive is
checked whole, then the target (nothing installed or stored there under the config's name),
the secrets and the config, all before anything is written. Then the config file is written
(never over another file), the plan is made and confirmed; the state directory and the
earlier generations are staged beside their places and renamed in (state first, so the first
heartbeat sees it); last, the normal apply stores the new generation, writes the units and
switches `current`, the one link that makes the config installed."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.backup import archive
from compiler.backup.archive import Archive, Area, Member
from compiler.backup.places import holds_files, home, moved_aside, stamp, state_path
from compiler.errors import UsageError, VigilError, Warn
from compiler.fsutil import write_all
from compiler.install.generations import Installation
from compiler.install.workflows import Prepared, prepare
from compiler.layout import Scope
from runner.contract import STATE
from runner.fsatomic import describe, fsync_dir


@dataclass(frozen=True)
class Options:
    config_out: Path | None = None
    """Where to write the config (default: where it was, under this home)."""
    replace: bool = False
    """Move an existing state directory or stored generations of the name aside."""
    skip_secret_check: bool = False
    """Install even when secret files are missing here."""


class Importer:
    """One import: checked on creation, then prepared, then restored (or discarded)."""

    def __init__(self, path: Path, scope: Scope, options: Options, warn: Warn) -> None:
        from compiler import __version__

        self.archive: Archive = archive.read(path, __version__)
        self.path, self.scope, self.options, self.warn = path, scope, options, warn
        manifest = self.archive.manifest
        self.name = str(manifest["name"])
        self.installation = Installation(scope, self.name)
        self._check_scope()
        self.state = self._check_config()
        self._check_target()
        self.missing_secrets = self._check_secrets()
        self.config = self._config_path()
        self._wrote_config = False
        self._restored = False

    # --- checks, before anything is written ---------------------------------------------------

    def _check_scope(self) -> None:
        written = self.archive.manifest["scope"]
        here = "system" if self.scope.system else "user"
        if written != here:
            flag = "--system" if written == "system" else "--user (no --system)"
            raise UsageError(f"{self.path}: exported from {written} scope: import it with {flag}")

    def _check_config(self) -> Path:
        """The archived config validates and is the manifest's; its state directory here."""
        from compiler.generate.specs import state_dir
        from compiler.language.loader import load_text
        from compiler.language.validate import validate_document

        if archive.CONFIG not in self.archive.members:
            raise archive.ArchiveError(self.path, f"no {archive.CONFIG} in the archive")
        text = self.archive.members[archive.CONFIG].content
        label = f"{self.path}:{archive.CONFIG}"  # ConfigError (exit 2) names the archive
        config = validate_document(load_text(text, label), check_calendar=False).config
        if config.name != self.name:
            raise archive.ArchiveError(self.path, f"its config is named {config.name!r}, "
                                                  f"its manifest {self.name!r}")  # fmt: skip
        self.secrets = dict(config.secrets)  # the config's own, not the manifest's list
        return state_path(state_dir(config, self.scope.system), self.scope)

    def _check_target(self) -> None:
        current = self.installation.current()
        if current is not None:
            raise VigilError(
                f"{self.name} is installed here already (generation {current}): nothing was "
                f"written; `vigil uninstall --name {self.name}` first, then import with "
                "--replace (its state directory and generations are moved aside, not deleted)"
            )
        for what, directory in self._targets():
            if holds_files(directory) and not self.options.replace:
                raise VigilError(
                    f"{what} {directory} is not empty: nothing was written; --replace moves it "
                    f"aside (to {moved_aside(directory, '<time>').name}) and imports"
                )

    def _targets(self) -> list[tuple[str, Path]]:
        """What an import fills: in system scope the state directory is inside the data
        directory (/var/lib/vigil/NAME/state), so generations are placed on their own."""
        return [("state directory", self.state), ("generations directory", self._generations)]

    @property
    def _generations(self) -> Path:
        return self.installation.data_dir / Area.GENERATIONS

    def _check_secrets(self) -> list[str]:
        """Problems with the secrets the config needs here (their files are never archived)."""
        problems = []
        for name, written in self.secrets.items():
            path = Path(os.path.expanduser(written))
            if not os.access(path, os.R_OK):
                problems.append(
                    f"secret {name}: {path} is missing or unreadable: copy it "
                    "from the old machine (chmod 600); the archive does not hold it"
                )
        if problems and not self.options.skip_secret_check:
            raise VigilError("\n".join([*problems, "nothing was written (--skip-secret-check "
                                                   "installs without them)"]))  # fmt: skip
        return problems

    def _config_path(self) -> Path:
        """Where the config goes: --config-out, else where it was (under this home). An
        existing file is used only when it holds the same config."""
        given = self.options.config_out
        path = given if given is not None else self._former_path()
        if path is None:
            raise UsageError(f"{self.path}: the config's former path is not known: --config-out")
        if path.exists() or path.is_symlink():
            content = self.archive.members[archive.CONFIG].content
            if not path.is_file() or path.read_bytes() != content:
                hint = "another PATH" if given is not None else "--config-out PATH"
                raise UsageError(f"{path} exists and is another file: nothing was written; "
                                 f"pass {hint}")  # fmt: skip
        return path.absolute()

    def _former_path(self) -> Path | None:
        written = (self.archive.manifest.get("config") or {}).get("file")
        if not isinstance(written, str) or not os.path.isabs(written):
            return None
        old, new = self.archive.manifest.get("home"), home(self.scope)
        if old and new and (written + "/").startswith(old.rstrip("/") + "/"):
            return Path(new) / os.path.relpath(written, old)
        return Path(written)

    # --- writing --------------------------------------------------------------------------

    def prepare(self, python: str | None = None) -> Prepared:
        """Write the config (if it is not there already) and plan its install."""
        if not self.config.exists():
            _write_new(self.config, self.archive.members[archive.CONFIG].content)
            self._wrote_config = True
        prepared = prepare(self.config, self.scope, python=python)
        generations = self.archive.manifest.get("generations") or {}
        prepared.meta["reason"] = (
            f"import from {self.path.name} (generation {generations.get('current')} where it "
            "was exported)"
        )
        prepared.meta["jobs_changed"] = {}  # an import changes no job's work
        return prepared

    def restore(self, prepared: Prepared) -> None:
        """The state directory, then the earlier generations, each staged and renamed in."""
        from compiler.install.pauses import tree_pauses

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for _what, directory in self._targets():
            _clear(directory, stamp)
        state = [self._rehomed(m) for m in self.archive.under(Area.STATE)]
        _place(self.state, state, f"{Area.STATE}/")
        generations = self.archive.under(Area.GENERATIONS)
        _place(self._generations, generations, f"{Area.GENERATIONS}/")
        self._restore_stamps()
        self._restored = True
        # Jobs paused where it was exported stay paused (state/pauses.json is here now).
        prepared.plan.paused = tree_pauses(prepared.tree or {}, self.scope.live, self.warn)

    def _restore_stamps(self) -> None:
        """The timers' last triggers, before apply starts them: systemd reads a stamp when a
        timer starts, so `Persistent=` catches up what fell due during the move."""
        for timer, moment in (self.archive.manifest.get("timers") or {}).items():
            ours = timer.startswith(f"{self.name}-") and timer.endswith(".timer")
            if not ours or "/" in timer or not isinstance(moment, int | float):
                continue
            path = stamp(self.scope, timer)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                os.utime(path, (moment, moment))
            except OSError as error:
                self.warn(f"{path}: {describe(error)}: {timer} does not catch up the move")

    def discard(self) -> None:
        """After a declined or failed import: the config file it wrote goes too."""
        if self._wrote_config and not self._restored:
            self.config.unlink(missing_ok=True)

    def _rehomed(self, member: Member) -> Member:
        """A state file naming paths under the old home names them under this one (a file
        watch's resolved path): only JSON under state/, only whole path values."""
        old, new = self.archive.manifest.get("home"), home(self.scope)
        inside = member.path.startswith(f"{Area.STATE}/{STATE}/") and member.path.endswith(".json")
        if not inside or not old or not new or old == new:
            return member
        try:
            data = json.loads(member.content)
        except ValueError:
            return member
        moved = _rehome(data, old.rstrip("/"), new.rstrip("/"))
        if moved == data:
            return member
        text = json.dumps(moved, indent=1, sort_keys=True).encode() + b"\n"
        return Member(member.path, text, member.mode)


def _rehome(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {key: _rehome(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rehome(item, old, new) for item in value]
    return value


def _write_new(path: Path, content: bytes) -> None:
    """A file that did not exist: written aside, then linked into place (never over one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                os.fsync(handle.fileno())
            os.link(temporary, path)
        finally:
            os.unlink(temporary)
    except FileExistsError:
        raise UsageError(f"{path} appeared meanwhile: nothing was written; --config-out") from None
    except OSError as error:
        raise VigilError(f"cannot write {path}: {describe(error)}") from None
    fsync_dir(path.parent)


def _clear(directory: Path, stamp: str) -> None:
    """Make room: a directory with files moved aside (--replace was checked), an empty one
    removed."""
    if holds_files(directory):
        os.rename(directory, moved_aside(directory, stamp))
    elif directory.is_dir():
        for below, _dirs, _files in sorted(os.walk(directory), reverse=True):
            os.rmdir(below)


def _place(directory: Path, members: list[Member], strip: str) -> None:
    """Members of one area into `directory` (their paths less `strip`), written complete in a
    staging directory beside it and renamed into place."""
    staging = directory.with_name(f".{directory.name}.import-partial")
    _remove_tree(staging)  # a crashed import's
    try:
        staging.mkdir(parents=True, mode=0o700)
        write_all((staging / m.path.removeprefix(strip), m.content, m.mode) for m in members)
        os.rename(staging, directory)
    except OSError as error:
        _remove_tree(staging)
        raise VigilError(f"cannot restore {directory}: {describe(error)}") from None
    fsync_dir(directory.parent)


def _remove_tree(directory: Path) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)

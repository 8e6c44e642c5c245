"""`vigil import`: an export archive back onto a machine, through the normal apply.

The order keeps a crash from leaving a setup that looks installed and is not: the archive is
checked whole, then the target (nothing installed or stored there under the config's name),
the secrets and where the config goes, all before anything is written. The plan is made from
the archived config as it will be written, and confirmed; only then is anything written: a
pending-import marker (`<data dir>/import-pending.json`, naming the archive by its sha256), the
config file (never over another file), the state directory and the earlier generations, each
staged beside its place and moved in (state first, so the first heartbeat sees it). Last, the
normal apply stores the new generation, writes the units and switches `current`, the one link
that makes the config installed, and the marker goes.

An import stopped after the restore (a failed apply, a kill) is finished by `vigil apply
CONFIG` or by the same import again: it finds its own marker and applies without restoring."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.backup import archive
from compiler.backup.archive import NOTHING_WRITTEN, Archive, Area, Stored
from compiler.backup.places import (
    holds_files,
    home,
    moved_aside,
    secret_files,
    stamp,
    state_path,
)
from compiler.backup.placing import make_room, place, write_new
from compiler.errors import UsageError, VigilError, Warn
from compiler.fsutil import atomic_write
from compiler.install.generations import NOT_RENDERED_HERE, Installation
from compiler.install.workflows import Prepared, prepare
from compiler.layout import Scope
from runner.contract import GENERATION_META, STATE
from runner.fsatomic import describe

if TYPE_CHECKING:
    from compiler.generate.render import Tree

IMPORTED = "import"
"""generation.json's note on an imported generation rendered again here."""
PENDING = "import-pending.json"
"""In the data directory while an import is restored and not yet applied."""
WATCH_FILE = re.compile(rf"{Area.STATE}/{STATE}/watch-[^/]+\.json")
"""The state files whose entries name paths (a file watch instance's `path`)."""


@dataclass(frozen=True)
class Options:
    config_out: Path | None = None
    """Where to write the config (default: where it was, under this home)."""
    replace: bool = False
    """Move an existing state directory or stored generations of the name aside."""
    skip_secret_check: bool = False
    """Install even when secret files are missing here."""


@dataclass(frozen=True)
class Checked:
    """What the archived config says about this machine."""

    state: Path
    """Its state directory here."""
    secrets: dict[str, str]
    """Its secrets (name -> path as written), the config's own, not the manifest's list."""
    kept: frozenset[str]
    """Secret files inside the state directory (relative to it): never moved, never state."""


@contextlib.contextmanager
def importing(
    path: Path, scope: Scope, options: Options, warn: Warn, *, confirmable: bool
) -> Iterator[Importer]:
    """An import of `path`, checked; afterwards a declined or failed one leaves nothing it
    wrote, or, once restored, says how to finish it. `confirmable`: --yes or a terminal."""
    if not confirmable:  # before anything is read or written
        raise VigilError(f"not on a terminal: re-run with --yes to import; {NOTHING_WRITTEN}")
    importer = Importer(path, scope, options, warn)
    try:
        yield importer
        importer.finish()
    except Exception as error:
        importer.discard()
        if not importer.restored:
            raise
        reason = describe(error) if isinstance(error, OSError) else str(error)
        raise VigilError(
            f"{reason}\nthe state and generations are restored, the config is not installed "
            f"yet: `vigil apply {importer.config}{importer.scope_flags}` finishes the import "
            "(or the same `vigil import` again)"
        ) from None
    finally:
        importer.archive.close()


class Importer:
    """One import: checked on creation, then prepared, then restored and applied."""

    def __init__(self, path: Path, scope: Scope, options: Options, warn: Warn) -> None:
        from compiler import __version__

        self.archive: Archive = archive.read(path, __version__)
        try:
            self.path, self.scope, self.options, self.warn = path, scope, options, warn
            self.name = self.archive.manifest.name
            self.installation = Installation(scope, self.name)
            self._check_scope()
            checked = self._check_config()
            self.state, self.secrets, self.kept = checked.state, checked.secrets, checked.kept
            self.config = self._config_path()
            self.resuming = self._check_target()
            self.missing_secrets = self._check_secrets()
        except BaseException:
            self.archive.close()
            raise
        self._wrote_config = False
        self.restored = False
        self.python: str | None = None

    @property
    def scope_flags(self) -> str:
        flags = " --system" if self.scope.system else ""
        return flags + (f" --root {self.scope.root}" if self.scope.root is not None else "")

    # --- checks, before anything is written ---------------------------------------------------

    def _check_scope(self) -> None:
        written = self.archive.manifest.scope
        if written != self.scope.kind:
            flag = "--system" if written == "system" else "--user (no --system)"
            raise UsageError(f"{self.path}: exported from {written} scope: import it with {flag}")

    def _check_config(self) -> Checked:
        """The archived config validates and is the manifest's; its state directory here."""
        from compiler.generate.specs import state_dir
        from compiler.language.loader import load_text
        from compiler.language.validate import validate_document

        if archive.CONFIG not in self.archive.members:
            raise archive.ArchiveError(self.path, f"no {archive.CONFIG} in the archive")
        label = f"{self.path}:{archive.CONFIG}"  # ConfigError (exit 2) names the archive
        document = load_text(self._config_text, label)
        config = validate_document(document, check_calendar=False).config
        if config.name != self.name:
            raise archive.ArchiveError(self.path, f"its config is named {config.name!r}, "
                                                  f"its manifest {self.name!r}")  # fmt: skip
        state = state_path(state_dir(config, self.scope.system), self.scope)
        secrets = dict(config.secrets)
        return Checked(state, secrets, secret_files(state, secrets.values()))

    @property
    def _config_text(self) -> bytes:
        return self.archive.members[archive.CONFIG].content()

    def _check_target(self) -> bool:
        """Nothing of the name here, or an import of this same archive that stopped after it
        began restoring (True: it is resumed)."""
        current = self.installation.current()
        if current is not None:
            self._marker.unlink(missing_ok=True)  # an import `vigil apply` finished: done
            raise VigilError(
                f"{self.name} is installed here already (generation {current}): "
                f"{NOTHING_WRITTEN}; `vigil uninstall --name {self.name}` first, then import "
                "with --replace (its state directory and generations are moved aside, not "
                "deleted)"
            )
        pending = self._pending()
        if pending.get("archive_sha256") == self.archive.sha256 and not self.options.replace:
            return True
        if pending and not self.options.replace:
            raise VigilError(
                f"an import of {pending.get('archive')} into {self.name} stopped here before it "
                f"was applied: {NOTHING_WRITTEN}; `vigil apply {pending.get('config')}` finishes "
                "it, or --replace moves its state aside and imports this archive"
            )
        for what, directory in self._targets():
            if holds_files(directory, self._kept(directory)) and not self.options.replace:
                raise VigilError(
                    f"{what} {directory} is not empty: {NOTHING_WRITTEN}; --replace moves it "
                    f"aside (to {moved_aside(directory, '<time>').name}) and imports"
                )
        return False

    def _targets(self) -> list[tuple[str, Path]]:
        """What an import fills: in system scope the state directory is inside the data
        directory (/var/lib/vigil/NAME/state), so generations are placed on their own."""
        return [("state directory", self.state), ("generations directory", self._generations)]

    def _kept(self, directory: Path) -> frozenset[str]:
        return self.kept if directory == self.state else frozenset()

    @property
    def _generations(self) -> Path:
        return self.installation.data_dir / Area.GENERATIONS

    @property
    def _marker(self) -> Path:
        return self.installation.data_dir / PENDING

    def _pending(self) -> dict[str, Any]:
        try:
            data = json.loads(self._marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

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
            raise VigilError("\n".join([*problems, f"{NOTHING_WRITTEN} (--skip-secret-check "
                                                   "installs without them)"]))  # fmt: skip
        return problems

    def _config_path(self) -> Path:
        """Where the config goes: --config-out (not inside what the import fills), else where
        it was (under this home or root). An existing file is used only when it holds the same
        config."""
        given = self.options.config_out
        path = (given if given is not None else self._former_path()).absolute()
        for directory in (self.state, self.installation.data_dir):
            if path.is_relative_to(directory.absolute()):
                raise UsageError(f"{path} is inside {directory}, which the import fills: "
                                 f"{NOTHING_WRITTEN}; --config-out PATH elsewhere")  # fmt: skip
        there = path.exists() or path.is_symlink()
        if there and (not path.is_file() or path.read_bytes() != self._config_text):
            hint = "another PATH" if given is not None else "--config-out PATH"
            raise UsageError(f"{path} exists and is another file: {NOTHING_WRITTEN}; "
                             f"pass {hint}")  # fmt: skip
        return path

    def _former_path(self) -> Path:
        """Where the config was, under this home (user scope) or this root (system scope). Not
        a place the archive may choose freely: a .yaml file, not a dot-file, and in user scope
        under the old home; else --config-out is needed."""
        written, old = self.archive.manifest.config_file, self.archive.manifest.home
        if written is None or not os.path.isabs(written):
            raise UsageError(f"{self.path}: the config's former path is not known: "
                             f"{NOTHING_WRITTEN}; --config-out PATH")  # fmt: skip
        name = os.path.basename(written)
        if name.startswith(".") or not name.endswith((".yaml", ".yml")):
            raise UsageError(f"{self.path}: the config's former path {written} is not a "
                             f"config file's: {NOTHING_WRITTEN}; --config-out PATH")  # fmt: skip
        if self.scope.system:
            root = self.scope.root
            return Path(written) if root is None else root / written.lstrip("/")
        if not _is_home(old) or not Path(written).is_relative_to(str(old)):
            raise UsageError(f"{self.path}: the config was at {written}, outside the home: "
                             f"{NOTHING_WRITTEN}; --config-out PATH")  # fmt: skip
        return Path(home(self.scope) or "~") / os.path.relpath(written, str(old))

    # --- writing --------------------------------------------------------------------------

    def prepare(self, python: str | None = None) -> Prepared:
        """Plan the install of the config as it will be written (nothing is written yet)."""
        self.python = python
        prepared = prepare(self.config, self.scope, python=python, content=self._config_text)
        prepared.meta["reason"] = (
            f"import from {self.path.name} (generation {self.archive.manifest.current} where it "
            "was exported)"
        )
        prepared.meta["jobs_changed"] = {}  # an import changes no job's work
        return prepared

    def restore(self, prepared: Prepared) -> None:
        """Once confirmed: the marker, the config file, the state directory, then the earlier
        generations, each staged and moved in; a resumed import's restore is done already."""
        from compiler.install.pauses import tree_pauses

        done = self.resuming and self._pending().get("restored") is True
        if not done:
            self._mark(restored=False)
        if not self.config.exists():  # (a resumed import may be given another --config-out)
            write_new(self.config, self._config_text)
            self._wrote_config = True
        if not done:
            self._restore_files()
            self._restore_stamps()
            self._mark(restored=True)
        self.restored = True
        # Jobs paused where it was exported stay paused (state/pauses.json is here now).
        prepared.plan.paused = tree_pauses(prepared.tree or {}, self.scope.live, self.warn)

    def _restore_files(self) -> None:
        moment = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if not self.resuming:  # a resumed import's targets hold what it restored
            for _what, directory in self._targets():
                make_room(directory, moment, self.options.replace, self._kept(directory))
        state = ((m.path, self._rehomed(m), m.mode) for m in self.archive.under(Area.STATE))
        place(self.state, state, f"{Area.STATE}/")
        place(self._generations, self._generation_files(), f"{Area.GENERATIONS}/")

    def _generation_files(self) -> Iterator[tuple[str, bytes, int]]:
        """The earlier generations, each rendered again from its own config.yaml for this
        machine (its interpreter, its paths), keeping its number and generation.json (which
        says so); one whose config no longer validates is kept as archived and marked, and
        `vigil rollback` refuses it (it would run the old machine's interpreter)."""
        by_number: dict[str, dict[str, Stored]] = {}
        for member in self.archive.under(Area.GENERATIONS):
            _area, number, relative = member.path.split("/", 2)
            by_number.setdefault(number, {})[relative] = member
        for number, files in sorted(by_number.items()):
            top = f"{Area.GENERATIONS}/{number}"
            tree, why = self._rendered(files.get(archive.CONFIG))
            meta = _json_object(files.get(GENERATION_META))
            if tree is None:
                meta[NOT_RENDERED_HERE] = why
                yield from ((f"{top}/{rel}", m.content(), m.mode) for rel, m in files.items()
                            if rel != GENERATION_META)  # fmt: skip
            else:
                meta[IMPORTED] = "rendered again at import for this machine"
                yield from ((f"{top}/{rel}", f.content, f.mode) for rel, f in tree.items())
            text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
            yield f"{top}/{GENERATION_META}", text.encode(), 0o644

    def _rendered(self, config: Stored | None) -> tuple[Tree | None, str]:
        from compiler.generate.build import build

        if config is None:
            return None, f"it has no {archive.CONFIG}"
        try:
            _validated, tree = build(self.config, python=self.python, system=self.scope.system,
                                     content=config.content())  # fmt: skip
        except VigilError as error:
            return None, str(error).splitlines()[0]
        return tree, ""

    def _mark(self, restored: bool) -> None:
        marker = {
            "archive": str(self.path.absolute()),
            "archive_sha256": self.archive.sha256,
            "config": str(self.config),
            "restored": restored,
        }
        self._marker.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self._marker, json.dumps(marker, indent=2, sort_keys=True) + "\n")

    def _restore_stamps(self) -> None:
        """The timers' last triggers, before apply starts them: systemd reads a stamp when a
        timer starts, so `Persistent=` catches up what fell due during the move. The manifest
        holds only this config's timers at plausible times (manifest.py)."""
        for timer, moment in self.archive.manifest.timers.items():
            path = stamp(self.scope, timer)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                os.utime(path, (moment, moment))
            except OSError as error:
                self.warn(f"{path}: {describe(error)}: {timer} does not catch up the move")

    def finish(self) -> None:
        """After the apply: the import is done once `current` is set."""
        if self.restored and self.installation.current() is not None:
            self._marker.unlink(missing_ok=True)

    def discard(self) -> None:
        """After a declined or failed import: the config file it wrote goes too, unless the
        state was restored (then the config is what finishes the import)."""
        if self._wrote_config and not self.restored:
            self.config.unlink(missing_ok=True)

    def _rehomed(self, member: Stored) -> bytes:
        """A file watch's instances name their files by path: a path under the old home names
        the same file under this one. Only those values (runner/stateshapes.py's WATCH), only
        when both homes are real ones (never `/`)."""
        content = member.content()
        old, new = self.archive.manifest.home, home(self.scope)
        if not WATCH_FILE.fullmatch(member.path) or not _is_home(old) or not _is_home(new):
            return content
        assert old is not None and new is not None
        try:
            data = json.loads(content)
        except ValueError:
            return content
        instances = data.get("instances") if isinstance(data, dict) else None
        if not isinstance(instances, dict):
            return content
        moved = False
        for instance in instances.values():
            path = instance.get("path") if isinstance(instance, dict) else None
            if isinstance(path, str) and old != new and Path(path).is_relative_to(old):
                instance["path"] = str(Path(new) / os.path.relpath(path, old))
                moved = True
        return json.dumps(data, indent=1, sort_keys=True).encode() + b"\n" if moved else content


def _json_object(member: Stored | None) -> dict[str, Any]:
    try:
        data = json.loads(member.content()) if member is not None else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _is_home(directory: str | None) -> bool:
    """A home directory paths can be re-homed from: absolute, not `/`."""
    return bool(directory) and os.path.isabs(str(directory)) and Path(str(directory)) != Path("/")

"""From a config file (or its content at a git revision) to a rendered tree, and onto disk."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from compiler.fsutil import read_manifest, staged_write, write_changed
from compiler.generate import gitinfo
from compiler.generate.fleet import choose_host
from compiler.generate.packages import interpreter
from compiler.generate.render import Source, Tree, render
from compiler.language.loader import load_file, load_text
from compiler.language.validate import Validated, validate_document

# What a strict service does not see as the host has it unless it is bound back: the home
# directories (ProtectHome=tmpfs) and the temporary directories (PrivateTmp=yes).
HIDDEN = ("/home", "/root", "/run/user", "/tmp", "/var/tmp")


def default_python() -> str:
    """The interpreter vigil runs on: it has the runner package installed beside the compiler."""
    return sys.executable or "/usr/bin/python3"


def units_python(python: str | None) -> str:
    """The interpreter the units run: `--python` as an absolute path, or vigil's own."""
    return interpreter(python) if python else default_python()


def runtime_paths(python: str) -> list[str]:
    """Directories in HIDDEN places that `python -m runner` needs (strict services
    bind them back): for the interpreter vigil runs on, its installation, its environment and
    the runner package; for another one, the environment its path is in."""
    if python == sys.executable:
        candidates = [sys.base_prefix, sys.prefix]
        spec = importlib.util.find_spec("runner")
        if spec is not None and spec.origin:  # an editable install runs it from the checkout
            candidates.append(os.path.dirname(os.path.dirname(spec.origin)))
    else:
        candidates = [os.path.dirname(os.path.dirname(python))]
    found = dict.fromkeys(os.path.realpath(path) for path in candidates)
    return [path for path in found if any(path.startswith(f"{top}/") for top in HIDDEN)]


def build(
    path: Path,
    *,
    python: str | None = None,
    system: bool = False,
    revision: str | None = None,
    host: str | None = None,
    content: bytes | None = None,
) -> tuple[Validated, Tree]:
    """Validate and render `path`, or its content at git `revision`, or `content` as if it were
    at `path` (a file not written yet), for fleet host `host` (default: this machine; see
    fleet.choose_host). Raises ConfigError, or UsageError for a host that is not the fleet's."""
    with _collections_skip_the_heap_so_far():
        return _build(
            path, python=python, system=system, revision=revision, host=host, content=content
        )


@contextlib.contextmanager
def _collections_skip_the_heap_so_far() -> Iterator[None]:
    """A build allocates a lot (the model, four files and a spec per job), which sets off full
    garbage collections, and each would scan every object already there as well: the imported
    modules, pydantic's models and jinja2's templates. Those are set aside while the build runs
    (gc.freeze) and given back after, so that nothing is ever kept from collection for good;
    measured, the scans cost a build of 1,000 jobs in a fresh `vigil compile` 7% of its time."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _build(
    path: Path,
    *,
    python: str | None,
    system: bool,
    revision: str | None,
    host: str | None,
    content: bytes | None = None,
) -> tuple[Validated, Tree]:
    if content is not None:
        document = load_text(content, str(path))
        git = gitinfo.describe(path) if path.is_file() else None
        source = Source(str(path.absolute()), content, git)
    elif revision is None:
        document = load_file(path)
        text = path.read_bytes()
        source = Source(str(path.absolute()), text, gitinfo.describe(path))
    else:
        text, sha = gitinfo.show(path, revision)
        label = f"{path.absolute()}@{sha[:12]}"
        document = load_text(text, label)
        source = Source(label, text, {"revision": sha, "dirty": False}, str(path.absolute()))
    validated = validate_document(document)
    host = choose_host(validated.config, host)
    python = units_python(python)
    runtime = runtime_paths(python)
    tree = render(
        validated.config, source, python=python, system=system, runtime=runtime, host=host
    )
    return validated, tree


def write_tree(tree: Tree, out: Path) -> tuple[int, list[str]]:
    """Write `tree` into `out`; remove what an earlier compile there wrote and this one did not.
    Files vigil did not write are never touched; files already up to date are not rewritten.
    This is build output (no fsync); installed generations are written durably by apply.
    Returns how many files were written and the removed paths."""
    previous = read_manifest(out)
    # The manifest is staged first and renamed last: it only ever describes files that are
    # complete on disk, and a full disk fails before anything in `out` changed.
    manifest = tree["manifest.json"]
    pending = staged_write(out / "manifest.json", manifest.content, manifest.mode)
    try:
        written = write_changed(
            (out / relative, generated.content, generated.mode)
            for relative, generated in sorted(tree.items())
            if relative != "manifest.json"
        )
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    stale = sorted(set(previous.get("files", {})) - set(tree))
    for relative in stale:
        (out / relative).unlink(missing_ok=True)
    if pending is not None:
        os.replace(pending, out / "manifest.json")
        written += 1
    return written, stale

"""vigil's compiler: from one YAML file to systemd units, runner scripts and job specs.

Its layers, lowest first; a module imports from its own layer and lower ones only, and only the
cli prints (tests/test_layers.py checks both):

- foundation, the modules beside this one: errors (the error hierarchy and exit codes), fsutil
  (atomic writes), layout (where things live per scope)
- language: what a config says
- generate: from the model to the generated tree, nothing installed
- install: plan, apply, generations
- operate: installed setups in use
- glance: the pictures (timeline, status page) of a setup in use, read only
- backup: an installed setup into one archive and back (export, import)
- cli: the `vigil` command
"""

from __future__ import annotations

import functools
from pathlib import Path

LAYERS = (
    "foundation", "language", "generate", "install", "operate", "glance", "backup", "cli"
)  # fmt: skip
"""The layers, lowest first: "foundation" for the modules at the top, else the subpackage."""

DISTRIBUTION = "vigil"
"""The distribution name in pyproject.toml, whose version is the one version of vigil."""


def __getattr__(name: str) -> str:
    # Computed on first use: reading the installed metadata costs a CLI start ~70 ms.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _version() -> str:
    # A source checkout (a pyproject.toml of vigil beside the package) is its own truth: an
    # older vigil installed in the same environment, or a stale egg-info in the checkout, must
    # not give its version to the units this code generates.
    checkout = checkout_version(Path(__file__).resolve().parent.parent)
    if checkout is not None:
        return checkout
    installed = installed_version(Path(__file__).resolve().parent.parent)
    if installed is not None:
        return installed
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def checkout_version(root: Path) -> str | None:
    """The version in `root`'s pyproject.toml when it is vigil's, else None."""
    import tomllib

    try:
        with open(root / "pyproject.toml", "rb") as handle:
            project = tomllib.load(handle)["project"]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(project, dict) or project.get("name") != DISTRIBUTION:
        return None
    return str(project.get("version") or "unknown")


def installed_version(site: Path) -> str | None:
    """The version in the name of vigil's `.dist-info` directory beside the package, when there
    is exactly one: importlib.metadata costs `vigil --version` ~50 ms of start-up."""
    found = list(site.glob(f"{DISTRIBUTION}-*.dist-info"))
    if len(found) != 1:
        return None
    return found[0].name.removeprefix(f"{DISTRIBUTION}-").removesuffix(".dist-info")

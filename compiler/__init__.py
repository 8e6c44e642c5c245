"""vigil's compiler: from one YAML file to systemd units, runner scripts and job specs.

Its layers, lowest first; a module imports from its own layer and lower ones only, and only the
cli prints (tests/test_layers.py checks both):

- foundation, the modules beside this one: errors (the error hierarchy and exit codes), fsutil
  (atomic writes), layout (where things live per scope)
- language: what a config says
- generate: from the model to the generated tree, nothing installed
- install: plan, apply, generations
- operate: installed setups in use
- cli: the `vigil` command
"""

from __future__ import annotations

import functools
from pathlib import Path

LAYERS = ("foundation", "language", "generate", "install", "operate", "cli")
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
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return checkout_version(Path(__file__).resolve().parent.parent)


def checkout_version(root: Path) -> str:
    """A source checkout run without installing it: the version its pyproject.toml says."""
    import tomllib

    try:
        with open(root / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"

"""Packages a run imports beyond the standard library, imported only by the run that needs them.

A missing or broken one is a MissingPackage: the run records why, with the command that
installs it, and never ends in a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


class MissingPackage(Exception):
    """The interpreter this unit runs with cannot import a package the run needs."""


def _advice(module: str, needed_for: str, detail: str) -> str:
    return (
        f"{needed_for} needs the {module} package, which {sys.executable} cannot import "
        f"({detail}): install it with `{sys.executable} -m pip install {module}` "
        "(or reinstall vigil there, which brings it)"
    )


def check_installed(module: str, needed_for: str) -> None:
    """Raise MissingPackage when `module` cannot be found, without importing it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError) as error:
        raise MissingPackage(_advice(module, needed_for, str(error))) from None
    if not found:
        raise MissingPackage(_advice(module, needed_for, "not installed"))


def load(module: str, needed_for: str) -> ModuleType:
    """Import `module`; a missing or broken installation is a MissingPackage."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingPackage(
            _advice(module, needed_for, f"{type(error).__name__}: {error}")
        ) from None

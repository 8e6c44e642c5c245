"""Packages a run imports beyond the standard library, imported only by the run that needs them.

A missing or broken one is a MissingPackage: the run records why, with the command that
installs it, and never ends in a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from types import ModuleType


class MissingPackage(Exception):
    """The interpreter this unit runs with cannot import a package the run needs."""


def requirement(distribution: str) -> str:
    """`anthropic>=0.40,<3` as vigil's installed metadata asks for it, else the bare name."""
    from importlib import metadata  # only when there is advice to give

    try:
        declared = metadata.requires("vigil") or []
    except metadata.PackageNotFoundError:
        return distribution
    for line in declared:
        if ";" in line:  # an extra's requirement
            continue
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(.*)", line)
        if match is None or match[1].lower() != distribution.lower():
            continue
        bounds = [bound.strip() for bound in match[2].split(",") if bound.strip()]
        bounds.sort(key=lambda bound: (not bound.startswith(">"), bound))
        return match[1] + ",".join(bounds)
    return distribution


def is_installed(module: str) -> bool:
    """Whether `module` is a real installed module or package, without importing it: a
    leftover directory (a namespace package without __init__.py) does not count."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def _advice(module: str, needed_for: str, detail: str, reinstall: bool = False) -> str:
    force = "--force-reinstall " if reinstall else ""
    return (
        f"{needed_for} needs the {module} package, which {sys.executable} cannot import "
        f"({detail}): install it with `{sys.executable} -m pip install {force}"
        f"'{requirement(module)}'` (or reinstall vigil there, which brings it)"
    )


def check_installed(module: str, needed_for: str) -> None:
    """Raise MissingPackage when `module` is not installed, without importing it."""
    if not is_installed(module):
        raise MissingPackage(_advice(module, needed_for, "not installed"))


def load(module: str, needed_for: str) -> ModuleType:
    """Import `module`; a missing or broken installation is a MissingPackage. Any error while
    importing counts: a half-installed package raises SyntaxError, AttributeError and the like."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] != module:
            detail = f"it needs {error.name}, which is missing"
            raise MissingPackage(_advice(module, needed_for, detail, reinstall=True)) from None
        raise MissingPackage(_advice(module, needed_for, "not installed")) from None
    except Exception as error:
        detail = f"broken installation: {type(error).__name__}: {error}"
        raise MissingPackage(_advice(module, needed_for, detail, reinstall=True)) from None

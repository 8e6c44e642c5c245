"""`systemd-analyze verify` on a rendered tree, laid out as it will be installed.

verify prints "Unknown key ..., ignoring" or a bad OnCalendar and still exits 0, so every line it
prints about a generated unit counts as a failure. It also checks that ExecStart= programs exist,
so the tree is laid out in a scratch directory standing in for the home directory (user scope,
through %h) or for / (system scope, through --root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from compiler.errors import VigilError
from compiler.generate.render import Tree
from compiler.layout import Scope


class VerifyUnavailable(VigilError):
    """systemd-analyze is missing."""


def verify_tree(tree: Tree, name: str, *, system: bool = False) -> list[str]:
    """Problems systemd-analyze reports about the tree's units; empty when they are clean."""
    if shutil.which("systemd-analyze") is None:
        raise VerifyUnavailable("systemd-analyze not found: cannot verify units")
    with tempfile.TemporaryDirectory(prefix="vigil-verify-") as scratch:
        base = Path(scratch)
        scope = Scope(system=system, root=base)
        units = _lay_out(tree, scope, name)
        if system:
            _borrow_system_units(base)
        return _run_verify(units, base, system)


def _lay_out(tree: Tree, scope: Scope, name: str) -> list[Path]:
    generation = scope.data_dir(name) / "generations" / "verify"
    for relative, generated in tree.items():
        target = generation / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(generated.content)
        target.chmod(generated.mode)
    (scope.data_dir(name) / "current").symlink_to("generations/verify")
    unit_dir = scope.unit_dir()
    unit_dir.mkdir(parents=True, exist_ok=True)
    units = []
    for relative, generated in sorted(tree.items()):
        if relative.startswith("units/"):
            unit = unit_dir / relative.removeprefix("units/")
            unit.write_bytes(generated.content)
            units.append(unit)
    return units


def _borrow_system_units(root: Path) -> None:
    # The units we install depend on the distribution's targets (sysinit.target...).
    for vendor in ("usr/lib/systemd", "lib/systemd"):
        if Path("/", vendor).is_dir() and not (root / vendor).exists():
            (root / vendor).parent.mkdir(parents=True, exist_ok=True)
            (root / vendor).symlink_to(Path("/", vendor))


def _run_verify(units: list[Path], base: Path, system: bool) -> list[str]:
    env = dict(os.environ, HOME=str(base), SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
    if system:
        command = ["systemd-analyze", "verify", f"--root={base}", *map(str, units)]
    else:
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        env.update(XDG_RUNTIME_DIR=str(runtime))
        env.pop("XDG_CONFIG_HOME", None)
        command = ["systemd-analyze", "verify", "--user", *map(str, units)]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ["systemd-analyze verify timed out"]
    names = [unit.name for unit in units]
    output = (result.stdout + result.stderr).replace(str(base), "")
    problems = [line for line in output.splitlines() if any(n in line for n in names)]
    if result.returncode != 0 and not problems:
        problems.append(f"systemd-analyze verify exited {result.returncode}: {output.strip()}")
    return problems

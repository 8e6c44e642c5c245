"""`python -m tests.latest [PYTEST ARGS]`: the suite against the newest versions the ranges admit.

CI installs the exact versions of requirements/test.txt, so a release elsewhere cannot break it
overnight; this check is how such a release is seen before users see it. It installs vigil with
its test extra into a new virtual environment, ignoring the lock, runs the tests with it, and
prints the packages whose newest version differs from the lock. Exit status: pytest's.
Not part of CI's pass or fail; run it before a release and after refreshing the lock.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.txt"
EAGER = ("--upgrade-strategy", "eager", "pip")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
_PIN_LINE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*\\?$", re.MULTILINE
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path = LOCK, *, here_only: bool = False) -> dict[str, str]:
    """Name -> pinned version; with `here_only`, only the pins whose environment markers
    (`colorama==0.4.6 ; sys_platform == 'win32'`) hold on this machine."""
    pins = {}
    for name, version, markers in _PIN_LINE.findall(lock.read_text()):
        if here_only and markers and not Marker(markers).evaluate():
            continue
        pins[canonical(name)] = version
    return pins


def installed_versions(python: Path) -> dict[str, str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {canonical(name): version for name, version in _PIN.findall(listing)}


def differences(locked: dict[str, str], newest: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(set(locked) | set(newest)):
        old, new = locked.get(name), newest.get(name)
        if name in ("pip", "vigil") or old == new:
            continue
        lines.append(f"  {name}: {old or '(not locked)'} -> {new or '(not installed)'}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.latest", description=__doc__)
    parser.add_argument("--venv", type=Path, help="environment to (re)use instead of a new one")
    args, pytest_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-latest-") as scratch:
        # Open to all, as a checkout's .venv is: some tests run the runner as another user.
        os.chmod(scratch, 0o755)
        env_dir = args.venv or Path(scratch) / "venv"
        if not (env_dir / "bin" / "python").exists():
            venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        print(f"installing the newest versions into {env_dir}", file=sys.stderr)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--upgrade", *EAGER, f"{ROOT}[test]"]
        )
        if install.returncode != 0:
            print(f"pip could not install the newest versions (exit {install.returncode})")
            return 1
        changed = differences(locked_versions(here_only=True), installed_versions(python))
        print("newer than the lock:" if changed else "the lock has the newest versions")
        print("\n".join(changed))
        sys.stdout.flush()
        tests = subprocess.run(
            [str(python), "-m", "pytest", "-q", *pytest_args], cwd=ROOT, env=dict(os.environ)
        )
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Small real file systems for tests: tmpfs mounts in a private mount namespace.

As root, `unshare --mount --propagation private` gives a namespace whose mounts the host never
sees. A `sleep` process keeps it alive; commands run in it through `nsenter` (optionally as
`nobody`, through `setpriv`), and this process reads and writes its files through
`/proc/PID/root/...`. A tmpfs there can be filled to the last page, remounted read-only and
emptied again, so tests see what ENOSPC and EROFS really do to vigil.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.runner_support import ROOT, runner_env
from tests.systemd_manager import skip_or_fail

PAGE = 4096
TIMEOUT = 180.0
NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
LEFTOVER_SUFFIXES = (".part", ".tmp", ".partial")
"""Names of temp files a write leaves behind when it fails half-way."""


class PrivateMounts:
    """A mount namespace of our own, and a base directory every user can reach (tmpfs mounts
    go below it; the runner is copied there for `nobody`)."""

    def __init__(self) -> None:
        for tool in ("unshare", "nsenter", "mount", "setpriv"):
            if not shutil.which(tool):
                skip_or_fail(f"{tool} not available")
        if os.geteuid() != 0:
            skip_or_fail("private mounts need root")
        self.base = Path(tempfile.mkdtemp(prefix="vigil-fs-", dir="/tmp"))
        self.base.chmod(0o755)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.holder.pid
        deadline = time.monotonic() + 10
        own = os.readlink("/proc/self/ns/mnt")
        while not self._entered(own):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                skip_or_fail("unshare --mount did not start")
            time.sleep(0.01)
        self.filler: dict[Path, Path] = {}
        self._nobody_python: str | None = None

    def _entered(self, own: str) -> bool:
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
            return comm == "sleep" and os.readlink(f"/proc/{self.pid}/ns/mnt") != own
        return False

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.send_signal(signal.SIGKILL)
            self.holder.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- inside the namespace -------------------------------------------------------------

    def run(
        self,
        *argv: str | Path,
        nobody: bool = False,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.prefix(), *(NOBODY if nobody else ()), *map(str, argv)]
        return subprocess.run(
            command,
            cwd=cwd or self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def prefix(self) -> list[str]:
        """What runs a command in the namespace."""
        return ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--"]

    def must(self, *argv: str | Path) -> None:
        result = self.run(*argv)
        assert result.returncode == 0, f"{argv}: {result.stderr}"

    def tmpfs(self, name: str, size: str = "512k") -> Path:
        """A fresh tmpfs at base/NAME (mode 0755), as the namespace sees it."""
        point = self.base / name
        self.view(point).mkdir(mode=0o755, parents=True, exist_ok=True)  # maybe on a tmpfs
        self.must("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", point)
        return point

    def remount(self, point: Path, *, read_only: bool) -> None:
        self.must("mount", "-o", f"remount,{'ro' if read_only else 'rw'}", point)

    def view(self, path: Path) -> Path:
        """`path` as the namespace sees it, for this process to read and write."""
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def fill(self, point: Path, leave_pages: int = 0) -> None:
        """Fill the tmpfs at `point` to its last page, then give `leave_pages` pages back."""
        filler = self.view(point) / ".filler"
        handle = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            chunk = b"\0" * (16 * PAGE)
            while True:
                try:
                    os.write(handle, chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    break
            size = os.fstat(handle).st_size
            os.ftruncate(handle, max(0, (size // PAGE - leave_pages) * PAGE))
        finally:
            os.close(handle)
        self.filler[point] = filler

    def free(self, point: Path) -> None:
        self.filler.pop(point).unlink()

    # -- running vigil in the namespace ----------------------------------------------------

    def runner(
        self, *args: str | Path, nobody: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`python -m runner ARGS` in the namespace; as `nobody` from a copy of the package
        below the base directory (the repository and venv may be out of its reach)."""
        environment = runner_env(**env)
        if not nobody:
            return self.run(sys.executable, "-m", "runner", *args, env=environment, cwd=ROOT)
        environment["PYTHONPATH"] = str(self._runner_copy())
        return self.run(self.nobody_python(), "-m", "runner", *args, nobody=True, env=environment)

    def vigil(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = runner_env()
        code = "from compiler.cli.commands import main; main()"
        return self.run(sys.executable, "-c", code, *args, env=env, cwd=ROOT)

    def _runner_copy(self) -> Path:
        lib = self.base / "lib"
        if not lib.exists():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / "runner", lib / "runner", ignore=ignore)
            for path in [lib, *lib.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
        return lib

    def nobody_python(self) -> str:
        """An interpreter `nobody` can run (a venv under /root is out of its reach)."""
        if self._nobody_python is None:
            for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
                if candidate and self._runs_as_nobody(candidate):
                    self._nobody_python = candidate
                    break
            else:
                skip_or_fail("no Python 3.11+ that nobody can run")
        return self._nobody_python

    def _runs_as_nobody(self, python: str) -> bool:
        probe = self.run(
            python, "-c", "import sys; assert sys.version_info >= (3, 11)", nobody=True
        )
        return probe.returncode == 0


@contextlib.contextmanager
def private_mounts() -> Iterator[PrivateMounts]:
    mounts = PrivateMounts()
    try:
        yield mounts
    finally:
        mounts.close()


# -- what a failed write may leave -------------------------------------------------------------


def files_below(top: Path) -> dict[str, bytes]:
    """Every regular file below `top` (the filler excepted) by relative path, with its bytes."""
    return {
        str(path.relative_to(top)): path.read_bytes()
        for path in sorted(top.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != ".filler"
    }


def assert_whole(top: Path) -> dict[str, bytes]:
    """Nothing half-written below `top`: no temp files, every JSON file parses, every JSONL
    line parses and the file ends with a newline. Returns files_below(top)."""
    found = files_below(top)
    for relative, data in found.items():
        assert not relative.endswith(LEFTOVER_SUFFIXES), f"temp file left behind: {relative}"
        assert ".partial" not in relative, f"half-written directory left behind: {relative}"
        if relative.endswith(".json"):
            json.loads(data)
        elif relative.endswith(".jsonl") and data:
            assert data.endswith(b"\n"), f"{relative} ends in a torn line"
            for line in data.splitlines():
                json.loads(line)
    return found

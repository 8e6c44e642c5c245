"""One test over a folder of bad configs: each must exit 2 with the expected FILE:LINE:COL lines.

Each case file starts with one or more `# expect: LINE:COL: field: message` comments; every one must
appear (as a prefix plus fragment) in stderr, and nothing may look like a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import CASES

BAD = sorted((CASES / "bad").glob("*.yaml"))
EXPECT = re.compile(rb"^# expect: (.*)$", re.MULTILINE)


def expectations(path: Path) -> list[str]:
    found = [m.decode() for m in EXPECT.findall(path.read_bytes())]
    assert found, f"{path.name} has no `# expect:` line"
    return found


def test_corpus_is_large_enough() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config(vigil, path: Path) -> None:
    result = vigil("validate", path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    for expected in expectations(path):
        if re.match(r"^\d+:\d+: ", expected):
            position, fragment = expected.split(": ", 1)
            prefix = f"{path}:{position}: "
            hits = [line for line in lines if line.startswith(prefix) and fragment in line]
        else:
            hits = [line for line in lines if expected in line]
        assert hits, f"expected {expected!r} in:\n" + "\n".join(lines)

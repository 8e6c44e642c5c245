"""`python tests/simulation/clocked.py job SPEC`: the real runner with its clock set to
VIGIL_NOW. The job runner reads the wall clock (runner.clock.utc_now) and ignores VIGIL_NOW, so
concurrent job runs of the simulation (a Persistent= catch-up) go through this wrapper."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from runner import clock

_fixed = clock.parse_iso(os.environ["VIGIL_NOW"])
clock.utc_now = lambda: _fixed  # type: ignore[assignment,return-value]

from runner.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

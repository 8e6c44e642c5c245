"""Finding the config when a command is not given one: ./vigil.yaml, then ~/.config/vigil/."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.errors import UsageError

CANDIDATES = ("vigil.yaml", "vigil.yml")


def find_config(given: Path | None) -> Path:
    if given is not None:
        return given
    places = [Path.cwd(), Path(os.path.expanduser("~/.config/vigil"))]
    for place in places:
        for name in CANDIDATES:
            if (place / name).is_file():
                return place / name
    looked = ", ".join(str(place / CANDIDATES[0]) for place in places)
    raise UsageError(f"no config given and none found (looked for {looked}); pass --config FILE")

"""Where things live, per scope: unit files, generations, state.

User scope keeps units in ~/.config/systemd/user, generations in ~/.local/share/vigil/NAME and
state in ~/.local/state/vigil/NAME. System scope uses /etc/systemd/system and /var/lib/vigil/NAME.
`--root DIR` puts the same tree under DIR (DIR stands for the home directory in user scope and for
/ in system scope) and never talks to systemd.

Generated units refer to the installed tree through `%h` in user scope, so the same output works
for any user and the compiled examples in units/ do not depend on the machine they came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class ScopeKind(StrEnum):
    """The two scopes by name, as files written for another machine record them."""

    USER = "user"
    SYSTEM = "system"


@dataclass(frozen=True)
class Scope:
    system: bool = False
    root: Path | None = None

    @property
    def kind(self) -> ScopeKind:
        return ScopeKind.SYSTEM if self.system else ScopeKind.USER

    @property
    def flag(self) -> str:
        return "--system" if self.system else "--user"

    @property
    def live(self) -> bool:
        """Whether apply talks to a running systemd (not with --root)."""
        return self.root is None

    def _base(self) -> Path:
        if self.root is not None:
            return self.root
        return Path("/") if self.system else Path(os.path.expanduser("~"))

    def unit_dir(self) -> Path:
        if self.system:
            return self._base() / "etc/systemd/system"
        config_home = os.environ.get("XDG_CONFIG_HOME")
        if self.root is None and config_home and os.path.isabs(config_home):
            return Path(config_home) / "systemd/user"  # where the user manager looks first
        return self._base() / ".config/systemd/user"

    def runtime_unit_dir(self) -> Path:
        """Where unit files live until the next boot (`systemctl --runtime`): a try's copy."""
        if self.system:
            return Path("/run/systemd/system")
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
        return Path(runtime) / "systemd/user"

    def data_dir(self, name: str) -> Path:
        """Generations of one config: generations/N and the `current` link to one of them."""
        if self.system:
            return self._base() / "var/lib/vigil" / name
        return self._base() / ".local/share/vigil" / name


def unit_prefix(system: bool, name: str, tree: str = "current") -> str:
    """How generated units name the installed `current` tree (or another tree below the data
    directory: a generation not live yet, a try's staged copy)."""
    if system:
        return f"/var/lib/vigil/{name}/{tree}"
    return f"%h/.local/share/vigil/{name}/{tree}"


def default_state_dir(system: bool, name: str) -> str:
    return f"/var/lib/vigil/{name}/state" if system else f"~/.local/state/vigil/{name}"

"""An alert: one line of a message, produced by a rule from a finding."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass
class Alert:
    text: str
    source: str
    priority: int = 0
    urgent: bool = False
    key: str = ""  # what makes it unique (rule, item, nag count): held alerts are kept by key
    to: list[str] | None = None  # channels, when a rule or source routes it; else deliver_to
    evidence: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = hashlib.sha256(f"{self.source}\0{self.text}".encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Alert:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)  # type: ignore[arg-type]

"""Durations in words, for what vigil prints and the units it writes; stdlib only, so that the
inspecting commands say a watch's period without loading the model."""

from __future__ import annotations


def format_duration(seconds: int, *, minute: str = "m", zero: str = "0s") -> str:
    """Seconds -> '1h 30m', the inverse of parse_duration for display (systemd spells the
    minute 'min')."""
    if seconds == 0:
        return zero
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), (minute, 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)

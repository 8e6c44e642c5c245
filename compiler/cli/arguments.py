"""The options that the commands parsed with argparse, not typer, share (cli/parsed.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]
Commands = dict[str, tuple[Callable[[], argparse.ArgumentParser], Handler]]
"""Each command's parser (built when used) and what it does with what was parsed."""


def command_parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"vigil {name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="The config (default: ./vigil.yaml, then ~/.config/vigil/vigil.yaml).",
    )


def add_system(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system",
        action="store_true",
        help="System units (/etc/systemd/system) instead of --user.",
    )


def add_json(parser: argparse.ArgumentParser, words: str = "Print JSON.") -> None:
    parser.add_argument("--json", action="store_true", help=words)

"""A try of a job (`vigil try`, canary applies, preflights): the run its timer would make, in
its own unit's settings, whose findings and run record go to the try's directory instead of the
inbox and runs.jsonl. Nothing is delivered and no rule state changes; tokens a try spends are
booked like any others (a try is a real call)."""

from __future__ import annotations

from runner.contract import CHECK_ARG, NO_MODEL_ARG, TRY_ARG


class Trial:
    def __init__(self, directory: str, *, no_model: bool = False, check: bool = False) -> None:
        self.directory = directory
        self.no_model = no_model
        self.check = check


def parse(args: list[str]) -> Trial | None:
    """`--try DIR [--no-model | --check]` after the spec, or nothing; ValueError otherwise."""
    if not args:
        return None
    if len(args) < 2 or args[0] != TRY_ARG or not args[1]:
        raise ValueError(f"expected {TRY_ARG} DIR [{NO_MODEL_ARG} | {CHECK_ARG}]")
    flags = set(args[2:])
    if len(flags) != len(args) - 2 or not flags <= {NO_MODEL_ARG, CHECK_ARG} or len(flags) > 1:
        raise ValueError(f"expected {TRY_ARG} DIR [{NO_MODEL_ARG} | {CHECK_ARG}]")
    return Trial(args[1], no_model=NO_MODEL_ARG in flags, check=CHECK_ARG in flags)

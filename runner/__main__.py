"""`python -I -m runner KIND SPEC [ARGS]`: what the generated units execute (as
`python -I -c "<contract.RUNNER_ENTRY>" KIND SPEC [ARGS]`, which spares each start runpy).

Kinds: `job SPEC [--try DIR [--no-model | --check] | --preflight]` (a scheduled job, a try of
it: see runner.trial, or its preflight: runner.preflight), `coordinator SPEC` (inbox to
delivered messages), `forward SPEC` (a fleet host's findings and runs to NATS: runner.fleet),
`reply SPEC` (a reply source's long-running service: runner.replies) and `failure SPEC UNIT`
(the OnFailure= alert handler).
Exit codes are listed in runner.exitcodes. Each kind's module is imported only when it runs,
so a job's start-up stays stdlib-only and small.
"""

from __future__ import annotations

import sys

from runner.contract import PREFLIGHT_ARG
from runner.exitcodes import USAGE

USAGE_TEXT = (
    "usage: python -m runner job SPEC [--try DIR [--no-model | --check] | --preflight]"
    " | coordinator SPEC"
    " | watch SPEC | forward SPEC | reply SPEC | failure SPEC UNIT"
)
EXTRA_ARGS = {"job": 3, "failure": 1, "coordinator": 0, "watch": 0, "forward": 0, "reply": 0}
"""Kinds this version runs, and how many arguments may follow the spec."""
SPEC_ONLY = {
    "coordinator": "runner.coordinator",
    "forward": "runner.fleet.forward",
    "watch": "runner.watch",
    "reply": "runner.replies.service",
}
"""Kinds whose module's `main(SPEC)` reads its spec and does the rest."""


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(USAGE_TEXT, file=sys.stderr)
        return USAGE
    kind, spec_path, *rest = argv
    if kind not in EXTRA_ARGS or len(rest) > EXTRA_ARGS[kind]:
        print(USAGE_TEXT, file=sys.stderr)
        return USAGE
    if kind in SPEC_ONLY:
        import importlib  # already loaded by the interpreter's start-up: free

        status: int = importlib.import_module(SPEC_ONLY[kind]).main(spec_path)
        return status
    from runner.spec import SpecError

    try:
        if kind == "job":
            from runner.job import run_job
            from runner.spec import load_job_spec
            from runner.trial import parse

            if rest == [PREFLIGHT_ARG]:
                from runner.preflight import run_preflight

                return run_preflight(load_job_spec(spec_path))

            try:
                trial = parse(rest)
            except ValueError as error:
                print(f"{USAGE_TEXT}\n{error}", file=sys.stderr)
                return USAGE
            spec = load_job_spec(spec_path)
            spec.trial = trial
            return run_job(spec)
        from runner.failure import run_failure
        from runner.spec import load_failure_spec

        return run_failure(load_failure_spec(spec_path), rest[0] if rest else "")
    except SpecError as error:
        print(f"vigil: bad spec {spec_path}: {error}", file=sys.stderr)
        return USAGE


def entry() -> None:
    """`python -I -c "from runner.__main__ import entry; entry()" KIND SPEC [ARGS]`."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entry()

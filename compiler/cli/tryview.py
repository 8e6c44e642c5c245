"""What `vigil try` and a canary apply show of each try: how the run ended, its output, the
messages the coordinator would send and the state it would change. The report goes to stdout;
`--json` prints the same as one JSON list."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from compiler.install.canary import CanaryStep
    from compiler.install.trial import Tried

OUTPUT_LINES = 60
"""The last lines of a run's output the report quotes (the journal has the rest)."""


def show_tries(tries: list[Tried], as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        print(json.dumps([t.as_json() for t in tries], indent=2, ensure_ascii=False), file=out)
        return
    for tried in tries:
        show_try(tried, out)


def try_headline(tried: Tried) -> str:
    what = "check of " if tried.mode == "check" else ""
    verdict = "passed" if tried.passed else "FAILED"
    line = f"{what}{tried.job}: {verdict}, exit status {tried.exit_code}"
    if tried.record and tried.record.get("result"):
        line += f", {tried.record['result']}"
    if tried.reason:
        line += f": {tried.reason}"
    return line


def show_try(tried: Tried, out: TextIO) -> None:
    print(f"== try {try_headline(tried)}", file=out)
    show_output(tried, out)
    if tried.mode == "check":
        return
    if not tried.findings:
        print("no findings: nothing would be delivered", file=out)
        return
    _show_deliveries(tried, out)


def show_output(tried: Tried, out: TextIO) -> None:
    lines = tried.output.rstrip("\n").splitlines()
    if not lines:
        return
    if len(lines) > OUTPUT_LINES:
        print(f"output (last {OUTPUT_LINES} of {len(lines)} lines):", file=out)
        lines = lines[-OUTPUT_LINES:]
    else:
        print("output:", file=out)
    for line in lines:
        print(f"  | {line}", file=out)


def _show_deliveries(tried: Tried, out: TextIO) -> None:
    print(f"{len(tried.findings)} finding(s); the coordinator would:", file=out)
    for message in tried.messages:
        urgent = " (urgent)" if message.get("urgent") else ""
        print(f"  send to {message.get('channel')} ({message.get('to')}){urgent}:", file=out)
        print(f"    title: {message.get('title')}", file=out)
        for line in str(message.get("body") or "").splitlines():
            print(f"    | {line}", file=out)
    if tried.held:
        print(f"  hold {tried.held} alert(s) until quiet hours end", file=out)
    if not tried.messages and not tried.held:
        print("  send nothing (no rule turns these findings into a message now)", file=out)
    if tried.state:
        print("state that would change (nothing was written):", file=out)
        for change in tried.state:
            print(f"  {change.action} state/{change.name}", file=out)
            for line in change.diff[2:]:  # the --- / +++ header repeats the name
                print(f"    {line}", file=out)


def show_canary_plan(steps: list[CanaryStep], err: TextIO | None = None) -> None:
    """What a canary apply does with each new or changed job (plan and apply print it)."""
    err = err or sys.stderr
    if not steps:
        print("canary: no job is new or changed; nothing to try", file=err)
        return
    for step in steps:
        print(f"canary: {step.mode:<5} {step.job} ({step.change.words()})", file=err)


def show_canary_try(tried: Tried, err: TextIO | None = None) -> None:
    """One try of a canary as it ends: a line when it passed, the whole report when not."""
    err = err or sys.stderr
    if tried.passed:
        print(f"canary: {try_headline(tried)}", file=err)
        return
    show_try(tried, err)

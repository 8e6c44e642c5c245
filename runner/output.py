"""A job's stdout contract: what it printed becomes findings, log text, or a contract error.

- `findings` (default): output starting with `{` or `[` must be one finding or a list of
  findings; empty output, `[]` and `{}` mean nothing to report; any other text is log.
- `log`: everything is log text for the journal.
- `message`: any non-empty output is one finding whose `message` is the text, stripped.
"""

from __future__ import annotations

import json

from runner.findings import finding_problem


class ContractError(Exception):
    """The output claimed to be findings (it started with `{` or `[`) but is not."""


class Report:
    """The findings to write (source/timestamp not yet filled in) and the log text to echo."""

    def __init__(self, findings: list[dict[str, object]], log: str) -> None:
        self.findings = findings
        self.log = log


def read_output(stdout: str, mode: str) -> Report:
    text = stdout.strip()
    if mode == "log" or not text:
        return Report([], stdout)
    if mode == "message":
        return Report([{"message": text}], "")
    if text[0] not in "{[":
        return Report([], stdout)
    return Report(_parse_findings(text), "")


def _parse_findings(text: str) -> list[dict[str, object]]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ContractError(
            f"stdout starts with {text[0]!r} but is not valid JSON ({error}); print one JSON "
            "object or a list of them, or text that does not start with '{' or '['"
        ) from None
    items = data if isinstance(data, list) else [data]
    findings: list[dict[str, object]] = []
    for index, item in enumerate(items):
        problem = finding_problem(item)
        if problem is not None:
            where = f"finding {index}" if isinstance(data, list) else "finding"
            raise ContractError(f"{where}: {problem}")
        assert isinstance(item, dict)
        if item:
            findings.append(item)
    return findings

"""The runner's exit codes and result words, decided here and nowhere else.

systemd sees the exit code (a non-zero code starts the `<name>-failure@` alert); runs.jsonl
records the result word next to it.

| code | result          | meaning                                                        |
| ---- | --------------- | -------------------------------------------------------------- |
| 0    | ok              | the run did its work (with or without findings)                |
| 1    | failed          | the command failed: non-zero exit, not startable, or stopped   |
| 2    | —               | bad spec or usage (nothing ran, nothing recorded)              |
| 3    | contract        | the command's output broke the stdout contract                 |
| 4    | timeout         | the command ran past `timeout`; its process group was killed   |
| 5    | skipped-after   | the `after:` predecessor did not succeed in this cycle         |
| 6    | api-error       | the model call failed, was refused or replied malformed twice  |
| 7    | budget          | a monthly budget is exhausted; the model was not called        |
| 8    | storage         | the state directory cannot be written (disk full, read-only    |
|      |                 | file system, no permission); nothing half-written is left      |
| 9    | missing-package | the interpreter lacks a package the job needs (`anthropic` for |
|      |                 | a prompt); nothing was run, the reason says how to install it  |
| 10   | after-running   | the `after:` predecessor was still running when this step's    |
|      |                 | wait (its timeout) ran out; the command did not run            |
| —    | missed          | a timer firing no run followed: recorded by the heartbeat, not |
|      |                 | by a run (nothing ran, so there is no exit code)               |
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
CONTRACT = 3
TIMEOUT = 4
SKIPPED_AFTER = 5
API_ERROR = 6
BUDGET = 7
STORAGE = 8
MISSING_PACKAGE = 9
AFTER_RUNNING = 10

MISSED = "missed"
"""The result word of a firing that produced no run (runner.missed): it has no exit code."""
OK_RESULT = "ok"
SKIPPED_AFTER_RESULT = "skipped-after"
AFTER_RUNNING_RESULT = "after-running"
SKIPPED_RESULTS = frozenset({SKIPPED_AFTER_RESULT, AFTER_RUNNING_RESULT})
"""The result words of a step that did not run its command, by design (its `after:`)."""

EXIT_CODE = {
    OK_RESULT: OK,
    "failed": FAILED,
    "contract": CONTRACT,
    "timeout": TIMEOUT,
    SKIPPED_AFTER_RESULT: SKIPPED_AFTER,
    "api-error": API_ERROR,
    "budget": BUDGET,
    "storage": STORAGE,
    "missing-package": MISSING_PACKAGE,
    AFTER_RUNNING_RESULT: AFTER_RUNNING,
}
"""Result word (as recorded in runs.jsonl) to exit code."""


def exit_code(result: str) -> int:
    return EXIT_CODE.get(result, FAILED)

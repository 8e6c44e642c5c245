"""The last lines a failed unit wrote to the journal, for the failure alert. journalctl missing,
failing or slow never stops the alert: it then carries one "journal unavailable" line."""

from __future__ import annotations

import subprocess

TIMEOUT = 10.0


def journal_command(scope: str, unit: str, invocation_id: str, lines: int) -> list[str]:
    command = ["journalctl", "--no-pager", "--quiet", "--output=cat", "-n", str(lines)]
    # No --user: it reads only per-user journal files, which root's user units and volatile
    # journals never write; the unit or invocation match is precise enough on its own.
    user = scope != "system"
    if invocation_id:
        # Exactly the failed run's lines, not the previous run's.
        command.append(f"_SYSTEMD_INVOCATION_ID={invocation_id}")
    else:
        command += ["--user-unit" if user else "--unit", unit]
    return command


def last_lines(scope: str, unit: str, invocation_id: str, lines: int) -> list[str]:
    if lines <= 0:
        return []
    found = _run(journal_command(scope, unit, invocation_id, lines), lines)
    if not found and invocation_id:
        # Not every journal records the invocation id for user units: ask by unit name.
        found = _run(journal_command(scope, unit, "", lines), lines)
    return found


def _run(command: list[str], lines: int) -> list[str]:
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return ["journal unavailable: journalctl not found"]
    except (OSError, subprocess.TimeoutExpired) as error:
        return [f"journal unavailable: {error}"]
    if result.returncode != 0:
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = why[-1] if why else f"journalctl exited with status {result.returncode}"
        return [f"journal unavailable: {detail}"]
    text = result.stdout.decode("utf-8", "replace")
    return text.splitlines()[-lines:]

"""What `vigil --help` and `vigil --version` say, for the entry point (cli/main.py) and the typer
app (cli/commands.py) alike: the description and every command's line, defined once."""

from __future__ import annotations

import textwrap

DESCRIPTION = (
    "Compile one YAML file into the systemd timers, path units and runners of an agent's "
    "background layer."
)

COMMANDS = {
    "validate": "Check configs: each job with its next runs, or every problem.",
    "compile": "Render units, runner scripts, job specs and the manifest.",
    "plan": "Dry run: what apply would create, update and delete, and why.",
    "apply": "Install the config: a new generation, changed units restarted.",
    "rollback": "Go back to an earlier generation (shown as a plan first).",
    "history": "List installed generations, or a job's runs.",
    "uninstall": "Stop and remove every unit a config installed.",
    "export": "Back up a config, its generations, state and history to one file.",
    "import": "Restore an export on this machine and install it.",
    "cost": "Estimated monthly cost per job beside this month's spend.",
    "status": "Every job, watch and the coordinator: last and next run.",
    "run": "Start a job now, through systemd.",
    "logs": "The journal of a job's units (journalctl underneath).",
    "try": "Run jobs now as their timers would; show what they deliver.",
    "enable": "Resume a job's timer without editing the config.",
    "disable": "Stop a job's timer without editing the config.",
    "doctor": "Check this machine and the installed setup.",
    "init": "Write a commented starter config and its schema.",
    "watches": "Every watch: its state, what it awaits, its deadline.",
    "ack": "Acknowledge a watch's alert: its repeats and escalation stop.",
    "snooze": "Quiet an item ([r7]) or a watch until a time.",
    "silence": "Hold back matching alerts for a while: add, list, expire.",
    "inbox": "Findings waiting in the inbox, files rejected, alerts silenced.",
    "outbox": "Messages queued, retrying, being sent or dead-lettered.",
    "state": "Nag items: how often each was nagged, and what comes next.",
    "timeline": "What runs when this week, and what ran: a picture per job.",
    "report": "Write the status page: one self-contained HTML file.",
    "serve": "Serve the status page live on 127.0.0.1.",
    "schema": "Print the JSON Schema of the config language.",
    "explain": "Say a schedule in plain words, with its next runs.",
    "watch": "Arm file watches by hand (an agent hands off a task).",
}
"""Every command's one line in `vigil --help`, in its order; the typer app takes them too."""

VERSION_HELP = "Print the version."


def top_help() -> str:
    """`vigil --help`, laid out as click lays out the typer app's."""
    width = max(len(name) for name in COMMANDS)
    lines = [
        "Usage: vigil [OPTIONS] COMMAND [ARGS]...",
        "",
        *textwrap.wrap(DESCRIPTION, 78, initial_indent="  ", subsequent_indent="  "),
        "",
        "Options:",
        f"  --version   {VERSION_HELP}",
        "  -h, --help  Show this message and exit.",
        "",
        "Commands:",
        *(f"  {name:<{width}}  {summary}" for name, summary in COMMANDS.items()),
    ]
    return "\n".join(lines)


def version() -> str:
    from compiler import __version__

    return f"vigil {__version__}"

"""`python -m compiler.cli`: the `vigil` command, for units that run it with their interpreter
(the automatic rollback) rather than through a script on PATH."""

from compiler.cli.main import main

main()

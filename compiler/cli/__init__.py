"""The `vigil` command: options onto core calls, exit codes, and everything it prints."""

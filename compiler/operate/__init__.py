"""Installed setups in use: run, logs, enable/disable, status, doctor, watches, state, cost."""

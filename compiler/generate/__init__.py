"""Model to generated tree: units, runner scripts, job specs, manifest; nothing is installed."""

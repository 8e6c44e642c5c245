"""vigil's runner: what the generated units execute. Stdlib-only on its hot path."""

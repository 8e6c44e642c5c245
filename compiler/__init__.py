"""vigil's compiler: from one YAML file to systemd units, runner scripts and job specs."""

__version__ = "0.1.0"

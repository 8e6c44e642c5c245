"""What a config says: the YAML loader, the pydantic model, validation and schedules."""

"""Rules turn findings into alerts: nag ladders, once-per-period mentions, and plain messages."""

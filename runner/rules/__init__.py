"""Rules turn findings into alerts: nag ladders, once-per-period mentions, and plain messages.

The rule modules are imported only by a coordinator run that has findings or watch state to
update (the names of their state files are in runner.contract, so an idle run can look
without them).
"""

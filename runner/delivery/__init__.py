"""Delivery: the outbox of queued messages, the channels that send them, the ledger of sent ones."""

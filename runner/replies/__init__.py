"""Reply sources: `python -m runner reply SPEC`, a long-running service per entry of `replies:`.

Each turns what the person writes (to a Telegram bot, a Signal account, an agent that prints
JSON lines) into a control finding of kind `reply` in the inbox, and never reads the text: the
coordinator does. Messages from chats or numbers not listed are counted in
state/reply-<name>.json and logged without their text, never written to the inbox.

Exactly once, with the coordinator's help: a reply's finding is renamed into the inbox under a
name fixed by its id *before* the source's offset (a Telegram update id, a signal-cli envelope
timestamp) is stored. A service killed between the two reads the message again and writes the
same id again (replacing the file if it is still there); the coordinator drops a reply id it
applied before. A `command` source has no offset: its program must not print a line twice.

Stdlib only: the service runs for weeks on what the interpreter brings.
"""

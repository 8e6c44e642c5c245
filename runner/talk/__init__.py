"""The person answering back: reference codes in messages, replies, snoozes and silences."""

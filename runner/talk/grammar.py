"""What a reply says: `done r7`, `ack r7`, `snooze r7 2h`, `snooze r7 tomorrow 9:00`, `stop r7`,
`mute reminders 3h`, `unmute reminders`, `status`, `help`. Several codes may follow one verb
(`done r7 r9`); case, brackets and a trailing full stop do not matter."""

from __future__ import annotations

from enum import StrEnum

from runner.talk.refs import normal


class Verb(StrEnum):
    DONE = "done"
    """The item is dealt with: a nag item is not nagged again, a watch stops repeating."""
    SNOOZE = "snooze"
    """Not a word about the item until then; then it is said again."""
    STOP = "stop"
    """Never nag about this item again."""
    MUTE = "mute"
    """A silence on a source, job, watch or nag rule for a while."""
    UNMUTE = "unmute"
    """End the silences `mute` made on it."""
    STATUS = "status"
    """What is open."""
    HELP = "help"
    """What vigil understands."""


SYNONYMS = {
    "done": Verb.DONE,
    "ack": Verb.DONE,
    "ok": Verb.DONE,
    "resolve": Verb.DONE,
    "resolved": Verb.DONE,
    "snooze": Verb.SNOOZE,
    "later": Verb.SNOOZE,
    "stop": Verb.STOP,
    "never": Verb.STOP,
    "mute": Verb.MUTE,
    "silence": Verb.MUTE,
    "unmute": Verb.UNMUTE,
    "status": Verb.STATUS,
    "open": Verb.STATUS,
    "list": Verb.STATUS,
    "help": Verb.HELP,
    "?": Verb.HELP,
}
USAGE = "done r7 · snooze r7 2h · snooze r7 tomorrow 9:00 · stop r7 · mute reminders 3h · status"


class Command:
    __slots__ = ("codes", "target", "verb", "when")

    def __init__(
        self, verb: Verb, codes: list[str], target: str | None = None, when: str = ""
    ) -> None:
        self.verb = verb
        self.codes = codes
        self.target = target
        """What `mute`/`unmute` name."""
        self.when = when
        """Until when (`snooze`, `mute`), as written; runner.talk.when reads it."""


class Misunderstood(ValueError):
    """What was understood and what not, in one short line for the answer."""


def parse(text: str) -> Command:
    words = text.strip().rstrip(".!").split()
    if not words:
        raise Misunderstood(f"an empty reply: nothing done. Say {USAGE}")
    verb = SYNONYMS.get(words[0].lower())
    if verb is None and len(words) >= 2 and normal(words[0]):  # "r7 done"
        verb = SYNONYMS.get(words[1].lower())
        words = [words[1], words[0], *words[2:]]
    if verb is None:
        raise Misunderstood(f"{_quoted(words[0])} is not something vigil does. Say {USAGE}")
    rest = words[1:]
    if verb in (Verb.STATUS, Verb.HELP):
        return Command(verb, [])
    if verb in (Verb.MUTE, Verb.UNMUTE):
        if not rest:
            raise Misunderstood(f"{verb} what? Say {verb} reminders 3h")
        when = " ".join(rest[1:])
        if verb == Verb.MUTE and not when:
            raise Misunderstood(f"mute {rest[0]} for how long? Say mute {rest[0]} 3h")
        return Command(verb, [], target=rest[0], when=when)
    return _on_items(verb, rest)


def _on_items(verb: Verb, rest: list[str]) -> Command:
    """`done r7 r9`, `stop r7`, `snooze r7 WHEN`."""
    codes = []
    while rest and normal(rest[0]):
        codes.append(str(normal(rest.pop(0))))
    if not codes:
        said = f" ({_quoted(rest[0])} is no code)" if rest else ""
        raise Misunderstood(f"{verb} which item{said}? Say {verb} r7, with the code in [ ]")
    when = " ".join(rest)
    if verb == Verb.SNOOZE and not when:
        raise Misunderstood(f"snooze {' '.join(codes)} until when? Say snooze {codes[0]} 2h")
    if verb != Verb.SNOOZE and when:
        raise Misunderstood(
            f"understood {verb} {' '.join(codes)}, not {_quoted(when)}: nothing done"
        )
    return Command(verb, codes, when=when)


def _quoted(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))

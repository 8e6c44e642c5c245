"""What each state file looks like, checked with stdlib code: the version this runner writes and
reads, and the shape of its entries. An entry of another shape is dropped from what the run
uses (runner.statefile keeps the whole file aside); a file of another version is not read.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable

    Entry = Callable[[object], str | None]
    """Why one entry is not of the expected shape, or None."""

NAG_STATUSES = ("active", "stopped", "resolved")


class Shape:
    """One kind of state file: its version, its entries under `entries` (a map or a list) and
    what a reset costs the user, for the alert."""

    __slots__ = ("entries", "entry", "kept", "listed", "reset", "reset_when_unreadable", "version")

    def __init__(
        self,
        entries: str | None,
        entry: Entry,
        reset: str,
        *,
        version: int | None = 1,
        listed: bool = False,
        reset_when_unreadable: bool = False,
    ) -> None:
        self.entries = entries
        """The key holding the entries; None: the file is a map of entries itself."""
        self.entry = entry
        self.version = version
        """None: the file has no `version` (its keys are all entries)."""
        self.reset = reset
        self.kept = "the entries of a known shape are kept"
        self.reset_when_unreadable = reset_when_unreadable
        self.listed = listed
        """The entries are a list (else a map by key)."""

    def empty(self) -> dict[str, object] | list[object]:
        return [] if self.listed else {}

    def check(self, data: object) -> tuple[str | None, dict[str, object] | None]:
        """(problem, what is usable): (None, data) when all is well; usable None when nothing
        of the file can be read."""
        if not isinstance(data, dict):
            return "is not a JSON object", None
        version = data.get("version") if self.version is not None else None
        if version is not None and version != self.version:
            return f"is version {version!r}; this vigil reads version {self.version}", None
        container = data if self.entries is None else data.get(self.entries, self.empty())
        if type(container) is not type(self.empty()):
            return f"has `{self.entries}` of another shape", None
        if isinstance(container, dict):
            problems = {k: self.entry(v) for k, v in container.items()}
            bad = {k: why for k, why in problems.items() if why is not None}
            good: dict[str, object] | list[object] = {
                k: v for k, v in container.items() if k not in bad
            }
        else:
            listed = [(item, self.entry(item)) for item in container]
            bad = {str(n): why for n, (_, why) in enumerate(listed) if why is not None}
            good = [item for item, why in listed if why is None]
        if not bad:
            return None, data
        first, why = next(iter(bad.items()))
        entries = "1 entry" if len(bad) == 1 else f"{len(bad)} entries"
        problem = f"has {entries} of another shape ({first}: {why})"
        if self.entries is None:
            assert isinstance(good, dict)  # a file that is a map of entries
            return problem, dict(good)
        return problem, {**data, self.entries: good}


def _fields(value: object, **kinds: tuple[type, ...]) -> str | None:
    """Why `value` is not an object whose present fields have these types."""
    if not isinstance(value, dict):
        return "not an object"
    for field, types in kinds.items():
        present = value.get(field)
        if present is not None and (
            not isinstance(present, types) or (isinstance(present, bool) and bool not in types)
        ):
            return f"`{field}` is {type(present).__name__}"
    return None


def _required(value: object, *fields: str) -> str | None:
    assert isinstance(value, dict)
    missing = [field for field in fields if value.get(field) is None]
    return f"no `{missing[0]}`" if missing else None


class WholeShape(Shape):
    """A file whose every entry counts, such as the spend ledger: one entry of another shape
    sets the whole file aside (then counted again from elsewhere), never just that entry;
    `more` checks further maps of entries beside the main one."""

    __slots__ = ("more",)

    def __init__(self, entries: str, entry: Entry, reset: str, more: dict[str, Entry]) -> None:
        super().__init__(entries, entry, reset)
        self.more = more

    def check(self, data: object) -> tuple[str | None, dict[str, object] | None]:
        problem, usable = super().check(data)
        if problem is None and isinstance(data, dict):
            for key, entry in self.more.items():
                problem = _map_problem(key, data.get(key, {}), entry)
                if problem is not None:
                    break
        return (None, usable) if problem is None else (problem, None)


def _map_problem(key: str, entries: object, entry: Entry) -> str | None:
    if not isinstance(entries, dict):
        return f"has `{key}` of another shape"
    for name, value in entries.items():
        why = entry(value)
        if why is not None:
            return f"has an entry of another shape in `{key}` ({name}: {why})"
    return None


def nag_item(value: object) -> str | None:
    problem = _fields(
        value,
        firstSeen=(str,),
        lastSeen=(str,),
        lastNagged=(str,),
        resolvedAt=(str,),
        nagCount=(int,),
        status=(str,),
        fields=(dict,),
        waitingSince=(str,),
    )
    if problem is None and isinstance(value, dict) and value.get("status") not in NAG_STATUSES:
        return f"`status` is not one of {', '.join(NAG_STATUSES)}"
    return problem


def watch_instance(value: object) -> str | None:
    problem = _fields(
        value,
        state=(str,),
        at=(str,),
        armedAt=(str,),
        deadline=(str,),
        lastAlert=(str,),
        escalated=(str,),
        path=(str,),
        alerts=(int,),
        within=(int,),
        history=(list,),
        messages=(dict,),
        handoff=(dict,),
    )
    state = value.get("state") if isinstance(value, dict) else None
    if problem is None and state is not None:
        from runner.rules.watchstate import WatchState, known  # read with watch instances only

        if known(state) is None:
            return f"`state` {state!r} is not one of {', '.join(WatchState)}"
    return problem


def held_alert(value: object) -> str | None:
    problem = _fields(
        value,
        text=(str,),
        source=(str,),
        key=(str,),
        priority=(int,),
        urgent=(bool,),
        to=(list,),  # of channel names: checked below
        evidence=(dict,),
        heldSince=(str,),
        subject=(str,),
        waiting=(str,),
        ref=(str,),
        by=(str,),
    )
    if problem is None and isinstance(value, dict):
        to = value.get("to") or []
        if not all(isinstance(channel, str) for channel in to):
            return "`to` is not a list of channel names"
        return _required(value, "text", "source")
    return problem


def source_seen(value: object) -> str | None:
    return _fields(value, lastSeen=(str,), count=(int,))


def spend(value: object) -> str | None:
    problem = _fields(value, tokens=(int,), usd=(int, float), calls=(int,), notes=(list,))
    return problem or _required(value, "tokens", "usd")


def reservation(value: object) -> str | None:
    problem = _fields(
        value, job=(str,), tokens=(int,), usd=(int, float), calls=(int,), pid=(int,), until=(str,)
    )
    return problem or _required(value, "job", "tokens", "usd", "until")


def delivery(value: object) -> str | None:
    return _fields(
        value, at=(str,), channel=(str,), exit_status=(int,), named=(list,), keys=(list,)
    )


def firings_checked(value: object) -> str | None:
    problem = _fields(value, through=(str,))
    return problem or _required(value, "through")


def job_pause(value: object) -> str | None:
    problem = _fields(value, paused=(dict,), unrecorded=(list,), resumed=(str,))
    if problem is not None or not isinstance(value, dict):
        return problem
    paused = value.get("paused")
    if paused is not None:
        why = _fields(paused, since=(str,), failures=(int,), reason=(str,))
        if why is not None:
            return f"`paused`: {why}"
        why = _required(paused, "since", "failures")
        if why is not None:
            return f"`paused`: {why}"
    if not all(isinstance(moment, str) for moment in value.get("unrecorded") or []):
        return "`unrecorded` is not a list of times"
    return None


def claim_attempts(value: object) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "not a count"


def preflight(value: object) -> str | None:
    problem = _fields(value, since=(str,), reason=(str,), due=(str,))
    return problem or _required(value, "since", "reason")


def ref_entry(value: object) -> str | None:
    problem = _fields(
        value,
        subject=(str,),
        opened=(str,),
        told=(str,),
        text=(str,),
        alert=(dict,),
        closed=(str,),
        why=(str,),
        snoozed=(str,),
        acked=(str,),
        repeats=(int,),
        seen=(str,),
    )
    if problem is None and isinstance(value, dict) and value.get("alert") is not None:
        why = held_alert(value["alert"])
        if why is not None:
            return f"`alert`: {why}"
    return problem or _required(value, "subject")


def flap_record(value: object) -> str | None:
    problem = _fields(value, changes=(list,), open=(bool,), flapping=(bool,), within=(int,))
    changes = value.get("changes") if isinstance(value, dict) else None
    if problem is None and not all(isinstance(change, str) for change in changes or []):
        return "`changes` is not a list of times"
    return problem


def silence(value: object) -> str | None:
    problem = _fields(
        value,
        id=(str,),
        matchers=(dict,),
        starts=(str,),
        ends=(str,),
        comment=(str,),
        by=(str,),
        created=(str,),
        expired=(str,),
        matched=(int,),
        target=(str,),
        reply=(str,),
    )
    if problem is not None or not isinstance(value, dict):
        return problem
    matchers = value.get("matchers") or {}
    if not matchers or not all(
        isinstance(globs, list) and all(isinstance(g, str) for g in globs)
        for globs in matchers.values()
    ):
        return "`matchers` is not a map of field -> list of patterns"
    return _required(value, "id", "ends")


def silenced_entry(value: object) -> str | None:
    problem = _fields(
        value, at=(str,), text=(str,), source=(str,), key=(str,), by=(str,), action=(str,)
    )
    return problem or _required(value, "at", "by", "action")


def reply_id(value: object) -> str | None:
    return None if isinstance(value, str) else "not a reply id"


NAG = Shape("items", nag_item, "every item's nag count starts again")
WATCH = Shape("instances", watch_instance, "the watch starts again with no instances")
HELD = Shape(
    "alerts", held_alert, "the alerts it held are not delivered (see the file)", listed=True
)
SOURCES = Shape(None, source_seen, "when each source last reported is forgotten", version=None)
LEDGER = Shape(
    "delivered",
    delivery,
    "messages delivered before may go out once more",
    reset_when_unreadable=True,
)
CLAIMS = Shape(
    "attempts", claim_attempts, "claims left behind are counted afresh", reset_when_unreadable=True
)
FIRINGS = Shape(
    "jobs",
    firings_checked,
    "each job's firings are compared with its runs again from its timer's start (a firing "
    "already recorded as missed is not recorded or alerted twice)",
)
PAUSES = Shape(
    "jobs",
    job_pause,
    "the jobs it paused are no longer known to be paused (`vigil apply` starts their timers "
    "again) and their failures in a row are counted afresh",
)
SPEND = WholeShape(
    "jobs",
    spend,
    "this month's spend is counted again from runs.jsonl, which keeps only the latest runs: "
    "spend may be undercounted",
    {"reservations": reservation},
)


class RefsShape(Shape):
    """state/refs.json: its codes (`r7` -> entry) and the items' flapping records beside."""

    __slots__ = ()

    def check(self, data: object) -> tuple[str | None, dict[str, object] | None]:
        problem, usable = super().check(data)
        if usable is None:
            return problem, None
        codes = usable.get("refs")
        if isinstance(codes, dict):
            odd = [code for code in codes if not _is_code(code)]
            if odd:
                problem = problem or f"has a code of another shape ({odd[0]!r})"
                usable = {**usable, "refs": {c: e for c, e in codes.items() if c not in odd}}
        muted = usable.get("muted", [])
        if not isinstance(muted, list) or not all(isinstance(m, str) for m in muted):
            problem = problem or "has `muted` of another shape"
            usable = {**usable, "muted": []}
        flaps = usable.get("flaps", {})
        why = _map_problem("flaps", flaps, flap_record)
        if why is not None:
            problem = problem or why
            kept = (
                {k: v for k, v in flaps.items() if flap_record(v) is None}
                if isinstance(flaps, dict)
                else {}
            )
            usable = {**usable, "flaps": kept}
        return problem, usable


def _is_code(text: str) -> bool:
    return len(text) > 1 and text[0] == "r" and text[1:].isdigit() and text[1] != "0"


REFS = RefsShape("refs", ref_entry, "the codes of open items are given out afresh")
SILENCES = Shape(
    "silences", silence, "the silences it held end: `vigil silence add` them again", listed=True
)
SILENCED = Shape(
    "entries", silenced_entry, "the record of what was held back starts again", listed=True
)
REPLIES = Shape(
    "applied", reply_id, "a reply written twice after a crash may be applied twice", listed=True
)
PREFLIGHT = Shape(
    "failing", preflight, "a failing preflight is alerted once more, a recovery may go unsaid"
)

"""Safe YAML loading that remembers where every value came from.

The file is parsed twice by PyYAML (libyaml when available). A first pass over the event
stream bounds nesting depth and alias expansion before anything recursive runs: libyaml's
composer recurses in C and crashes the interpreter on a few tens of thousands of nested
brackets. The second pass composes the node graph, which is turned into plain Python values
here, never by PyYAML's constructors, recording a (line, column) mark for every path.

Plain scalars resolve as in the YAML 1.2 core schema: ``yes``/``on``/``no`` stay strings,
``3:00`` and ``2026-01-01`` stay strings. Keys are the scalar's text as written (``1:`` is
the key ``"1"``). Aliased and merged values carry the marks of the anchored definition.
"""

from __future__ import annotations

import codecs
import gc
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    NodeEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from compiler.errors import ConfigError, ConfigIssue, VigilError

Path_ = tuple[str | int, ...]
Mark_ = tuple[int, int]

# A 10,000-job config is about 200k values; anything far beyond is hostile or a mistake.
MAX_VALUES = 1_000_000
# Real configs nest a handful of levels; the bound keeps every later recursion shallow.
MAX_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + n for n in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"

_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

# YAML 1.2 core schema, checked in this order; anything else is a string.
_IMPLICIT = [
    (BOOL, r"(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
    (NULL, r"(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
    (INT, rf"(?:{_INT_RE.pattern})\Z", "-+0123456789"),
    (FLOAT, rf"(?:{_FLOAT_RE.pattern})\Z", "-+.0123456789"),
    (MERGE, r"<<\Z", "<"),
]

# Surrogates, C0/C1 controls (bar tab and line breaks), U+FFFE/U+FFFF: YAML forbids them.
_NON_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_PLAIN_KEY = re.compile(r'[^.\[\]"\s]+')
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Parser(Protocol):
    def check_event(self, *choices: type[Event]) -> bool: ...
    def get_event(self) -> Event: ...
    def get_single_node(self) -> Node | None: ...
    def dispose(self) -> None: ...


def _loader_class(libyaml: bool) -> Callable[[str], _Parser]:
    base: type[Any] = yaml.CSafeLoader if libyaml else yaml.SafeLoader
    # An empty table of our own: add_implicit_resolver would otherwise extend YAML 1.1's.
    cls: type[Any] = type("VigilLoader", (base,), {"yaml_implicit_resolvers": {}})
    for tag, pattern, first in _IMPLICIT:
        cls.add_implicit_resolver(tag, re.compile(pattern), list(first))
    return cls


_new_parser = _loader_class(yaml.__with_libyaml__)
_python_parser = _loader_class(False)

# What libyaml reports when it meets a limit of its own rather than a syntax error.
_PARSER_LIMITS = ("maximum nesting depth",)


@dataclass
class Document:
    """A loaded config: plain data plus the source position of every value and key."""

    filename: str
    data: dict[str, Any]
    value_marks: dict[Path_, Mark_]
    key_marks: dict[Path_, Mark_]

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Mark_:
        """Mark of the key (if asked and known) or the value at path, else its nearest ancestor."""
        full = tuple(path)
        if key and full in self.key_marks:
            return self.key_marks[full]
        for end in range(len(full), -1, -1):
            mark = self.value_marks.get(full[:end])
            if mark is not None:
                return mark
        return (1, 1)

    def issue(self, path: Sequence[str | int], message: str, *, key: bool = False) -> ConfigIssue:
        line, column = self.locate(path, key=key)
        return ConfigIssue(self.filename, line, column, format_path(path), message)


def format_path(path: Sequence[str | int]) -> str:
    """("jobs", "a", "schedule", 0) -> "jobs.a.schedule[0]"; odd keys are quoted: jobs["a.b"]."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append('["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]')
    return "".join(out)


def load_file(path: str | os.PathLike[str]) -> Document:
    """Load a config file. An unreadable file is a VigilError (exit 1), not invalid input."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise VigilError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    return load_text(raw, name)


def load_text(text: str | bytes, filename: str) -> Document:
    """Load one YAML document whose top level is a mapping; raises ConfigError on any problem."""
    source = _decode(text, filename)
    with _gc_paused():
        return _load(source, filename)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Composing allocates ~10^5 acyclic objects; the collector's passes would double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(source: str, filename: str) -> Document:
    root = _compose(source, filename)
    if root is None or (isinstance(root, ScalarNode) and root.tag == NULL and root.value == ""):
        message = "file is empty; expected a mapping with at least `name:`"
        raise ConfigError([_issue(filename, (1, 1), message)])
    if not isinstance(root, MappingNode):
        message = f"top level must be a mapping, got {_describe(root)}"
        raise ConfigError([_issue(filename, _mark(root), message)])
    builder = _Builder(filename)
    data = builder.build(root, ())
    if builder.issues:
        raise ConfigError(builder.issues)
    return Document(filename, data, builder.value_marks, builder.key_marks)


def _issue(filename: str, mark: Mark_, message: str, field: str = "") -> ConfigIssue:
    return ConfigIssue(filename, mark[0], mark[1], field, message)


def _mark(node: Node) -> Mark_:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _position(text: str, index: int) -> Mark_:
    """1-based line and column of text[index], counting line breaks the way YAML does."""
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


# --- decoding -------------------------------------------------------------------------------


def _decode(raw: str | bytes, filename: str) -> str:
    if isinstance(raw, bytes):
        body = raw.removeprefix(codecs.BOM_UTF8)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = body[: exc.start].decode("utf-8", errors="replace")
            message = f"file is not valid UTF-8 (byte 0x{body[exc.start]:02x})"
            raise ConfigError([_issue(filename, _position(prefix, len(prefix)), message)]) from None
    else:
        text = raw.removeprefix("\ufeff")
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        code = ord(bad.group())
        if code == 0:
            message = "file contains a NUL byte (is it a binary file?)"
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            message = f"control character U+{code:04X} is not allowed"
        else:
            message = f"character U+{code:04X} is not allowed in YAML"
        raise ConfigError([_issue(filename, _position(text, bad.start()), message)])
    return text


# --- parsing --------------------------------------------------------------------------------


class _Rejected(Exception):
    """Raised by the event scan; carries the position and message of the problem."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark: Mark_ = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.message = message


def _compose(source: str, filename: str) -> Node | None:
    try:
        _scan(source)
        parser = _new_parser(source)
        try:
            return parser.get_single_node()
        finally:
            parser.dispose()
    except _Rejected as exc:
        issue = _issue(filename, exc.mark, exc.message)
    except yaml.MarkedYAMLError as exc:
        issue = _syntax_issue(exc, source, filename)
    except (yaml.YAMLError, RecursionError) as exc:
        # Unmarked reader errors; recursion is bounded by _scan, this is a last resort.
        issue = _issue(filename, (1, 1), f"cannot parse YAML: {exc}")
    raise ConfigError([issue])


def _scan(source: str) -> None:
    """Reject deep nesting, alias bombs, bad anchors and extra documents from the event stream.

    Newer libyaml builds enforce limits of their own (PyYAML 6.0.4's stops at 1,000 levels of
    nesting) and can meet them before vigil's lower limit: looking ahead for a `key:` in
    `[[[[...`, its scanner reads far past the 101st bracket. Then the pure-Python parser, which
    looks ahead no further than a key may reach, scans again and finds vigil's limit where it is.
    """
    try:
        _scan_with(_new_parser, source)
    except yaml.MarkedYAMLError as exc:
        if _new_parser is _python_parser or not _parser_limit(exc):
            raise
        _scan_with(_python_parser, source)
        raise


def _parser_limit(exc: yaml.MarkedYAMLError) -> bool:
    return any(fragment in (exc.problem or "") for fragment in _PARSER_LIMITS)


def _scan_with(new_parser: Callable[[str], _Parser], source: str) -> None:
    parser = new_parser(source)
    try:
        scan = _Scan()
        while parser.check_event():
            scan.feed(parser.get_event())
    except ValueError:
        # PyYAML's own parser (used without libyaml) fails in chr() on an escape beyond
        # U+10FFFF ("\U00110000"), where libyaml reports this syntax error.
        mark = getattr(parser, "get_mark", lambda: None)()
        raise _Rejected(mark, "found invalid Unicode character escape code") from None
    finally:
        parser.dispose()


class _Scan:
    """Counts values as if every alias were expanded, in time linear in the text.

    Values are counted in document order, so a finished node's expanded size is the growth
    of the running total since it started; an alias then costs one addition.
    """

    def __init__(self) -> None:
        self.defined: dict[str, Any] = {}  # anchor -> mark of its definition
        self.sizes: dict[str, int] = {}  # anchor -> expanded size of its finished node
        self.open: list[tuple[str | None, int]] = []  # (anchor, total before it) per collection
        self.expanded = self.written = self.documents = 0

    def feed(self, event: Event) -> None:
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Rejected(event.start_mark, "only one YAML document is allowed per file")
        elif isinstance(event, CollectionEndEvent):
            anchor, before = self.open.pop()
            if anchor is not None:
                self.sizes[anchor] = self.expanded - before
        elif isinstance(event, AliasEvent):
            self.count(event, self.alias_size(event))
        elif isinstance(event, NodeEvent):
            self.define(event)
            self.written += 1
            self.count(event, 1)
            if isinstance(event, CollectionStartEvent):
                if len(self.open) >= MAX_DEPTH:
                    raise _Rejected(event.start_mark, f"nesting is deeper than {MAX_DEPTH} levels")
                self.open.append((event.anchor, self.expanded - 1))
            elif event.anchor is not None:
                self.sizes[event.anchor] = 1

    def count(self, event: Event, size: int) -> None:
        self.expanded += size
        if self.written > MAX_VALUES:
            raise _Rejected(event.start_mark, f"document has more than {MAX_VALUES} values")
        if self.expanded > MAX_VALUES:
            message = f"document expands to more than {MAX_VALUES} values through aliases"
            raise _Rejected(event.start_mark, message + " (alias bomb?)")

    def define(self, event: NodeEvent) -> None:
        name = event.anchor
        if name is None:
            return
        first = self.defined.get(name)
        if first is not None:
            message = f"anchor '&{name}' is already defined at line {first.line + 1}"
            raise _Rejected(event.start_mark, message)
        self.defined[name] = event.start_mark

    def alias_size(self, event: AliasEvent) -> int:
        name = event.anchor or ""
        if name not in self.defined:
            raise _Rejected(event.start_mark, f"alias '*{name}' refers to an undefined anchor")
        if name not in self.sizes:
            # Defined but not finished: the alias sits inside its own anchor.
            message = f"alias '*{name}' refers to a node that contains it"
            raise _Rejected(event.start_mark, message)
        return self.sizes[name]


_REWRITES = [
    ("maximum nesting depth", "nesting is deeper than the YAML parser allows"),
    ("mapping values are not allowed", "mapping values are not allowed here (quote the value)"),
    ("unknown escape", "unknown escape sequence in a double-quoted string"),
    ("<document start>", "unexpected content after the document (check the indentation)"),
    ("did not find expected key", "expected a `key: value` entry here (check the indentation)"),
    ("expected '-' indicator", "expected a `- ` list item here (check the indentation)"),
]


def _syntax_issue(exc: yaml.MarkedYAMLError, source: str, filename: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    where = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return _issue(filename, where, _syntax_message(exc, source, where))


def _syntax_message(exc: yaml.MarkedYAMLError, source: str, where: Mark_) -> str:
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    lines = _LINE_BREAK.split(source)
    line = lines[where[0] - 1] if where[0] <= len(lines) else ""
    char = line[where[1] - 1] if where[1] - 1 < len(line) else ""
    if char == "\t" or "tab character" in problem:
        if line[: where[1] - 1].strip(" \t") == "":
            return "tab characters cannot be used for indentation; use spaces"
        return "a tab character is not allowed here; use spaces"
    if "cannot start any token" in problem and char:
        return f"found character {char!r} that cannot start any token (quote the value)"
    for fragment, message in _REWRITES:
        if fragment in problem:
            return message
    context = exc.context_mark
    if exc.context and context is not None and context.line + 1 != where[0]:
        return f"{problem} ({exc.context} started at line {context.line + 1})"
    return problem


# --- building -------------------------------------------------------------------------------

_SCALARS: dict[str, Callable[[str], Any]] = {}
_INVALID = object()  # a scalar that was reported as invalid


class _TooLong(ValueError):
    pass


def _scalar(tag: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    def register(convert: Callable[[str], Any]) -> Callable[[str], Any]:
        _SCALARS[tag] = convert
        return convert

    return register


@_scalar(STR)
def _to_str(text: str) -> str:
    return text


@_scalar(INT)
def _to_int(text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    if text.startswith(("0x", "0o")):
        return int(text[2:], 16 if text[1] == "x" else 8)
    try:
        return int(text, 10)
    except ValueError:  # Python refuses to parse thousands of digits
        raise _TooLong(text) from None


@_scalar(FLOAT)
def _to_float(text: str) -> float:
    if not _FLOAT_RE.fullmatch(text):
        raise ValueError(text)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    return float("nan") if lowered == ".nan" else float(text)


@_scalar(BOOL)
def _to_bool(text: str) -> bool:
    return _BOOLS[text]  # KeyError for anything but the six spellings


@_scalar(NULL)
def _to_null(text: str) -> None:
    if text not in _NULLS:
        raise ValueError(text)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    names = {STR: "a string", INT: "an integer", FLOAT: "a number", BOOL: "a boolean"}
    return names.get(node.tag, "null" if node.tag == NULL else "a scalar")


class _Builder:
    """Turns a composed node graph into plain values, collecting every issue it meets."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.value_marks: dict[Path_, Mark_] = {}
        self.key_marks: dict[Path_, Mark_] = {}
        self.issues: list[ConfigIssue] = []
        self._reported: set[tuple[Mark_, str]] = set()

    def error(self, node: Node, path: Path_, message: str) -> None:
        # Aliased nodes are built once per reference; report each problem once.
        mark = _mark(node)
        if (mark, message) not in self._reported:
            self._reported.add((mark, message))
            self.issues.append(_issue(self.filename, mark, message, format_path(path)))

    def build(self, node: Node, path: Path_) -> Any:
        self.value_marks[path] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            self.check_tag(node, SEQ, path)
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        self.check_tag(node, MAP, path)
        return self.mapping(node, path)

    def check_tag(self, node: Node, expected: str, path: Path_) -> None:
        if node.tag == expected:
            return
        if node.tag in _SCALARS or node.tag in (MAP, SEQ):
            kind = "a list" if expected == SEQ else "a mapping"
            self.error(node, path, f"tag '{_short_tag(node.tag)}' cannot be used on {kind}")
        else:
            self.error(node, path, f"tag '{_short_tag(node.tag)}' is not allowed")

    def scalar(self, node: ScalarNode, path: Path_) -> Any:
        if node.tag == MERGE:
            return node.value  # a plain `<<` outside key position is just text
        value = self.convert(node, path)
        return None if value is _INVALID else value

    def convert(self, node: ScalarNode, path: Path_) -> Any:
        if not node.value.isprintable() and _SURROGATE.search(node.value):
            # libyaml refuses a "\ud800" escape; PyYAML's own parser lets the lone surrogate
            # through, and no generated file could hold it (it has no UTF-8 form).
            self.error(node, path, "found invalid Unicode character escape code")
            return _INVALID
        convert = _SCALARS.get(node.tag)
        if convert is None:
            kind = "cannot be used on a scalar" if node.tag in (MAP, SEQ) else "is not allowed"
            self.error(node, path, f"tag '{_short_tag(node.tag)}' {kind}")
            return _INVALID
        try:
            return convert(node.value)
        except _TooLong:
            self.error(node, path, "integer has too many digits")
            return _INVALID
        except (ValueError, KeyError):
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self.error(node, path, f"{shown!r} is not a valid {_short_tag(node.tag)}")
            return _INVALID

    def key(self, node: Node, path: Path_) -> str | None:
        """Keys are the scalar's text as written, whatever it resolves to."""
        if not isinstance(node, ScalarNode):
            self.error(node, path, f"keys must be plain scalars, got {_describe(node)}")
            return None
        if self.convert(node, path) is _INVALID:
            return None
        return str(node.value)

    def mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        explicit: dict[str, tuple[Node, Node]] = {}
        sources: list[MappingNode] = []
        merge_mark: Mark_ | None = None
        for key_node, value_node in node.value:
            if key_node.tag == MERGE and isinstance(key_node, ScalarNode):
                if merge_mark is not None:
                    self.duplicate(key_node, "<<", merge_mark, path)
                    continue
                merge_mark = _mark(key_node)
                sources.extend(self.merge_sources(value_node, path))
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in explicit:
                self.duplicate(key_node, key, _mark(explicit[key][0]), path)
                continue
            explicit[key] = (key_node, value_node)
        # YAML 1.1 merge: earlier sources win over later ones, explicit keys over all.
        entries: dict[str, tuple[Node, Node]] = {}
        for source in sources:
            for key, pair in _flatten(source).items():
                entries.setdefault(key, pair)
        entries.update(explicit)
        result: dict[str, Any] = {}
        for key, (key_node, value_node) in entries.items():
            child = (*path, key)
            self.key_marks[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
        return result

    def duplicate(self, node: Node, key: str, first: Mark_, path: Path_) -> None:
        self.error(node, path, f"duplicate key {key!r} (first defined at line {first[0]})")

    def merge_sources(self, value: Node, path: Path_) -> list[MappingNode]:
        if isinstance(value, MappingNode):
            return [value]
        if isinstance(value, SequenceNode) and all(isinstance(v, MappingNode) for v in value.value):
            return list(value.value)
        self.error(value, path, "merge key '<<' needs a mapping or a list of mappings")
        return []


def _flatten(node: MappingNode) -> dict[str, tuple[Node, Node]]:
    """Entries of a merge source including its own merges, first definition winning.

    Iterative: a chain of anchors each merging the previous one can be long. Problems in a
    source are reported where it is defined, so here they are skipped silently.
    """
    entries: dict[str, tuple[Node, Node]] = {}
    pending = [node]
    while pending:
        current = pending.pop()
        nested: list[MappingNode] = []
        for key_node, value_node in current.value:
            if key_node.tag == MERGE and isinstance(key_node, ScalarNode):
                if isinstance(value_node, MappingNode):
                    nested.append(value_node)
                elif isinstance(value_node, SequenceNode):
                    nested.extend(v for v in value_node.value if isinstance(v, MappingNode))
            elif isinstance(key_node, ScalarNode):
                entries.setdefault(str(key_node.value), (key_node, value_node))
        pending.extend(reversed(nested))
    return entries

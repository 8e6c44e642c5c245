"""Hostile configs through the whole CLI: `vigil validate` and `vigil compile` on random
documents shaped by the config's JSON Schema and on mutated examples exit 0 or 2, never with a
traceback or a hang; exit 2 prints only `FILE:LINE:COL:` lines and writes nothing; exit 0 writes
a tree that systemd, sh and the runner read back as meant (tests/tree_checks.py).

Sizes: `sized(quick, long)` examples per strategy (VIGIL_LONG=1 for the long run). Hypothesis
keeps no example database, so nothing is written into the repository.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from compiler.language import loader
from tests.conftest import EXAMPLES, ROOT, Result, fleet_hosts, require_systemd_analyze, sized
from tests.test_loader import BOMBS, laughs
from tests.tree_checks import check_tree, one_command, stub_python

pytestmark = pytest.mark.usefixtures(one_command.__name__)

# A generous bound: a hang, not a slow example, is what it is for (most take well under 1 s).
EXAMPLE_SECONDS = 20.0
PARSERS = ["libyaml", "python"] if yaml.__with_libyaml__ else ["python"]

FUZZ = settings(
    max_examples=sized(150, 3000),
    deadline=None,  # time_bound below catches hangs; systemd-analyze makes timings noisy
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # `vigil` is stateless
    ],
)


class Hang(Exception):
    pass


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Interrupt an example that runs longer than `seconds`: a hang fails instead of blocking."""

    def expire(_signum: int, _frame: object) -> None:
        raise Hang(f"example still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def yaml_parser(name: str) -> Iterator[None]:
    original = loader._new_parser
    loader._new_parser = loader._loader_class(name == "libyaml")
    try:
        yield
    finally:
        loader._new_parser = original


# --- the check every example goes through ----------------------------------------------------


def check_config(vigil: Callable[..., Result], text: bytes) -> int:
    """validate and compile one config through the CLI; returns the exit code (0 or 2)."""
    with tempfile.TemporaryDirectory(prefix="vigil-fuzz-") as scratch, time_bound(EXAMPLE_SECONDS):
        config, out = Path(scratch) / "vigil.yaml", Path(scratch) / "out"
        config.write_bytes(text)
        stub = stub_python(Path(scratch))
        checked = vigil("validate", config)
        host = fleet_hosts(config)[0] if checked.exit_code == 0 else None
        options = ["--host", host] if host else []  # a fleet config: for its first host
        compiled = vigil("compile", config, "--out", out, "--python", stub, *options)
        assert checked.exit_code in (0, 2), checked.stderr
        assert compiled.exit_code == checked.exit_code, compiled.stderr
        if checked.exit_code == 2:
            issue = re.compile(re.escape(str(config)) + r":[1-9]\d*:[1-9]\d*: \S")
            for result in (checked, compiled):
                lines = result.stderr.splitlines()
                assert lines and all(issue.match(line) for line in lines), lines
                assert result.stdout == ""
            assert not out.exists()
        else:
            check_tree(out, config, stub=stub)
        return checked.exit_code


# --- (a) random documents shaped by the JSON Schema -------------------------------------------

SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / "vigil.schema.json").read_text())


def _property_names(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set(node.get("properties", {}))
        return found.union(*(_property_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_property_names(v) for v in node))
    return set()


KEYS = sorted(_property_names(SCHEMA))
# Shared by every section, so that references (deliver_to, after, secrets, handoff) often resolve.
NAMES = ["demo", "hello", "sink", "token", "main-agent", "a", "x_1", "coordinator", "watch-x"]
HOSTILE = [
    *["", " ", "%", "%n", "%h", "%%", "100%", "\n", "a\nb", "\r", "\x00", "\\", "a\\", "'", '"'],
    *["$HOME", "`id`", "$(id)", "; rm -rf ~", "a && b", "#", "[Service]", "=", "{message}", "{"],
    *["}", "{x!r}", "{message:>9}", "{0}", "~", "~/x", "/", "//x", "/a/../b", "é✓", "\u2028"],
    *["\x85", "\x9b", "\x1b[31m", "\ufeff", "\t", "yes", "null", "1e400", "*", "&a", "!!int"],
    *["x" * 5000, "/" + "a" * 300, "-", ": ", "? ", "<<"],
]
WILD_TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=24))
WILD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**4000), max_value=10**4000),  # PyYAML prints up to 4300 digits
    st.floats(),  # nan and infinities included
    WILD_TEXT,
    st.lists(WILD_TEXT, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), WILD_TEXT, max_size=2),
)
NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
POOLS = {
    NAME: NAMES,
    r"^\s*(\d+\s*(w|d|h|min|m|sec|s)\s*)+$": ["30s", "15m", "1h 30m", "2d", "1w", "45 min"],
    r"^(/|~/|~$)": ["/tmp/vigil-x", "~/out.jsonl", "~", "/srv/a b", "/tmp/%n", "/", "~/a;b"],
    r"^([01]?\d|2[0-3]):[0-5]\d$": ["03:00", "22:30", "7:00", "23:59"],
    r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$": ["id", "title", "reply.from"],
}
TEXTS = [
    *["echo hi", "remindctl overdue --json", "{title} overdue for {days} days", "{name}: {count}"],
    *["@daily", "0 3 * * *", "*/15 * * * *", "0 9 1 * mon", "Mon..Fri 07:00", "@reboot"],
    *["0 0 31 2 *", "61 * * * *", "Sun *-*-* 23:00", "03:00", "UTC", "Europe/Berlin", "file://x"],
]


# Models that need exactly one of some keys (model validators the schema cannot express).
ONE_OF = {
    "Channel": ["apprise", "apprise_secret", "command", "file"],
    "Watch": ["deadline", "match", "file", "absence"],
    "Deadline": ["job", "source", "file"],
    "Condition": ["equals", "not_equals", "contains", "regex", "gt", "gte", "lt", "lte"],
    "ArmedBy": ["schedule", "source"],
    "Budget": ["monthly_tokens", "monthly_usd"],
    "Job": ["run"],
}
# Keys left out of documents without wild nodes: they need other keys (prompt: llm.api_key...).
TANGLED = {"prompt", "model", "max_tokens", "expected_tokens", "budget"}
# Strings by key, where the schema says no more than "string".
BY_KEY = {
    "apprise": ["json://localhost/x", "ntfy://topic", "mailto://a@b.c"],
    "regex": ["(?i)urgent", "^a+$"],
    "command": ["agent", "--message", "{message}", "{title}"],
    "prompt": ["Report what is overdue.", "100% of {title}\n"],
    "description": ["Back up at 100%", 'say "hi"; $(x)'],
}


class _Document:
    """Draws a value that follows the schema; one node in `wild` is anything at all (0: none),
    so that some documents are valid and reach rendering while others probe every error."""

    def __init__(self, draw: st.DrawFn, wild: int) -> None:
        self.draw, self.wild = draw, wild
        # Without wild nodes, two names and few optional keys make references resolve.
        self.names = NAMES if wild else ["sink", "hello"]
        self.optional = 4 if wild else 8

    def chance(self, one_in: int) -> bool:
        return one_in > 0 and self.draw(st.integers(1, one_in)) == 1

    def value(self, schema: dict[str, Any], depth: int, key: str = "") -> Any:
        title = schema.get("$ref", "").rsplit("/", 1)[-1]
        if title:
            schema = {**SCHEMA["$defs"][title], **schema}
        if depth > 7 or self.chance(self.wild):
            return self.draw(WILD)
        if "anyOf" in schema:
            # null is the same as an absent key: drawn only among wild documents
            options = [o for o in schema["anyOf"] if self.wild or o.get("type") != "null"]
            return self.value(self.draw(st.sampled_from(options)), depth, key)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.draw(st.sampled_from(schema["enum"]))
        return self.typed(schema, title, depth, key)

    def typed(self, schema: dict[str, Any], title: str, depth: int, key: str) -> Any:
        """A value of the schema's `type` (one drawn from a list of types)."""
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = self.draw(st.sampled_from(kind))
        if kind == "object":
            return self.mapping(schema, title, depth)
        if kind == "array":
            return self.array(schema, depth, key)
        if kind == "string":
            return self.string(schema, key)
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
            high = schema.get("maximum", 10**6)
            within = st.integers(low, high) if kind == "integer" else st.floats(low, high)
            return self.draw(within | st.integers() if self.wild else within)
        if kind == "boolean":
            return self.draw(st.booleans())
        return None if kind == "null" else self.draw(WILD)

    def array(self, schema: dict[str, Any], depth: int, key: str) -> list[Any]:
        count = self.draw(st.integers(schema.get("minItems", 0), 3))
        items = [self.value(schema.get("items", {}), depth + 1, key) for _ in range(count)]
        return items if self.wild else [v for i, v in enumerate(items) if v not in items[:i]]

    def string(self, schema: dict[str, Any], key: str) -> str:
        pattern = schema.get("pattern", "")
        pool = POOLS.get(pattern, []) + schema.get("examples", []) + BY_KEY.get(key, [])
        if pattern == NAME:
            pool = self.names
        if pool and not self.chance(4 if self.wild else 0):
            return self.draw(st.sampled_from(pool))
        texts = st.sampled_from(TEXTS)
        return self.draw(texts | WILD_TEXT if self.wild else texts)

    def key(self, pool: list[str]) -> str:
        if self.chance(self.wild):
            return self.draw(st.sampled_from(KEYS) | WILD_TEXT)
        return self.draw(st.sampled_from(pool))

    def mapping(self, schema: dict[str, Any], title: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        properties = schema.get("properties", {})
        if not properties:
            items = next(iter(schema.get("patternProperties", {}).values()), None)
            items = items or schema.get("additionalProperties") or {}
            for _ in range(self.draw(st.integers(0 if self.wild else 1, 3))):
                out[self.key(self.names)] = self.value(items, depth + 1)
            return out
        required = set(schema.get("required", []))
        if depth == 0:
            required |= {"channels", "jobs", "secrets"}
        chosen = [key for key in properties if key in required or self.chance(self.optional)]
        if not self.wild and title == "Job":
            chosen = [key for key in chosen if key not in TANGLED]
        if title in ONE_OF and not self.wild:
            group = ONE_OF[title]
            chosen = [k for k in chosen if k not in group] + [self.draw(st.sampled_from(group))]
        for key in chosen:
            out[key] = self.value(properties[key], depth + 1, key)
        if self.chance(self.wild):
            out[self.key(KEYS)] = self.draw(WILD)
        return out


@st.composite
def schema_documents(draw: st.DrawFn) -> bytes:
    wild = draw(st.sampled_from([0, 0, 60, 20]))
    event(f"one node in {wild} wild" if wild else "no wild nodes")
    document = _Document(draw, wild).value(SCHEMA, 0)
    text = yaml.safe_dump(
        document,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, True, None])),
        sort_keys=False,
        width=draw(st.sampled_from([60, 4096])),
    )
    return text.encode("utf-8")


@pytest.mark.slow
@FUZZ
@given(schema_documents(), st.sampled_from(PARSERS))
def test_random_documents_exit_0_or_2(vigil, text: bytes, parser: str) -> None:
    require_systemd_analyze()
    with yaml_parser(parser):
        event(f"parser {parser}: exit {check_config(vigil, text)}")


# --- (b) mutations of the example configs -----------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(data: Any, prefix: Path_ = ()) -> list[Path_]:
    found: list[Path_] = []
    if isinstance(data, dict):
        children: Any = data.items()
    else:
        children = enumerate(data) if isinstance(data, list) else []
    for key, value in children:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


def _parent(data: Any, path: Path_) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _mutate_data(draw: st.DrawFn, data: dict[str, Any]) -> str:
    """One structural edit: drop, duplicate, rename, swap or retype a value."""
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    parent, last = _parent(data, path), path[-1]
    operation = draw(st.sampled_from(["drop", "duplicate", "rename", "swap", "retype"]))
    if operation == "drop":
        del parent[last]
    elif operation == "retype":
        parent[last] = draw(WILD | st.just([parent[last]]) | st.just({"x": parent[last]}))
    elif operation == "swap":
        other = draw(st.sampled_from(paths))
        if other[: len(path)] != path and path[: len(other)] != other:
            other_parent = _parent(data, other)
            parent[last], other_parent[other[-1]] = other_parent[other[-1]], parent[last]
    elif isinstance(parent, list):
        parent.insert(draw(st.integers(0, len(parent))), parent[last])
    else:
        key = draw(st.sampled_from(NAMES) | st.sampled_from(KEYS) | WILD_TEXT)
        parent[key] = parent.pop(last) if operation == "rename" else parent[last]
    return operation


TOKENS = [*": -?[]{},&*!|>'\"#%@`\t\n\\~", "<<: *a", "&a ", "*a", "\n  ", "---\n", "1" * 5000]
TOKENS += ['"\\ud800"', '"\\U00110000"', '"\\x00"', "!!binary ", "%n", "\r\n"]


def _mutate_text(draw: st.DrawFn, text: bytes) -> tuple[str, bytes]:
    """One textual edit: truncate, insert bytes or a YAML token, delete, or repeat a line."""
    operation = draw(st.sampled_from(["truncate", "bytes", "token", "delete", "line"]))
    at = draw(st.integers(0, len(text)))
    if operation == "truncate":
        return operation, text[:at]
    if operation == "bytes":
        return operation, text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    if operation == "token":
        return operation, text[:at] + draw(st.sampled_from(TOKENS)).encode() + text[at:]
    if operation == "delete":
        return operation, text[:at] + text[at + draw(st.integers(1, 40)) :]
    lines = text.splitlines(keepends=True) or [b"\n"]
    line = draw(st.sampled_from(lines))  # repeated: duplicate keys, or a second list item
    index = draw(st.integers(0, len(lines)))
    return operation, b"".join([*lines[:index], line, *lines[index:]])


@st.composite
def mutated_examples(draw: st.DrawFn) -> bytes:
    example = draw(st.sampled_from(EXAMPLES))
    text = example.read_bytes()
    event(f"example {example.stem}")
    if draw(st.booleans()):
        data = loader.load_text(text, example.name).data
        for _ in range(draw(st.integers(1, 3))):
            if not _paths(data):
                break
            event(f"data {_mutate_data(draw, data)}")
        dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=4096)
        return dumped.encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        operation, text = _mutate_text(draw, text)
        event(f"text {operation}")
    return text


@pytest.mark.slow
@FUZZ
@given(mutated_examples(), st.sampled_from(PARSERS))
def test_mutated_examples_exit_0_or_2(vigil, text: bytes, parser: str) -> None:
    require_systemd_analyze()
    with yaml_parser(parser):
        event(f"parser {parser}: exit {check_config(vigil, text)}")


def test_unmutated_examples_pass_every_tree_check(vigil) -> None:
    # The baseline of the mutation fuzzing: every example as it is compiles and checks clean.
    require_systemd_analyze()
    for example in EXAMPLES:
        assert check_config(vigil, example.read_bytes()) == 0, example


# --- alias bombs through the CLI ----------------------------------------------------------


def test_alias_bombs_exit_2_fast_and_write_nothing(vigil, tmp_path: Path) -> None:
    config, out = tmp_path / "bomb.yaml", tmp_path / "out"
    for name, text in BOMBS.items():
        config.write_text(text)
        start = time.perf_counter()
        for args in (("validate", config), ("compile", config, "--out", out)):
            result = vigil(*args)
            assert result.exit_code == 2, (name, result.stderr)
            assert "(alias bomb?)" in result.stderr and result.stdout == "", name
        assert time.perf_counter() - start < 2.0, name
        assert not out.exists()


# The whole process's peak, libyaml's own buffers included (tracemalloc sees Python objects).
MEASURE = """\
import resource, sys
from compiler.cli.commands import main
try:
    main()
except SystemExit as exit:
    code = exit.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, code, file=sys.stderr)
"""


def validate_in_fresh_process(config: Path) -> tuple[int, int, float]:
    """(peak RSS in MiB, exit code, seconds) of `vigil validate CONFIG` in a new interpreter."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    rss, code = done.stderr.splitlines()[-1].split()
    return int(rss), int(code), elapsed


def test_alias_bombs_stay_small_in_memory(tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text("name: demo\n")  # exit 2 as well: a baseline of the same work
    baseline, code, _ = validate_in_fresh_process(config)
    assert code == 2
    for name in ("depth 9, width 9", "depth 3, width 2000", "mappings"):
        config.write_text(BOMBS[name])
        rss, code, _ = validate_in_fresh_process(config)
        assert code == 2
        assert rss - baseline < 50, f"{name}: {rss - baseline} MiB above the baseline"


def test_largest_alias_expansion_allowed_is_bounded(tmp_path: Path) -> None:
    """Just under the loader's bound (1,000,000 values) aliases still expand: 9**6 leaves,
    ~670,000 values. Such a document costs ~1 s and ~150 MiB here; the bound is what stops
    growth, so this pins it: well under 10 s and 400 MiB."""
    config = tmp_path / "vigil.yaml"
    config.write_text("name: demo\n")
    baseline, _, _ = validate_in_fresh_process(config)
    config.write_text(laughs(6, 9))
    rss, code, elapsed = validate_in_fresh_process(config)
    assert code == 2  # loaded; l0..l5 are unknown keys
    assert elapsed < 10 and rss - baseline < 400, (elapsed, rss - baseline)

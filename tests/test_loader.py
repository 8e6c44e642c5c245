"""The YAML loader: plain data, exact marks, and a clean ConfigError for every bad input."""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import ConfigError, ConfigIssue, VigilError
from compiler.language import loader
from compiler.language.loader import Document, format_path, load_file, load_text

PARSERS = ["libyaml", "python"] if yaml.__with_libyaml__ else ["python"]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with libyaml and again with PyYAML's pure-Python parser."""
    monkeypatch.setattr(loader, "_new_parser", loader._loader_class(request.param == "libyaml"))
    yield request.param


def load(text: str | bytes) -> Document:
    return load_text(text, "vigil.yaml")


def only_issue(text: str | bytes) -> ConfigIssue:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert len(caught.value.issues) == 1, caught.value.issues
    return caught.value.issues[0]


def value_of(text: str) -> Any:
    return load(f"v: {text}\n").data["v"]


# --- marks -------------------------------------------------------------------------------

CONFIG = """\
name: agent
jobs:
  backup:
    schedule:
      - "03:00"
      - 15:30
    command: [tar, -c]
    env: {HOME: /root}
"""


@pytest.mark.usefixtures(parser.__name__)
def test_marks_of_nested_keys_and_list_items() -> None:
    doc = load(CONFIG)
    assert doc.data == {
        "name": "agent",
        "jobs": {
            "backup": {
                "schedule": ["03:00", "15:30"],
                "command": ["tar", "-c"],
                "env": {"HOME": "/root"},
            }
        },
    }
    assert doc.value_marks[()] == (1, 1)
    assert doc.value_marks[("name",)] == (1, 7)
    assert doc.key_marks[("jobs", "backup")] == (3, 3)
    assert doc.value_marks[("jobs", "backup")] == (4, 5)
    assert doc.key_marks[("jobs", "backup", "schedule")] == (4, 5)
    assert doc.value_marks[("jobs", "backup", "schedule")] == (5, 7)
    assert doc.value_marks[("jobs", "backup", "schedule", 0)] == (5, 9)
    assert doc.value_marks[("jobs", "backup", "schedule", 1)] == (6, 9)
    assert doc.value_marks[("jobs", "backup", "command", 1)] == (7, 20)
    assert doc.key_marks[("jobs", "backup", "env", "HOME")] == (8, 11)
    assert doc.value_marks[("jobs", "backup", "env", "HOME")] == (8, 17)


def test_marks_are_every_path_and_key_marks_only_mapping_entries() -> None:
    doc = load(CONFIG)
    assert len(doc.value_marks) == 12
    assert ("jobs", "backup", "schedule", 0) not in doc.key_marks
    assert len(doc.key_marks) == 7


@pytest.mark.usefixtures(parser.__name__)
def test_columns_count_characters_not_bytes() -> None:
    doc = load("é: ünï\nx: [é, b]\n".encode())
    assert doc.value_marks[("é",)] == (1, 4)
    assert doc.value_marks[("x", 1)] == (2, 8)


@pytest.mark.usefixtures(parser.__name__)
def test_bom_does_not_shift_columns() -> None:
    for text in (b"\xef\xbb\xbfa: 1\n", "\ufeffa: 1\n"):
        doc = load(text)
        assert doc.data == {"a": 1}
        assert doc.key_marks[("a",)] == (1, 1)
        assert doc.value_marks[("a",)] == (1, 4)


def test_crlf_line_endings() -> None:
    doc = load(b"a: 1\r\nb:\r\n  - x\r\n")
    assert doc.data == {"a": 1, "b": ["x"]}
    assert doc.value_marks[("b", 0)] == (3, 5)


def test_data_is_plain_python() -> None:
    doc = load(CONFIG)
    assert type(doc.data) is dict
    assert type(doc.data["jobs"]["backup"]["schedule"]) is list


# --- locate / issue / format_path ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("jobs", "backup", "schedule", 1), False, (6, 9)),
        (("jobs", "backup", "schedule"), True, (4, 5)),
        (("jobs", "backup", "schedule"), False, (5, 7)),
        (("jobs", "backup", "schedule", 0), True, (5, 9)),  # list items have no key
        (("jobs", "backup", "timeout"), False, (4, 5)),  # missing: its mapping
        (("jobs", "backup", "timeout"), True, (4, 5)),
        (("jobs", "backup", "schedule", 7, "x"), False, (5, 7)),
        (("nope", "deeper"), False, (1, 1)),
        ((), False, (1, 1)),
    ],
)
def test_locate(path: tuple[str | int, ...], key: bool, expected: tuple[int, int]) -> None:
    assert load(CONFIG).locate(path, key=key) == expected


def test_locate_without_any_marks() -> None:
    assert Document("f", {}, {}, {}).locate(["a", 0]) == (1, 1)


def test_locate_accepts_lists() -> None:
    assert load(CONFIG).locate(["jobs", "backup", "command", 0]) == (7, 15)


def test_issue() -> None:
    doc = load(CONFIG)
    issue = doc.issue(("jobs", "backup", "schedule", 1), "not a valid time")
    assert issue == ConfigIssue("vigil.yaml", 6, 9, "jobs.backup.schedule[1]", "not a valid time")
    assert str(issue) == "vigil.yaml:6:9: jobs.backup.schedule[1]: not a valid time"
    keyed = doc.issue(["jobs", "backup", "env"], "unknown field", key=True)
    assert str(keyed) == "vigil.yaml:8:5: jobs.backup.env: unknown field"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("jobs", "a", "schedule", 0), "jobs.a.schedule[0]"),
        (("jobs",), "jobs"),
        ((), ""),
        ((0, "a"), "[0].a"),
        (("a", 1, 2), "a[1][2]"),
        (["x-y", "on_fail"], "x-y.on_fail"),
        (("jobs", "a.b", "x"), 'jobs["a.b"].x'),
        (("jobs", "", "x"), 'jobs[""].x'),
        (("env", 'say "hi"'), 'env["say \\"hi\\""]'),
    ],
)
def test_format_path(path: tuple[str | int, ...], expected: str) -> None:
    assert format_path(path) == expected


# --- scalars: YAML 1.2 core, not YAML 1.1 ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("Yes", "Yes"),
        ("NO", "NO"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("tRUE", "tRUE"),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("~", None),
        ("", None),
        ("nULL", "nULL"),
        ("3:00", "3:00"),
        ("03:00", "03:00"),
        ("1:30:00", "1:30:00"),
        ("2026-01-01", "2026-01-01"),
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z"),
        ("0o17", 15),
        ("0x1F", 31),
        ("0X1F", "0X1F"),
        ("-0x1F", "-0x1F"),
        ("0b101", "0b101"),
        ("017", 17),
        ("42", 42),
        ("-7", -7),
        ("+12", 12),
        ("1_000", "1_000"),
        ("1.5", 1.5),
        ("-1.5e3", -1500.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e5", 100000.0),
        ("1E-2", 0.01),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        ("1e", "1e"),
        ("2001:db8::1", "2001:db8::1"),
        ("<<", "<<"),
        ("'true'", "true"),
        ('"42"', "42"),
        ("'~'", "~"),
        ("''", ""),
        ("|\n  yes\n", "yes\n"),
        ("!!str 3", "3"),
        ("!!int '7'", 7),
        ("!!float 1", 1.0),
        ("!!bool 'TRUE'", True),
        ("!!null ''", None),
        ("!!map {a: 1}", {"a": 1}),
        ("!!seq [1]", [1]),
    ],
)
def test_scalar_resolution(text: str, expected: Any) -> None:
    value = value_of(text)
    assert value == expected
    assert type(value) is type(expected)


def test_nan() -> None:
    assert math.isnan(value_of(".NaN"))


@pytest.mark.usefixtures(parser.__name__)
def test_yaml_11_trap_keys_stay_strings() -> None:
    doc = load("on: push\nno: 1\ny: 2\n3:00: x\n")
    assert doc.data == {"on": "push", "no": 1, "y": 2, "3:00": "x"}


@pytest.mark.parametrize(
    ("text", "key"),
    [("1: a", "1"), ("0x10: a", "0x10"), ("true: a", "true"), ("~: a", "~"), ("1.5: a", "1.5")],
)
def test_scalar_keys_are_their_text(text: str, key: str) -> None:
    doc = load(text)
    assert doc.data == {key: "a"}
    assert doc.key_marks[(key,)] == (1, 1)


# --- merge keys ------------------------------------------------------------------------------

MERGE = """\
defaults: &defaults
  timeout: 60
  retries: 2
extra: &extra
  retries: 5
  notify: mail
jobs:
  a:
    <<: [*defaults, *extra]
    timeout: 10
  b:
    <<: *defaults
"""


@pytest.mark.usefixtures(parser.__name__)
def test_merge_keys() -> None:
    doc = load(MERGE)
    assert doc.data["jobs"]["a"] == {"timeout": 10, "retries": 2, "notify": "mail"}
    assert doc.data["jobs"]["b"] == {"timeout": 60, "retries": 2}
    # Merged values point where they were defined; explicit ones where they are.
    assert doc.value_marks[("jobs", "a", "retries")] == (3, 12)
    assert doc.key_marks[("jobs", "a", "notify")] == (6, 3)
    assert doc.value_marks[("jobs", "a", "timeout")] == (10, 14)
    assert doc.key_marks[("jobs", "b", "timeout")] == (2, 3)


def test_merge_of_merge_and_inline_mapping() -> None:
    doc = load("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: [*b, {z: 3, x: 9}]}\n")
    assert doc.data["c"] == {"x": 1, "y": 2, "z": 3}


def merge_chain(length: int) -> Document:
    lines = ["m0: &m0 {k0: 0}"]
    lines += [f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}" for i in range(1, length)]
    doc = load("\n".join(lines))
    assert len(doc.data[f"m{length - 1}"]) == length
    assert doc.value_marks[(f"m{length - 1}", "k0")] == (1, 14)
    return doc


def test_merge_chain() -> None:
    merge_chain(300)


@pytest.mark.slow
def test_merge_chain_longer_than_the_recursion_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_VALUES", 5_000_000)
    merge_chain(1100)


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert load('"<<": 1\n').data == {"<<": 1}


def test_aliases_share_marks_of_their_anchor() -> None:
    doc = load("a: &x [1, 2]\nb: *x\n")
    assert doc.data == {"a": [1, 2], "b": [1, 2]}
    assert doc.value_marks[("b", 1)] == (1, 11)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "field", "fragment"),
    [
        (
            "jobs:\n  backup:\n    schedule: a\n    schedule: b\n",
            4,
            5,
            "jobs.backup",
            "duplicate key 'schedule' (first defined at line 3)",
        ),
        ("a: 1\n'a': 2\n", 2, 1, "", "duplicate key 'a' (first defined at line 1)"),
        ("1: x\n'1': y\n", 2, 1, "", "duplicate key '1'"),
        ("j:\n  <<: {a: 1}\n  <<: {b: 2}\n", 3, 3, "j", "duplicate key '<<'"),
        ("d: &d {a: 1}\nj:\n  <<: *d\n  b: 1\n  b: 2\n", 5, 3, "j", "duplicate key 'b'"),
        ("j:\n  <<: [a, b]\n", 2, 7, "j", "merge key '<<' needs a mapping or a list of mappings"),
        ("? [a]\n: 1\n", 1, 3, "", "keys must be plain scalars, got a list"),
        ("? {a: 1}\n: 1\n", 1, 3, "", "keys must be plain scalars, got a mapping"),
        (
            "x: !!python/object/apply:os.system ['ls']\n",
            1,
            4,
            "x",
            "tag '!!python/object/apply:os.system' is not allowed",
        ),
        ("x: !!python/name:os.system ''\n", 1, 4, "x", "tag '!!python/name:os.system'"),
        ("x: !!binary aGVsbG8=\n", 1, 4, "x", "tag '!!binary' is not allowed"),
        ("x: !!timestamp 2026-01-01\n", 1, 4, "x", "tag '!!timestamp' is not allowed"),
        ("x: !!set {a}\n", 1, 4, "x", "tag '!!set' is not allowed"),
        ("x: !!omap [a: 1]\n", 1, 4, "x", "tag '!!omap' is not allowed"),
        ("x:\n  - !foo bar\n", 2, 5, "x[0]", "tag '!foo' is not allowed"),
        ("x: !<tag:example.com,2026:x> 1\n", 1, 4, "x", "tag 'tag:example.com,2026:x'"),
        ("!!python/str k: 1\n", 1, 1, "", "tag '!!python/str' is not allowed"),
        ("x: !!map [a]\n", 1, 4, "x", "tag '!!map' cannot be used on a list"),
        ("x: !!str [a]\n", 1, 4, "x", "tag '!!str' cannot be used on a list"),
        ("x: !!seq a\n", 1, 4, "x", "tag '!!seq' cannot be used on a scalar"),
        ("x: !!int 1.5\n", 1, 4, "x", "'1.5' is not a valid !!int"),
        ("x: !!bool yes\n", 1, 4, "x", "'yes' is not a valid !!bool"),
        ("x: !!float abc\n", 1, 4, "x", "'abc' is not a valid !!float"),
        ("x: !!null 0\n", 1, 4, "x", "'0' is not a valid !!null"),
        ("x: 1" + "0" * 5000 + "\n", 1, 4, "x", "integer has too many digits"),
        ("", 1, 1, "", "file is empty"),
        ("\n\n   \n", 1, 1, "", "file is empty"),
        ("# only a comment\n", 1, 1, "", "file is empty"),
        ("---\n", 1, 1, "", "file is empty"),
        ("- a\n- b\n", 1, 1, "", "top level must be a mapping, got a list"),
        ("just text\n", 1, 1, "", "top level must be a mapping, got a string"),
        ("\n42\n", 2, 1, "", "top level must be a mapping, got an integer"),
        ("~\n", 1, 1, "", "top level must be a mapping, got null"),
        ("a: 1\n---\nb: 2\n", 2, 1, "", "only one YAML document is allowed per file"),
        ("--- {a: 1}\n--- {b: 2}\n", 2, 1, "", "only one YAML document"),
        ("a: 1\n...\n---\nb: 1\n", 3, 1, "", "only one YAML document"),
        ("a: *nope\n", 1, 4, "", "alias '*nope' refers to an undefined anchor"),
        ("a: &x 1\nb: &x 2\n", 2, 4, "", "anchor '&x' is already defined at line 1"),
        ("a: &a [1, *a]\n", 1, 11, "", "alias '*a' refers to a node that contains it"),
        ("a: &a {<<: *a}\n", 1, 12, "", "refers to a node that contains it"),
        ("a: b: c\n", 1, 5, "", "mapping values are not allowed here"),
        ("a: 'unterminated\n", 2, 1, "", "found unexpected end of stream"),
        ('a: "\\q"\n', 1, 5, "", "unknown escape sequence"),
        ("a: [1, 2\nb: 3\n", 2, 2, "", "did not find expected ',' or ']'"),
        ("a: 1\n- b\n", 2, 1, "", "expected a `key: value` entry here"),
        ("a:\n  - b\n  c: 1\n", 3, 3, "", "expected a `- ` list item here"),
        ("  a: 1\n b: 2\n", 2, 2, "", "unexpected content after the document"),
        ("a: @x\n", 1, 4, "", "found character '@' that cannot start any token"),
        ("a: `x\n", 1, 4, "", "found character '`'"),
        ("jobs:\n\tbackup: 1\n", 2, 1, "", "tab characters cannot be used for indentation"),
        ("a:\n  b: 1\n\tc: 2\n", 3, 1, "", "tab characters cannot be used for indentation"),
        ("a: |\n  x\n\tb\n", 3, 1, "", "tab characters cannot be used for indentation"),
        ("a: 1\x00\n", 1, 5, "", "NUL byte"),
        ("a: 1\nb: \x07\n", 2, 4, "", "control character U+0007 is not allowed"),
        ("a: \x7f\n", 1, 4, "", "control character U+007F"),
        ("a: '\ud800'\n", 1, 5, "", "character U+D800 is not allowed"),
        ("a: \ufffe\n", 1, 4, "", "character U+FFFE"),
    ],
)
def test_errors(text: str, line: int, column: int, field: str, fragment: str) -> None:
    issue = only_issue(text)
    assert issue.file == "vigil.yaml"
    assert (issue.line, issue.column, issue.field) == (line, column, field)
    assert fragment in issue.message


@pytest.mark.usefixtures(parser.__name__)
@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("jobs:\n\tbackup: 1\n", 2, 1, "tab characters cannot be used for indentation"),
        ("a: b: c\n", 1, 5, "mapping values are not allowed here"),
        ("a: &x 1\nb: &x 2\n", 2, 4, "anchor '&x' is already defined"),
        ("a: 1\n---\nb: 2\n", 2, 1, "only one YAML document"),
        ("a: &a [1, *a]\n", 1, 11, "refers to a node that contains it"),
        ("x: !!binary aGVsbG8=\n", 1, 4, "tag '!!binary' is not allowed"),
    ],
)
def test_errors_with_either_parser(text: str, line: int, column: int, fragment: str) -> None:
    issue = only_issue(text)
    assert (issue.line, issue.column) == (line, column)
    assert fragment in issue.message


def test_every_issue_is_reported_in_order() -> None:
    text = "b: !!binary x\na: 1\na: 2\nc: !foo y\n"
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value).splitlines() == [
        "vigil.yaml:1:4: b: tag '!!binary' is not allowed",
        "vigil.yaml:3:1: duplicate key 'a' (first defined at line 2)",
        "vigil.yaml:4:4: c: tag '!foo' is not allowed",
    ]
    assert caught.value.exit_code == 2


def test_problem_in_an_aliased_node_is_reported_once() -> None:
    text = "d: &d {a: 1, a: 2}\nx: *d\ny: {<<: *d}\n"
    issue = only_issue(text)
    assert (issue.line, issue.column, issue.field) == (1, 14, "d")


@pytest.mark.usefixtures(parser.__name__)
@pytest.mark.parametrize(
    "text",
    ['a: "\\U00110000"\n', 'a: "x\\ud800"\n', '"\\udc00": 1\n', "a: [1, '2', \"\\udfff\"]\n"],
)
def test_invalid_escapes_with_either_parser(text: str) -> None:
    # PyYAML's own parser crashed in chr() on the first and let lone surrogates through, which
    # no generated file can hold; libyaml refuses all of them.
    issue = only_issue(text)
    assert issue.line == 1
    assert issue.message == "found invalid Unicode character escape code"


def test_error_at_the_end_of_a_file_without_final_newline() -> None:
    issue = only_issue("a: [1, 2")
    assert (issue.line, issue.column) == (2, 1)
    assert "started at line 1" in issue.message


# --- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line", "column", "byte"),
    [
        (b"a: 1\nb: caf\xc3\xa9 \xff\n", 2, 9, "0xff"),
        (b"\xff\xfea\x00:\x00", 1, 1, "0xff"),  # UTF-16 with its BOM
        (b"a: \xe9t\xe9\n", 1, 4, "0xe9"),  # Latin-1
        (b"\xef\xbb\xbfa: \xc3\n", 1, 4, "0xc3"),  # truncated sequence after a BOM
        (b"x:\r\n  - \xed\xa0\x80\n", 2, 5, "0xed"),  # encoded surrogate
    ],
)
def test_invalid_utf8(raw: bytes, line: int, column: int, byte: str) -> None:
    issue = only_issue(raw)
    assert (issue.line, issue.column) == (line, column)
    assert issue.message == f"file is not valid UTF-8 (byte {byte})"


def test_utf8_with_and_without_bom() -> None:
    assert load("a: é\n".encode()).data == load(b"\xef\xbb\xbfa: \xc3\xa9\n").data == {"a": "é"}


# --- hostile documents -----------------------------------------------------------------------


def laughs(levels: int, width: int, shape: str = "list") -> str:
    """Billion laughs: each level holds `width` aliases of the one before. Shapes: lists,
    mappings, merge keys (`<<: [*l0, *l0...]`), or aliases used as mapping keys."""

    def level(items: list[str]) -> str:
        if shape == "list":
            return "[" + ", ".join(items) + "]"
        if shape == "merge" and items[0].startswith("*"):
            return "{<<: [" + ", ".join(items) + "]}"
        if shape == "key" and items[0].startswith("*"):
            return "{" + ", ".join(f"? {item} : {n}" for n, item in enumerate(items)) + "}"
        return "{" + ", ".join(f"k{n}: {item}" for n, item in enumerate(items)) + "}"

    lines = ["l0: &l0 " + level(["lol"] * width)]
    for number in range(1, levels):
        lines.append(f"l{number}: &l{number} " + level([f"*l{number - 1}"] * width))
    return "\n".join(lines) + "\n"


@pytest.mark.usefixtures(parser.__name__)
def test_billion_laughs_fails_fast() -> None:
    start = time.perf_counter()
    issue = only_issue(laughs(9, 9))
    assert time.perf_counter() - start < 0.5
    assert "expands to more than 1000000 values through aliases (alias bomb?)" in issue.message
    assert issue.line == 7


BOMBS = {
    **{f"depth {d}, width 9": laughs(d, 9) for d in (7, 9, 12, 20)},
    **{f"depth {d}, width 2": laughs(d, 2) for d in (21, 30, 64)},
    **{f"depth 3, width {w}": laughs(3, w) for w in (1001, 2000)},
    "mappings": laughs(9, 9, "mapping"),
    "merge keys": laughs(9, 9, "merge"),
    "alias keys": laughs(9, 9, "key"),
    "inside a config": "defs:\n"
    + laughs(9, 9).replace("l", "  l", 1).replace("\nl", "\n  l")
    + "name: demo\njobs: {hello: {schedule: '@daily', run: *l8}}\n",
}


@pytest.mark.usefixtures(parser.__name__)
@pytest.mark.parametrize("text", BOMBS.values(), ids=BOMBS.keys())
def test_alias_bombs_are_rejected_in_bounded_time_and_memory(text: str) -> None:
    start = time.perf_counter()
    issue = only_issue(text)
    elapsed = time.perf_counter() - start
    assert "through aliases (alias bomb?)" in issue.message
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    tracemalloc.start()
    try:
        only_issue(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Python objects only: libyaml's own buffers are not traced (test_fuzz_config checks RSS).
    assert peak < 50 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_small_fan_out_is_fine() -> None:
    doc = load(laughs(3, 9))
    assert len(doc.data["l2"]) == 9
    assert doc.data["l2"][8][8] == ["lol"] * 9


def test_value_limit_without_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_VALUES", 10)
    assert load("a: [1, 2, 3, 4]\n").data == {"a": [1, 2, 3, 4]}
    issue = only_issue("a: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n")
    assert issue.message == "document has more than 10 values"
    assert (issue.line, issue.column) == (1, 26)  # the eleventh value


@pytest.mark.usefixtures(parser.__name__)
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[" * 10_000, (1, 101)),
        ("[" * 10_000 + "]" * 10_000, (1, 101)),
        ("a: " + "{a: " * 10_000 + "1" + "}" * 10_000, (1, 400)),
        ("".join(f"{' ' * depth}- \n" for depth in range(0, 600, 2)), (101, 201)),
        ("a: " + "[" * 200_000, (1, 103)),
        ("a: " + "[\n" * 2_000, (100, 1)),
        ("a: " + "{b: [" * 600, (1, 253)),
        # Block levels first, then flow levels past libyaml's own limit of 1,000 on one line.
        (
            "a:\n" + "".join(f"{' ' * (d + 1)}k{d}:\n" for d in range(60)) + " " * 70 + "[" * 3_000,
            (62, 110),
        ),
    ],
)
def test_deep_nesting_is_a_clean_error(text: str, where: tuple[int, int]) -> None:
    """vigil's limit and position, whichever parser and libyaml (PyYAML 6.0.4's stops at 1,000
    levels on its own, after looking far ahead) is installed."""
    issue = only_issue(text)
    assert issue.message == f"nesting is deeper than {loader.MAX_DEPTH} levels"
    assert (issue.line, issue.column) == where


def test_a_parser_limit_below_vigils_own_is_reported_in_vigils_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the installed libyaml stop at a limit of its own where vigil's scan finds
    nothing wrong, the message still says what is wrong in vigil's words."""
    monkeypatch.setattr(loader, "MAX_DEPTH", 5_000)
    text = "a: " + "[" * 1_100 + "]" * 1_100
    try:
        root = loader._compose(text, "vigil.yaml")  # the builder would recurse too deep
    except ConfigError as error:
        [issue] = error.issues
        assert issue.message == "nesting is deeper than the YAML parser allows"
        assert issue.line == 1
    else:  # no libyaml, or one without a nesting limit
        assert isinstance(root, yaml.MappingNode)


def test_nesting_within_the_limit_loads() -> None:
    depth = loader.MAX_DEPTH - 1
    doc = load("a: " + "[" * depth + "1" + "]" * depth)
    assert doc.value_marks[("a", *[0] * depth)] == (1, 4 + depth)


def test_gc_state_is_restored() -> None:
    import gc

    assert gc.isenabled()
    with pytest.raises(ConfigError):
        load("a: [")
    load("a: 1")
    assert gc.isenabled()


# --- files -----------------------------------------------------------------------------------


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: agent\n")
    doc = load_file(path)
    assert doc.data == {"name": "agent"}
    assert doc.filename == str(path)


def test_load_file_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError, match=r"vigil\.yaml:2:1: duplicate key 'a'"):
        load_file(str(path))


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_file_is_not_a_config_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(VigilError, match="cannot read: ") as caught:
        load_file(tmp_path / name)
    assert not isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 1


# --- fuzzing ---------------------------------------------------------------------------------

YAML_TOKENS = [*"ab1 :-?[]{},&*!|>'\"#%@`\t\n\r\\~.<\x00\x85\ufeff\u2028é"]
YAML_TOKENS += ["<<: ", "&a ", "*a", "!!int ", "!!str ", "!!merge ", "- ", "? ", "\n  ", "---\n"]
YAML_TOKENS += ['"\\ud800"', '"\\U00110000"', '"\\x85"', "!a%0A "]  # escapes, a tag with a newline
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)


def load_or_config_error(raw: str | bytes) -> None:
    try:
        doc = load(raw)
    except ConfigError as error:
        assert error.issues
        for issue in error.issues:
            assert issue.line >= 1 and issue.column >= 1 and issue.message
        return
    assert isinstance(doc.data, dict)
    assert doc.value_marks[()][0] >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(YAMLISH, st.text(max_size=80), st.binary(max_size=80)))
def test_arbitrary_input_gives_data_or_config_error(raw: str | bytes) -> None:
    load_or_config_error(raw)


@settings(max_examples=100, deadline=None)
@given(YAMLISH)
def test_arbitrary_input_with_the_python_parser(raw: str) -> None:
    original = loader._new_parser
    loader._new_parser = loader._loader_class(False)
    try:
        load_or_config_error(raw)
    finally:
        loader._new_parser = original

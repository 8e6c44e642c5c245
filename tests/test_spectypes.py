"""The spec types (runner/spectypes.py) and the specs the compiler writes agree: every spec of the
examples, of the configs in tests/cases/specs/ and of a simulated world has the keys its type
requires, no key it does not declare, and values of the declared types, section by section;
and every key a type declares is written by the compiler somewhere in them.

The cases at the end feed the checker specs it must refuse."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

import runner.spectypes as spectypes
from compiler.generate.build import build
from compiler.generate.render import Source, render
from compiler.language.loader import load_text
from compiler.language.validate import validate_document
from runner.spec import OUTPUT_MODES
from tests.conftest import EXAMPLES, ROOT, fleet_hosts
from tests.simulation import scenario

CASES = sorted((ROOT / "tests" / "cases" / "specs").glob("*.yaml"))
EVERY_KIND = ROOT / "tests" / "cases" / "specs" / "every-kind.yaml"
SPEC_TYPES: dict[str, Any] = {
    "job": spectypes.JobSpecJSON,
    "coordinator": spectypes.CoordinatorSpecJSON,
    "watch": spectypes.WatchSpecJSON,
    "failure": spectypes.FailureSpecJSON,
    "forward": spectypes.ForwardSpecJSON,
    "reply": spectypes.ReplySpecJSON,
}
HAND_WRITTEN_ONLY = {"history_max_bytes", "max_retries"}
"""Keys the runner reads that the compiler never writes (the types say so)."""
TYPED_DICTS = {value for value in vars(spectypes).values() if is_typeddict(value)}
BASES = {
    spectypes.SpecJSON,
    spectypes.ServiceSpecJSON,
    spectypes.DeadlineTimerJSON,
    spectypes.FleetHostJSON,
    spectypes.FleetCoordinatorJSON,
    spectypes.ReplySourceJSON,
}
"""Types the spec kinds extend: their keys are checked as keys of those."""


class Checker:
    """Checks parsed JSON against a type of runner/spectypes.py, and remembers the keys it met
    in each TypedDict."""

    def __init__(self) -> None:
        self.met: dict[Any, set[str]] = {}

    def problems(self, value: object, expected: Any, where: str) -> list[str]:
        """What in `value` does not have the type `expected`, one line each, naming where."""
        if is_typeddict(expected):
            return self._typed_dict(value, expected, where)
        origin, args = get_origin(expected), get_args(expected)
        if origin in (Union, UnionType):
            # The alternative with the fewest problems says best what is wrong.
            tried = [
                self.problems(value, alternative, where)
                for alternative in args
                if value is None or alternative is not NoneType
            ]
            return min(tried, key=len)
        if origin is Literal:
            return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
        if origin is list:
            if not isinstance(value, list):
                return [f"{where}: {_name(value)} where a list is expected"]
            return [
                p for i, v in enumerate(value) for p in self.problems(v, args[0], f"{where}[{i}]")
            ]
        if origin is dict:
            if not isinstance(value, dict):
                return [f"{where}: {_name(value)} where an object is expected"]
            return [p for k, v in value.items() for p in self.problems(v, args[1], f"{where}.{k}")]
        return [] if _is(value, expected) else [f"{where}: {_name(value)} is not {_name(expected)}"]

    def _typed_dict(self, value: object, expected: Any, where: str) -> list[str]:
        name = expected.__name__
        if not isinstance(value, dict):
            return [f"{where}: {_name(value)} where {name} is expected"]
        declared = get_type_hints(expected)
        self.met.setdefault(expected, set()).update(value.keys() & declared.keys())
        found = [
            f"{where}.{key}: missing" for key in sorted(expected.__required_keys__ - value.keys())
        ]
        found += [
            f"{where}.{key}: not declared in {name}"
            for key in sorted(value.keys() - declared.keys())
        ]
        for key in sorted(value.keys() & declared.keys()):
            found += self.problems(value[key], declared[key], f"{where}.{key}")
        return found


def _is(value: object, expected: Any) -> bool:
    if expected is NoneType:
        return value is None
    if expected in (int, float) and isinstance(value, bool):
        return False
    if expected is float:
        return isinstance(value, int | float)
    if expected in (int, str, bool):
        return isinstance(value, expected)
    raise AssertionError(f"the checker does not know the type {expected!r}")


def _name(value: object) -> str:
    if value is None or value is NoneType:
        return "null"
    return value.__name__ if isinstance(value, type) else type(value).__name__


def specs_of(tree: dict[str, Any]) -> dict[str, Any]:
    """The specs of a compiled tree as the runner reads them: parsed from the JSON written."""
    return {
        path: json.loads(generated.content)
        for path, generated in tree.items()
        if path.startswith("specs/")
    }


def compiled(path: Path, system: bool) -> dict[str, Any]:
    """The specs of `path` compiled for each of its hosts (keyed `host:specs/...` in a fleet)."""
    found = {}
    for host in fleet_hosts(path):
        specs = specs_of(build(path, system=system, host=host)[1])
        found.update({f"{host}:{p}" if host else p: spec for p, spec in specs.items()})
    return found


def simulated_world(root: Path) -> dict[str, Any]:
    """The specs of the simulation's config: every watch kind, models with budgets, a command
    channel, in a zone with clock changes."""
    params = scenario.draw_params(random.Random(1), scenario.ZONES[0])
    text = scenario.config_text(params, root, "http://127.0.0.1:9")
    config = validate_document(load_text(text, "sim.yaml")).config
    return specs_of(render(config, Source("sim.yaml", text.encode()), python="/usr/bin/python3"))


def check(specs: dict[str, Any], checker: Checker | None = None) -> list[str]:
    checker = checker or Checker()
    return [
        line
        for path, spec in sorted(specs.items())
        for line in checker.problems(spec, SPEC_TYPES[spec["kind"]], path)
    ]


CONFIGS = [*EXAMPLES, *CASES]


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
@pytest.mark.parametrize("system", [False, True], ids=["user", "system"])
def test_every_compiled_spec_has_the_shape_of_its_type(config: Path, system: bool) -> None:
    assert check(compiled(config, system)) == []


def test_the_simulated_worlds_specs_have_the_shape_of_their_types(tmp_path: Path) -> None:
    assert check(simulated_world(tmp_path)) == []


def every_kind_coordinator() -> dict[str, Any]:
    [spec] = [s for s in compiled(EVERY_KIND, False).values() if s["kind"] == "coordinator"]
    return spec


def test_the_every_kind_config_has_every_kind_of_watch_and_channel() -> None:
    coordinator = every_kind_coordinator()
    kinds = ("deadline", "match", "file", "absence")
    assert {k for w in coordinator["watches"].values() for k in kinds if w[k]} == set(kinds)
    kinds = ("apprise", "apprise_secret", "command", "file")
    assert {k for c in coordinator["channels"].values() for k in kinds if c[k]} == set(kinds)


def test_every_type_and_key_is_written_by_the_compiler(tmp_path: Path) -> None:
    """A key the types declare and no spec has is one the compiler stopped writing (or never
    wrote): the types would promise the runner what it never gets."""
    checker = Checker()
    for config in CONFIGS:
        check(compiled(config, False), checker)
    check(simulated_world(tmp_path), checker)
    assert TYPED_DICTS - set(checker.met) == BASES
    never = {
        f"{t.__name__}.{key}"
        for t in checker.met
        for key in get_type_hints(t).keys() - checker.met[t] - HAND_WRITTEN_ONLY
    }
    assert never == set()


def test_the_output_modes_are_one_list() -> None:
    assert get_args(spectypes.OutputMode) == OUTPUT_MODES


def test_not_required_keys_are_told_apart_at_run_time() -> None:
    """The checker needs it: with `from __future__ import annotations` in runner/spectypes.py,
    Python 3.11 would count every key as required."""
    assert spectypes.ChannelJSON.__optional_keys__ == {"max_chars"}


# -- the checker refuses what does not agree ----------------------------------------------------


def _undeclared(spec: dict[str, Any]) -> None:
    spec["watches"]["reply"]["match"]["surprise"] = 1


def _missing(spec: dict[str, Any]) -> None:
    del spec["coordinator"]["delivery"]["attempts"]


def _wrong_type(spec: dict[str, Any]) -> None:
    spec["nag"]["ladder"]["priority"] = True


def _wrong_item(spec: dict[str, Any]) -> None:
    spec["nag"]["ladder"]["ladder"][1]["min_days"] = "1.5"


def _not_a_literal(spec: dict[str, Any]) -> None:
    spec["scope"] = "both"


def _not_required(spec: dict[str, Any]) -> None:
    del spec["channels"]["chat"]["max_chars"]  # a spec from before max_chars


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_undeclared, ["coordinator.watches.reply.match.surprise: not declared in MatchJSON"]),
        (_missing, ["coordinator.coordinator.delivery.attempts: missing"]),
        (_wrong_type, ["coordinator.nag.ladder.priority: bool is not int"]),
        (_wrong_item, ["coordinator.nag.ladder.ladder[1].min_days: str is not float"]),
        (_not_a_literal, ["coordinator.scope: 'both' is not one of ('user', 'system')"]),
        (_not_required, []),
    ],
)
def test_the_checker_refuses_a_spec_that_does_not_agree(change: Any, said: list[str]) -> None:
    spec = every_kind_coordinator()
    change(spec)
    assert Checker().problems(spec, spectypes.CoordinatorSpecJSON, "coordinator") == said

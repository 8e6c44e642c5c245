"""Mutation testing of the quick test tier: `python -m tests.mutation [MODULE ...]` (README:
"Development"). Needs `pip install mutmut==3.8.1 coverage==7.18.0` in the test environment.

1. A copy of the checkout (`.mutation/tree-0`) runs the test files that reach the modules once,
   under coverage, with each test's node id as the coverage context: in this process (switched
   by the plugin below) and in every `python -m runner` subprocess a test starts (coverage's
   `a1_coverage.pth` starts it from COVERAGE_PROCESS_START; the context is the test's
   PYTEST_CURRENT_TEST, which the subprocess inherits). So a line the runner executes only in
   a subprocess still names the tests that reach it.
2. mutmut 3's operators make the mutants of each module (every mutant inside a function, less
   mutmut's upper/lower-case string variants, which duplicate its "XX" string mutant).
3. Each mutant is written into a copy of the tree of its own (`.mutation/tree-N`) and its
   covering tests run there in a fresh `python -m pytest -x`, fastest first, with PYTHONPATH
   and the working directory on that copy: the runner subprocesses those tests start import
   the mutant too. Tests marked `systemd` are left out: their units run the installed package
   (`python -I`), never the copy, so they cannot see a mutant (and need a private manager).
   Nor are tests slower than --max-test-seconds (15 s) in the coverage run: the simulation
   and the reference day would cost every surviving mutant minutes. Tests that killed the
   module's earlier mutants run first. A line run only at import (a class body) counts as
   covered by every test of its module; a line inside a statement (a long string's second
   line) by the tests of the statement's first line; memo caches are emptied before each
   test of the coverage run, so a test served from a cache still counts as covering. Tests
   that run the runner as `nobody` (from a copy, by an interpreter without coverage) are
   never recorded: they run against every mutant of a runner module.

Report: `.mutation/report.md` (per-module table, every survivor with its diff line) and
`.mutation/results.json`. `--rerun-survivors` runs only the previous run's survivors (after
adding tests) and the mutants a stopped run did not reach; `--resume` keeps the verdicts a
stopped run reached; `--jobs N` runs N mutants at a time (default 2); VIGIL_MUTATION_DIR puts
the work elsewhere (two runs side by side).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("VIGIL_MUTATION_DIR") or ROOT / ".mutation")
"""Where the trees, coverage and results live (VIGIL_MUTATION_DIR: two runs side by side)."""
MAX_TEST_SECONDS = 15.0
"""Tests slower than this in the coverage run are not run against mutants (--max-test-seconds):
the whole-system tier (the long-horizon simulation, the reference day) would make every
surviving mutant cost minutes; its own invariants are measured on their own."""

MODULES = {
    "nag": "runner/rules/nag.py",
    "watches": "runner/rules/watches.py",
    "pending": "runner/rules/pending.py",
    "watchstate": "runner/rules/watchstate.py",
    "compose": "runner/compose.py",
    "budget": "runner/budget.py",
    "spend": "runner/spend.py",
    "intake": "runner/intake.py",
    "outbox": "runner/delivery/outbox.py",
    "cron": "compiler/language/cron.py",
}

# Test files never run against mutants: lint and lock checks, the installed wheel (it runs a
# built copy, not the tree), benchmarks.
NEVER = {"test_quality.py", "test_dependencies.py", "test_installed.py", "test_bench.py"}
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".mutation*",
    "__pycache__",
    ".hypothesis",
    ".*_cache",
    "build",
    "dist",
    "*.egg-info",
)
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not systemd"]


# --- the pytest plugin of the coverage run (`-p tests.mutation`) ------------------------------

_durations: dict[str, float] = {}
_failed: set[str] = set()


def pytest_runtest_setup(item: Any) -> None:
    _switch_context(item.nodeid)
    _forget_caches()


def _forget_caches() -> None:
    """Empty the package's memo caches (`parse_schedule`'s lru_cache) before each test of the
    coverage run: a test served from a cache an earlier test filled would not be recorded as
    running the lines it depends on, and a mutant there would skip the very test that kills it."""
    if not os.environ.get("MUTATION_DURATIONS"):
        return
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("runner", "compiler") or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


def pytest_runtest_logreport(report: Any) -> None:
    if os.environ.get("MUTATION_DURATIONS"):
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            _failed.add(report.nodeid)
        if report.when == "teardown":
            _switch_context("")


def pytest_sessionfinish() -> None:
    path = os.environ.get("MUTATION_DURATIONS")
    if path:
        Path(path).write_text(json.dumps({"durations": _durations, "failed": sorted(_failed)}))


def _switch_context(name: str) -> None:
    if not os.environ.get("MUTATION_DURATIONS"):
        return
    import coverage

    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(name)


# --- the driver ---------------------------------------------------------------------------------


@dataclass
class Mutant:
    module: str
    line: int
    end_line: int
    before: str
    after: str
    source: str = field(repr=False)
    tests: list[str] = field(default_factory=list)
    status: str = "pending"
    seconds: float = 0.0
    killed_by: str = ""


def stable_keys(mutants: list[Any]) -> list[str]:
    """What names a mutant across runs, whatever lines were added above it: its module, its
    change, and which of the identical changes in that module it is (by line)."""
    rank: dict[tuple[str, str, str], list[int]] = {}
    for m in mutants:
        rank.setdefault((m.module, m.before.strip(), m.after.strip()), []).append(m.line)
    keys = []
    for m in mutants:
        same = (m.module, m.before.strip(), m.after.strip())
        keys.append(f"{m.module}:{same[1]}=>{same[2]}#{sorted(rank[same]).index(m.line)}")
    return keys


def copy_tree(name: str) -> Path:
    target = WORK / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT, target, ignore=COPY_IGNORE, symlinks=True)
    return target


def environment(tree: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIGIL_LONG", None)  # the quick tier
    env.update(PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def test_files(paths: list[str]) -> list[str]:
    """The test files that can reach the modules: those naming a module or one that imports
    it (compiler.language.schedule imports compiler.language.cron), or running the runner or the
    CLI (the coordinator reaches every runner module)."""
    names = _importers({_dotted(path) for path in paths})
    stems = {name.rpartition(".")[2] for name in names}
    runner = any(path.startswith("runner/") for path in paths)
    found = []
    for test in sorted((ROOT / "tests").glob("test_*.py")):
        if test.name in NEVER:
            continue
        text = test.read_text()
        reaches = any(f".{stem}" in text or f"{stem}." in text for stem in stems)
        if runner and any(word in text for word in ("runner", "coordinator", "simulation")):
            reaches = True
        if "compiler.language.cron" in names and ("vigil(" in text or "compile" in text):
            reaches = True
        if reaches:
            found.append(f"tests/{test.name}")
    return found


def unmeasured_tests(files: list[str], durations: dict[str, float]) -> set[str]:
    """The tests that run the runner as `nobody` (from a copy of the package, with an
    interpreter `nobody` may run, which has no coverage): what they execute is never recorded,
    yet they do run the mutant. A test counts when its body, or a helper of its file it
    calls, passes `nobody=True`."""
    import ast

    names: set[tuple[str, str]] = set()
    for file in files:
        tree = ast.parse((ROOT / file).read_text())
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]

        def says_nobody(node: ast.AST) -> bool:
            return any(
                isinstance(kw, ast.keyword)
                and kw.arg == "nobody"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is True
                for kw in ast.walk(node)
            )

        helpers = {f.name for f in functions if not f.name.startswith("test") and says_nobody(f)}
        for function in functions:
            calls = {
                node.func.id
                for node in ast.walk(function)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            }
            if function.name.startswith("test") and (says_nobody(function) or calls & helpers):
                names.add((file, function.name))
    return {
        test
        for test in durations
        if (test.split("::")[0], test.split("::")[-1].split("[")[0]) in names
    }


def _dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _importers(modules: set[str]) -> set[str]:
    """`modules` and every module of the package that imports one of them, at any depth."""
    sources = {
        _dotted(str(path.relative_to(ROOT))): path.read_text()
        for folder in ("runner", "compiler")
        for path in (ROOT / folder).rglob("*.py")
    }
    found = set(modules)
    while True:
        more = {
            name
            for name, text in sources.items()
            if name not in found
            and any(
                re.search(rf"^\s*(from|import) {re.escape(module)}\b", text, re.M)
                or re.search(
                    rf"^\s*from {re.escape(module.rpartition('.')[0])} import .*\b"
                    rf"{module.rpartition('.')[2]}\b",
                    text,
                    re.M,
                )
                for module in found
            )
        }
        if not more:
            return found
        found |= more


def measure(paths: list[str], files: list[str]) -> tuple[dict[str, dict[int, set[str]]], dict]:
    """Run `files` once under coverage in tree-0: the tests covering each line, and each test's
    duration (failing tests are dropped: a mutant cannot be judged by them)."""
    import coverage

    tree = copy_tree("tree-0")
    data = WORK / "coverage"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    rcfile = WORK / "coveragerc"
    include = ", ".join(str(tree / path) for path in paths)
    rcfile.write_text(
        "[run]\nparallel = True\n"
        f"data_file = {data / 'cov'}\ninclude = {include}\n"
        "context = ${PYTEST_CURRENT_TEST-}\n"
    )
    durations = WORK / "durations.json"
    env = environment(tree, COVERAGE_PROCESS_START=str(rcfile), MUTATION_DURATIONS=str(durations))
    started = time.monotonic()
    print(f"coverage run of {len(files)} test files ...", flush=True)
    subprocess.run(
        [sys.executable, *PYTEST, "-p", "tests.mutation", f"--basetemp={WORK / 'tmp-0'}", *files],
        cwd=tree,
        env=env,
        check=False,
        stdout=(WORK / "coverage-run.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    timing = json.loads(durations.read_text())
    print(f"  {time.monotonic() - started:.0f} s, {len(timing['durations'])} tests", flush=True)
    cov = coverage.Coverage(config_file=str(rcfile))
    cov.combine(strict=True)
    combined = cov.get_data()
    failed = set(timing["failed"])
    covering: dict[str, dict[int, set[str]]] = {}
    for path in paths:
        lines: dict[int, set[str]] = {}
        for line, contexts in (combined.contexts_by_lineno(str(tree / path)) or {}).items():
            tests = {_test_id(context) for context in contexts} - {""} - failed
            lines[line] = {test for test in tests if test in timing["durations"]}
        covering[path] = lines
    return covering, timing


def _import_time_lines(path: str) -> set[int]:
    """Lines outside every function body: run once, when the module is imported."""
    import ast

    source = (ROOT / path).read_text()
    inside = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # The signature's default values are evaluated at import too: only the body is
            # run by a call.
            inside.update(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
    return set(range(1, source.count("\n") + 2)) - inside


def _statement_starts(path: str) -> dict[int, int]:
    """Each line of a statement spread over several lines -> the line it starts on, which is
    the line coverage records (a mutant in a string's second line is covered by the first)."""
    import ast

    starts: dict[int, int] = {}
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if not isinstance(node, ast.stmt):
            continue
        body = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
        # A compound statement's own lines are its header, up to its first inner statement.
        end = body[0].lineno - 1 if body else node.end_lineno or node.lineno
        for line in range(node.lineno + 1, end + 1):
            starts[line] = node.lineno
    return starts


def _test_id(context: str) -> str:
    context = context.strip("|")
    for phase in (" (setup)", " (call)", " (teardown)"):
        context = context.removesuffix(phase)
    return context


def make_mutants(path: str, call_arguments: bool = False) -> list[Mutant]:
    import libcst as cst
    from mutmut.configuration import reset_config
    from mutmut.mutation.file_mutation import create_mutations, deep_replace

    code = (ROOT / path).read_text()
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:  # mutmut reads its config from the cwd
        Path(scratch, "setup.cfg").write_text("[mutmut]\nsource_paths=src\n")
        Path(scratch, "src").mkdir()
        os.chdir(scratch)
        try:
            reset_config()
            module, mutations, _, _ = create_mutations(path, code)
        finally:
            os.chdir(here)
    original = module.code.splitlines(keepends=True)
    mutants = []
    for mutation in mutations:
        if mutation.contained_by_top_level_function is None:
            continue
        node, new = mutation.original_node, mutation.mutated_node
        if (
            isinstance(node, cst.SimpleString)
            and isinstance(new, cst.SimpleString)
            and new.value.lower() == node.value.lower()
        ):
            continue  # mutmut's case variants of a string: the "XX" mutant stands for them
        if isinstance(node, cst.Call) and not call_arguments:
            continue  # an argument dropped or made None: only with --call-arguments
        source = deep_replace(module, node, new).code
        changed = source.splitlines(keepends=True)
        matcher = difflib.SequenceMatcher(a=original, b=changed, autojunk=False)
        blocks = [op for op in matcher.get_opcodes() if op[0] != "equal"]
        if not blocks:
            continue
        _, a0, a1, b0, b1 = blocks[0][0], blocks[0][1], blocks[-1][2], blocks[0][3], blocks[-1][4]
        mutants.append(
            Mutant(
                module=path,
                line=a0 + 1,
                end_line=max(a1, a0 + 1),
                before="".join(original[a0:a1]).rstrip(),
                after="".join(changed[b0:b1]).rstrip(),
                source=source,
            )
        )
    return mutants


def run_mutants(
    mutants: list[Mutant], jobs: int, durations: dict[str, float], progress: Any
) -> None:
    trees = [copy_tree(f"tree-{slot + 1}") for slot in range(jobs)]
    queue = list(mutants)
    running: dict[int, tuple[subprocess.Popen[bytes], Mutant, float, float]] = {}
    kills: Counter[tuple[str, str]] = Counter()
    done = 0
    while queue or running:
        for slot in range(jobs):
            if slot in running or not queue:
                continue
            mutant = queue.pop(0)
            # Tests that killed this module's mutants so far first: most mutants fall to them.
            mutant.tests.sort(key=lambda test: (-kills[(mutant.module, test)], durations[test]))
            tree = trees[slot]
            (tree / mutant.module).write_text(mutant.source)
            timeout = 20 + 3 * sum(durations[test] for test in mutant.tests)
            log = (WORK / f"slot-{slot + 1}.log").open("w")
            process = subprocess.Popen(
                [
                    sys.executable,
                    *PYTEST,
                    "-x",
                    f"--basetemp={WORK / f'tmp-{slot + 1}'}",
                    *mutant.tests,
                ],
                cwd=tree,
                env=environment(tree),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            running[slot] = (process, mutant, time.monotonic(), timeout)
        time.sleep(0.05)
        for slot, (process, mutant, started, timeout) in list(running.items()):
            code = process.poll()
            elapsed = time.monotonic() - started
            if code is None and elapsed < timeout:
                continue
            if code is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                mutant.status = "timeout"
            else:
                mutant.status = judge(code, slot + 1, mutant)
            mutant.seconds = round(elapsed, 2)
            if mutant.killed_by:
                kills[(mutant.module, mutant.killed_by)] += 1
            (trees[slot] / mutant.module).write_text((ROOT / mutant.module).read_text())
            del running[slot]
            done += 1
            if done % 25 == 0 or not (queue or running):
                print(f"  {done}/{len(mutants)} mutants run", flush=True)
                progress()


def judge(code: int, slot: int, mutant: Mutant) -> str:
    if code == 0:
        return "survived"
    log = (WORK / f"slot-{slot}.log").read_text()
    if code == 4 and "ImportError while loading conftest" in log:
        mutant.killed_by = "tests/conftest.py (the mutant breaks its import)"
        return "killed"
    if code == 4 and "ERROR collecting" in log:
        code = 2  # a test module failed to import; pytest names its tests "not found" (4)
    if code in (1, 2, 3):  # a test failed, collection (an import) failed, pytest crashed
        for line in log.splitlines():
            if line.startswith(("FAILED ", "ERROR ")):
                mutant.killed_by = line.split(" - ")[0].split(" ", 1)[1]
                break
        return "killed"
    return f"error (pytest exit {code})"


def report(mutants: list[Mutant], paths: list[str], seconds: float, label: str) -> str:
    lines = [
        f"# Mutation testing: {label}",
        "",
        f"{len(mutants)} mutants in {seconds / 60:.1f} min. Killed = a covering test failed; "
        "no tests = no quick-tier test executes the line.",
        "",
        "| module | killed | timeout | survived | no tests | errors | not run | total | killed % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in paths:
        mine = [mutant for mutant in mutants if mutant.module == path]
        count = {s: sum(m.status == s for m in mine) for s in ("killed", "timeout", "survived")}
        no_tests = sum(m.status == "no tests" for m in mine)
        errors = sum(m.status.startswith("error") for m in mine)
        waiting = sum(m.status == "pending" for m in mine)
        judged = len(mine) - waiting
        rate = 100 * (count["killed"] + count["timeout"]) / judged if judged else 0.0
        lines.append(
            f"| {path} | {count['killed']} | {count['timeout']} | {count['survived']} | "
            f"{no_tests} | {errors} | {waiting} | {len(mine)} | {rate:.1f} |"
        )
    lines += ["", "## Survivors (and mutants no test reaches)", ""]
    for mutant in mutants:
        if mutant.status in ("survived", "no tests") or mutant.status.startswith("error"):
            lines.append(
                f"- `{mutant.module}:{mutant.line}` ({mutant.status}, {len(mutant.tests)} tests): "
                f"`{mutant.before.strip()[:120]}` -> `{mutant.after.strip()[:120]}`"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument(
        "modules", nargs="*", help=f"names or paths (default: all of {list(MODULES)})"
    )
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2)")
    parser.add_argument("--rerun-survivors", action="store_true", help="only last run's survivors")
    parser.add_argument("--label", default="", help="a title for the report")
    parser.add_argument(
        "--max-test-seconds",
        type=float,
        default=MAX_TEST_SECONDS,
        help=f"leave out tests slower than this (default {MAX_TEST_SECONDS:g})",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the verdicts of the previous run's mutants"
    )
    parser.add_argument(
        "--call-arguments", action="store_true", help="also mutate call arguments (twice the time)"
    )
    args = parser.parse_args(argv)
    paths = [MODULES.get(name, name) for name in args.modules] or list(MODULES.values())
    for path in [path for path in paths if not (ROOT / path).exists()]:
        print(f"{path}: not in this checkout, left out", flush=True)
        paths.remove(path)
    started = time.monotonic()
    WORK.mkdir(exist_ok=True)
    results = WORK / "results.json"
    previous = json.loads(results.read_text()) if results.exists() else []
    mutants = [m for path in paths for m in make_mutants(path, args.call_arguments)]
    keys = dict(zip(map(id, mutants), stable_keys(mutants), strict=True))
    earlier = [Mutant(**{k: v for k, v in r.items() if k != "key"}) for r in previous]
    for record, key in zip(previous, stable_keys(earlier), strict=True):
        record["key"] = key  # a report of an older version of this tool, too
    current = set(keys.values())  # a verdict on a line changed since no longer counts
    previous = [record for record in previous if record["key"] in current]
    mutants, kept = _still_to_judge(args, mutants, keys, previous, paths)
    print(f"{len(mutants)} mutants in {len(paths)} modules", flush=True)
    covering, timing = measure(paths, test_files(paths))
    durations = timing["durations"]
    slow = {test for test, seconds in durations.items() if seconds > args.max_test_seconds}
    print(f"  {len(slow)} tests over {args.max_test_seconds:g} s left out: {sorted(slow)}")
    _assign_tests(mutants, paths, covering, durations, slow)

    def save() -> str:
        records = [{**asdict(m), "key": keys[id(m)], "source": None} for m in mutants]
        if kept:
            records = [*kept.values(), *records]
        results.write_text(json.dumps(records, indent=1))
        everything = [Mutant(**{k: v for k, v in r.items() if k != "key"}) for r in records]
        text = report(everything, paths, time.monotonic() - started, args.label or str(ROOT))
        (WORK / "report.md").write_text(text)
        return text

    run_mutants([m for m in mutants if m.status == "pending"], args.jobs, durations, save)
    print(save())
    return 0


def _still_to_judge(
    args: argparse.Namespace,
    mutants: list[Mutant],
    keys: dict[int, str],
    previous: list[dict[str, Any]],
    paths: list[str],
) -> tuple[list[Mutant], dict[str, dict[str, Any]]]:
    """(the mutants to run, the previous verdicts kept): with --rerun-survivors the survivors
    and the mutants new since, with --resume those a stopped run did not judge; else all."""
    kept: dict[str, dict[str, Any]] = {}
    if args.rerun_survivors:
        again = {
            m["key"]
            for m in previous
            if m["status"] in ("survived", "no tests", "pending") or m["status"].startswith("error")
        }
        kept = {m["key"]: m for m in previous if m["key"] not in again}
        judged = {m["key"] for m in previous}  # a mutant new since (its line changed) runs too
        mutants = [m for m in mutants if keys[id(m)] in again or keys[id(m)] not in judged]
    elif args.resume:  # a run stopped half-way: the mutants it judged keep their verdict
        kept = {m["key"]: m for m in previous if m["status"] not in ("pending", "no tests")}
        kept = {key: m for key, m in kept.items() if m["module"] in paths}
        mutants = [mutant for mutant in mutants if keys[id(mutant)] not in kept]
    return mutants, kept


def _assign_tests(
    mutants: list[Mutant],
    paths: list[str],
    covering: dict[str, dict[int, set[str]]],
    durations: dict[str, float],
    slow: set[str],
) -> None:
    """Each mutant's tests, fastest first: those that ran its lines, less the slow ones; a
    mutant no test reaches is marked "no tests"."""
    at_import = {path: _import_time_lines(path) for path in paths}
    starts = {path: _statement_starts(path) for path in paths}
    as_nobody = unmeasured_tests(test_files(paths), durations) - slow
    print(
        f"  {len(as_nobody)} tests run the runner where coverage cannot follow: {sorted(as_nobody)}"
    )
    for mutant in mutants:
        lines = covering[mutant.module]
        span = range(mutant.line, mutant.end_line + 1)
        recorded = {starts[mutant.module].get(n, n) for n in span}
        tests = set().union(*(lines.get(n, set()) for n in {*span, *recorded}))
        if all(n in at_import[mutant.module] for n in span):
            # Run at import (a class body): recorded only for the tests whose subprocess
            # imported the module, yet every test that runs the module's code may notice.
            tests = set().union(*lines.values())
        if mutant.module.startswith("runner/"):
            tests |= as_nobody
        mutant.tests = sorted(tests - slow, key=lambda test: (durations[test], test))
        if not mutant.tests:
            mutant.status = "no tests"


if __name__ == "__main__":
    sys.exit(main())

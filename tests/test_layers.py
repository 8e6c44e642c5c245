"""The compiler's layers, as its imports show them: a module imports from its own layer and lower
ones only (`compiler.LAYERS`, lowest first), the runner never imports the compiler, no import
cycle among the modules of either, and nothing below the cli prints; the contract modules
import nothing of vigil, and the runner imports its spec types for mypy only.

Every import counts, at module level or inside a function alike. Each check is a function of
the imports (or the source) it is given, so the cases at the end feed it wrong ones to show
that it fails."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

import compiler
from compiler import LAYERS
from tests.conftest import ROOT

PACKAGES = ("compiler", "runner")
SPEAKS = "compiler.cli"
"""The one layer that prints: anything else hands what it has to say to it."""
OUTPUT = ("stdout", "stderr", "__stdout__", "__stderr__")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    path: str  # its file, from the repository's root
    line: int
    statement: str  # as written, for the message
    target: str  # the module imported


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the compiler and the runner."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(module: str, path: Path, known: Iterable[str], root: Path = ROOT) -> list[Import]:
    """The imports of compiler and runner modules in one file. `from a import b` imports the
    module a.b when there is one, else a."""
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    relative = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        statement = ast.unparse(node)
        for target in dict.fromkeys(targets):
            if target.split(".")[0] in PACKAGES and target != module:
                found.append(Import(module, relative, node.lineno, statement, target))
    return found


def all_imports(root: Path = ROOT) -> list[Import]:
    files = module_files(root)
    return [found for module, path in files.items() for found in imports_of(module, path, files)]


def layer_of(module: str) -> str | None:
    """A compiler module's layer: its subpackage, or "foundation" for the modules at the top."""
    parts = module.split(".")
    if parts[0] != "compiler":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS[1:] else "foundation"


def layer_problems(imports: Iterable[Import]) -> list[str]:
    problems = []
    for found in imports:
        where = f"{found.path}:{found.line}: `{found.statement}`"
        mine, theirs = layer_of(found.module), layer_of(found.target)
        if found.module.split(".")[0] == "runner" and theirs is not None:
            problems.append(f"{where}: the runner imports the compiler ({found.target})")
        elif mine is not None and theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
            problems.append(f"{where}: {mine} imports {found.target}, of the higher layer {theirs}")
    return problems


def cycles(imports: Iterable[Import]) -> list[str]:
    """One cycle of each group of modules that import each other, as a path of imports."""
    graph: dict[str, dict[str, Import]] = {}
    for found in imports:
        graph.setdefault(found.module, {}).setdefault(found.target, found)
    said = []
    for group in _tangles(graph):
        start = min(group)
        path = _path_back(graph, group, start)
        steps = [graph[a][b] for a, b in pairwise(path)]
        said.append(
            " -> ".join(path)
            + "".join(f"\n    {step.path}:{step.line}: `{step.statement}`" for step in steps)
        )
    return said


def _tangles(graph: dict[str, dict[str, Import]]) -> Iterator[set[str]]:
    """Strongly connected groups of more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = _pop_group(stack, on_stack, node)
                if len(group) > 1:
                    yield group


def _pop_group(stack: list[str], on_stack: set[str], root: str) -> set[str]:
    """The modules above `root` on the stack, and `root`: the group it is the root of."""
    group = set()
    while True:
        member = stack.pop()
        on_stack.discard(member)
        group.add(member)
        if member == root:
            return group


def _path_back(graph: dict[str, dict[str, Import]], group: set[str], start: str) -> list[str]:
    """The shortest path of imports from `start` back to itself, within `group`."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, {})):
            if child == start:
                path = [start]
                step: str | None = node
                while step is not None:
                    path.append(step)
                    step = came_from[step]
                return path[::-1]
            if child in group and child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")


def output_problems(module: str, path: str, source: str) -> list[str]:
    """print() calls and uses of sys.stdout/sys.stderr outside the cli. A module's
    `if __name__ == "__main__":` block is a command of its own and may print."""
    if module == SPEAKS or module.startswith(SPEAKS + "."):
        return []
    tree = ast.parse(source, path)
    main_blocks = [node for node in tree.body if _is_main_block(node)]
    skipped = {id(inner) for block in main_blocks for inner in ast.walk(block)}
    names = {"sys"} | {  # `import sys as s` too
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "sys" and alias.asname
    }
    problems = []
    for node in ast.walk(tree):
        if id(node) not in skipped:
            problems += _output_uses(node, path, names)
    return sorted(problems, key=lambda problem: int(problem.split(":")[1]))


def _output_uses(node: ast.AST, path: str, sys_names: set[str]) -> list[str]:
    """The problem of one node, if it is a print() call, typer's (or click's) echo, a use of
    sys.stdout/sys.stderr or an import of them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return [f"{path}:{node.lineno}: print()"] if node.func.id == "print" else []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        echo = node.func.attr in ("echo", "secho")
        return [f"{path}:{node.lineno}: {ast.unparse(node.func)}()"] if echo else []
    if isinstance(node, ast.Attribute) and node.attr in OUTPUT:
        if isinstance(node.value, ast.Name) and node.value.id in sys_names:
            return [f"{path}:{node.lineno}: {node.value.id}.{node.attr}"]
        return []
    if isinstance(node, ast.ImportFrom) and node.module == "sys":
        return [
            f"{path}:{node.lineno}: from sys import {alias.name}"
            for alias in node.names
            if alias.name in OUTPUT
        ]
    return []


def _is_main_block(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
        )
    )


# --- the tree as it is ------------------------------------------------------------------------


def test_every_import_goes_to_the_same_layer_or_a_lower_one() -> None:
    problems = layer_problems(all_imports())
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    imports = [i for i in all_imports() if i.module.split(".")[0] == package]
    found = cycles(imports)
    assert not found, "import cycles:\n" + "\n".join(found)


def test_only_the_cli_prints() -> None:
    files = module_files()
    problems = [
        problem
        for module, path in files.items()
        if module.startswith("compiler")
        for problem in output_problems(
            module, path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")
        )
    ]
    assert not problems, "output outside compiler/cli/:\n" + "\n".join(problems)


def test_every_module_is_in_a_layer_the_package_docstring_names() -> None:
    """The docstring lists the layers in order and the foundation modules by name."""
    doc = compiler.__doc__ or ""
    positions = [doc.find(f"- {layer}") for layer in LAYERS]
    assert -1 not in positions and positions == sorted(positions), doc
    for module in module_files():
        layer = layer_of(module)
        assert layer is None or layer in LAYERS, module
        if layer == "foundation" and module != "compiler":
            assert module.rpartition(".")[2] in doc, f"{module} is not named in compiler/__init__"


# --- the checks can fail ------------------------------------------------------------------------


def wrong(module: str, target: str) -> Import:
    path = module.replace(".", "/") + ".py"
    return Import(module, path, 3, f"from {target} import something", target)


@pytest.mark.parametrize(
    ("found", "said"),
    [
        (
            wrong("compiler.language.loader", "compiler.cli.report"),
            "compiler/language/loader.py:3: `from compiler.cli.report import something`: "
            "language imports compiler.cli.report, of the higher layer cli",
        ),
        (
            wrong("compiler.errors", "compiler.language.model"),
            "foundation imports compiler.language.model, of the higher layer language",
        ),
        (
            wrong("compiler.install.apply", "compiler.operate.status"),
            "install imports compiler.operate.status, of the higher layer operate",
        ),
        (
            wrong("runner.job", "compiler.errors"),
            "runner/job.py:3: `from compiler.errors import something`: the runner imports the "
            "compiler (compiler.errors)",
        ),
    ],
)
def test_an_import_of_a_higher_layer_fails(found: Import, said: str) -> None:
    [problem] = layer_problems([found])
    assert problem.endswith(said)


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("compiler.cli.commands", "compiler.install.workflows"),
        ("compiler.language.validate", "compiler.language.model"),
        ("compiler.generate.render", "compiler"),
        ("compiler.operate.cost", "runner.spend"),
    ],
)
def test_an_import_of_the_same_or_a_lower_layer_passes(module: str, target: str) -> None:
    assert layer_problems([wrong(module, target)]) == []


def test_a_cycle_fails_with_its_path() -> None:
    imports = [
        wrong("compiler.language.loader", "compiler.language.schedule"),
        wrong("compiler.language.schedule", "compiler.language.cron"),
        wrong("compiler.language.cron", "compiler.language.loader"),
        wrong("compiler.language.cron", "compiler.errors"),
    ]
    [cycle] = cycles(imports)
    assert cycle.splitlines()[0] == (
        "compiler.language.cron -> compiler.language.loader -> compiler.language.schedule "
        "-> compiler.language.cron"
    )
    assert "compiler/language/cron.py:3: `from compiler.language.loader import" in cycle
    assert cycles(imports[1:]) == []


@pytest.mark.parametrize(
    ("module", "source", "said"),
    [
        ("compiler.operate.control", "print('started')\n", ["compiler/x.py:1: print()"]),
        (
            "compiler.install.apply",
            "import sys\n\ndef f():\n    sys.stderr.write('x')\n",
            ["compiler/x.py:4: sys.stderr"],
        ),
        (
            "compiler.errors",
            "from sys import stdout\n",
            ["compiler/x.py:1: from sys import stdout"],
        ),
        (
            "compiler.operate.status",
            "import sys as s\nimport typer\ns.stdout.write('x')\ntyper.echo('y')\n",
            ["compiler/x.py:3: s.stdout", "compiler/x.py:4: typer.echo()"],
        ),
        ("compiler.operate.doctor", "done = run(['x']).stderr\n", []),  # a process's output
        ("compiler.cli.views", "import sys\nprint('x', file=sys.stderr)\n", []),
        ("compiler.generate.regenerate", "if __name__ == '__main__':\n    print('done')\n", []),
    ],
)
def test_output_outside_the_cli_fails(module: str, source: str, said: list[str]) -> None:
    assert output_problems(module, "compiler/x.py", source) == said


NOT_A_FOLDER = {("compiler.layout", "/state")}
"""The same word, another thing: system scope's state directory is /var/lib/vigil/NAME/state."""


def _path_parts(node: ast.AST) -> list[ast.expr]:
    """The pieces a path is built from at `node`: `a / "x"`, `a + "/x"`, os.path.join(...),
    joinpath(...), Path(...), and the text after a placeholder in f"{a}/x"."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Add):
        return [node.right]
    if isinstance(node, ast.Call):
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        return list(node.args) if name in ("join", "joinpath", "Path") else []
    if isinstance(node, ast.JoinedStr):
        pieces = node.values
        return [b for a, b in pairwise(pieces) if isinstance(a, ast.FormattedValue)]
    return []


def _names_a_folder(text: str, folders: set[str]) -> bool:
    """Whether `text` is a folder name, or starts with one as a path step ("/inbox/...")."""
    if text.strip("/") in folders:
        return True
    steps = text.split("/")
    return text.startswith("/") and len(steps) > 1 and steps[1] in folders


def test_the_contract_imports_nothing_and_its_folder_names_are_nowhere_else() -> None:
    """runner/contract.py is loaded by every runner start and by the compiler: it imports
    nothing, and no other module builds a path from a folder name of the state directory."""
    import runner.contract as contract

    source = Path(contract.__file__).read_text(encoding="utf-8")
    imports = [
        f"runner/contract.py:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and getattr(node, "module", None) != "__future__"
    ]
    assert not imports, "the contract imports:\n" + "\n".join(imports)
    folders = {
        contract.INBOX,
        contract.PROCESSING,
        contract.OUTBOX,
        contract.DEAD,
        contract.STATE,
        contract.REJECTED,
        contract.TMP,
        contract.RUNS,
    }
    found = []
    for module, path in module_files().items():
        if module == "runner.contract":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found += [
                f"{path.relative_to(ROOT)}:{part.lineno}: {part.value!r}"
                for part in _path_parts(node)
                if isinstance(part, ast.Constant)
                and _names_a_folder(str(part.value), folders)
                and (module, part.value) not in NOT_A_FOLDER
            ]
    assert not found, "folder names of the state directory outside runner/contract.py:\n" + (
        "\n".join(found)
    )


SPEC_TYPES = "runner.spectypes"


def runtime_imports(path: str, source: str, target: str = SPEC_TYPES) -> list[str]:
    """Imports of `target` in a module's source that run: those outside `if TYPE_CHECKING:`."""
    tree = ast.parse(source)
    for_mypy = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }
    package = target.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == package:
            names = [f"{package}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if target in names and id(node) not in for_mypy:
            found.append(f"{path}:{node.lineno}: `{ast.unparse(node)}`")
    return found


def test_the_spec_types_import_only_typing_and_the_runner_reads_them_for_mypy_only() -> None:
    """runner/spectypes.py costs milliseconds to import (typing, and classes built at import):
    no runner start may pay them, so runner modules import it under `if TYPE_CHECKING:`."""
    files = module_files()
    tree = ast.parse(files[SPEC_TYPES].read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"typing"}
    found = [
        line
        for module, path in files.items()
        if module.split(".")[0] == "runner"
        for line in runtime_imports(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
    ]
    assert not found, "the runner imports its spec types at run time:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            "from runner.spectypes import WatchJSON\n",
            ["x.py:1: `from runner.spectypes import WatchJSON`"],
        ),
        ("from runner import spectypes\n", ["x.py:1: `from runner import spectypes`"]),
        ("def f():\n    import runner.spectypes\n", ["x.py:2: `import runner.spectypes`"]),
        ("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from runner.spectypes import X\n", []),
        ("import typing\nif typing.TYPE_CHECKING:\n    from runner import spectypes\n", []),
    ],
)
def test_a_run_time_import_of_the_spec_types_fails(source: str, said: list[str]) -> None:
    assert runtime_imports("x.py", source) == said


PARSED = """
from compiler.language import schedule
import runner.clock

def late() -> None:
    from compiler.cli import report

if TYPE_CHECKING:
    from compiler.install.plan import Plan
"""


def test_imports_are_read_at_every_depth_of_a_file(tmp_path: Path) -> None:
    """The parser itself: imports at module level, inside a function and under TYPE_CHECKING
    all count, each with its line (what the layer and cycle checks are fed)."""
    path = tmp_path / "compiler" / "language" / "sample.py"
    path.parent.mkdir(parents=True)
    path.write_text(PARSED, encoding="utf-8")
    known = {"compiler.language.schedule", "compiler.cli.report", "compiler.install.plan"}
    found = imports_of("compiler.language.sample", path, known, root=tmp_path)
    assert [(i.line, i.target) for i in found] == [
        (2, "compiler.language.schedule"),
        (3, "runner.clock"),
        (6, "compiler.cli.report"),
        (9, "compiler.install.plan"),
    ]
    problems = layer_problems(found)
    assert [p.split(":")[1] for p in problems] == ["6", "9"]


def test_no_two_classes_share_a_name() -> None:
    """A class name says which one it is, across both packages (a reader, a traceback, an
    import never has to guess between two Outcomes or two Ledgers)."""
    where: dict[str, list[str]] = {}
    for path in module_files().values():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not shared, shared


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ('path = state / "inbox"', True),
        ('path = os.path.join(state, "processing", name)', True),
        ('path = state.joinpath("outbox")', True),
        ('path = Path(state, "rejected")', True),
        ('path = f"{state}/tmp/{name}"', True),
        ('path = state + "/runs.jsonl"', True),
        ("path = state / INBOX", False),
        ('text = f"{count} findings in the inbox"', False),
        ('text = f"kept in {OUTBOX}/{DEAD}"', False),
    ],
)
def test_the_folder_check_finds_a_path_built_from_a_folder_name(source: str, caught: bool) -> None:
    import runner.contract as contract

    folders = {contract.INBOX, contract.PROCESSING, contract.OUTBOX, contract.REJECTED}
    folders |= {contract.TMP, contract.RUNS}
    hits = [
        part
        for node in ast.walk(ast.parse(source))
        for part in _path_parts(node)
        if isinstance(part, ast.Constant) and _names_a_folder(str(part.value), folders)
    ]
    assert bool(hits) is caught

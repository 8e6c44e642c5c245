"""Regenerate the committed outputs: schemas/, units/ (the compiled examples) and
compiler/generate/compiled/ (the templates compiled by jinja2).

    python -m compiler.generate.regenerate          # write them
    python -m compiler.generate.regenerate --check  # exit 1 if anything is stale

units/ is compiled with fixed settings so it does not depend on the machine: the interpreter
/usr/bin/python3, the config named by its path in the repository, and no git revision (the
revision would change with every commit that regenerates it). An example with `fleet:` is
compiled once per host, into units/<example>/<host>/.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from compiler.errors import ExitCode
from compiler.fsutil import atomic_write
from compiler.generate import templating
from compiler.generate.build import write_tree
from compiler.generate.render import Source, Tree, render
from compiler.language import schemas
from compiler.language.loader import load_file
from compiler.language.validate import validate_document

ROOT = Path(__file__).resolve().parents[2]
COMPILED = Path("compiler/generate/compiled")
PYTHON = "/usr/bin/python3"


def example_trees(root: Path = ROOT) -> dict[str, Tree]:
    """Each example's compiled tree by its directory under units/: the example's name, and
    `<name>/<host>` for each host of a fleet."""
    trees = {}
    for example in sorted((root / "examples").glob("*.yaml")):
        label = example.relative_to(root).as_posix()
        config = validate_document(load_file(example)).config
        source = Source(label, example.read_bytes(), None)
        if config.hosts is None:
            trees[example.stem] = render(config, source, python=PYTHON)
            continue
        for host in config.hosts:
            trees[f"{example.stem}/{host}"] = render(config, source, python=PYTHON, host=host)
    return trees


def stale(root: Path = ROOT) -> list[str]:
    """Committed files that differ from what the code generates now."""
    problems = []
    for name, text in schemas.render_all().items():
        path = root / "schemas" / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            problems.append(f"schemas/{name}")
    trees = example_trees(root)
    for stem, tree in trees.items():
        for relative, generated in tree.items():
            path = root / "units" / stem / relative
            if not path.exists() or path.read_bytes() != generated.content:
                problems.append(f"units/{stem}/{relative}")
    existing = {p.relative_to(root).as_posix() for p in (root / "units").rglob("*") if p.is_file()}
    wanted = {f"units/{stem}/{rel}" for stem, tree in trees.items() for rel in tree}
    problems += sorted(existing - wanted)
    changed, gone = _compiled_changes(root)
    problems += [(COMPILED / name).as_posix() for name in [*changed, *gone]]
    return problems


def _compiled_changes(root: Path) -> tuple[dict[str, str], list[str]]:
    """The templates' generated code that the committed files do not hold (file name -> text),
    and the committed files of templates that are gone."""
    compiled = templating.compiled_templates()
    changed = {
        name: text
        for name, text in compiled.items()
        if not (root / COMPILED / name).exists()
        or (root / COMPILED / name).read_text(encoding="utf-8") != text
    }
    present = {path.name for path in (root / COMPILED).glob("*.py.txt")}
    return changed, sorted(present - set(compiled))


def regenerate(root: Path = ROOT) -> None:
    """Write schemas/, units/ and the compiled templates as the code generates them now."""
    schemas.write_all(root / "schemas")
    trees = example_trees(root)
    wanted = {stem.split("/", 1)[0] for stem in trees}
    for child in (root / "units").iterdir() if (root / "units").exists() else ():
        if child.is_dir() and child.name not in wanted:
            shutil.rmtree(child)
    for stem, tree in trees.items():
        write_tree(tree, root / "units" / stem)
    changed, gone = _compiled_changes(root)
    for name in gone:
        (root / COMPILED / name).unlink()
    for name, text in changed.items():
        atomic_write(root / COMPILED / name, text)


if __name__ == "__main__":  # the maintainer's command: what it prints is its interface
    if "--check" in sys.argv[1:]:
        problems = stale()
        for problem in problems:
            print(f"stale: {problem}", file=sys.stderr)
        raise SystemExit(ExitCode.FAILED if problems else ExitCode.OK)
    regenerate()
    print(f"regenerated schemas/, units/ and {COMPILED}/", file=sys.stderr)

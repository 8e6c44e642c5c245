"""Which jobs a new tree adds or changes against the installed generation, and in which keys:
what `vigil try --changed` and canary applies try, and what a failure after a change names."""

from __future__ import annotations

import json
from dataclasses import dataclass

from compiler.errors import VigilError
from compiler.generate.render import Tree
from compiler.install.generations import Installation
from compiler.language.model import Config, Job
from runner.contract import job_unit, service, timer


def job_files(name: str, job: str) -> tuple[str, ...]:
    """A job's files in a rendered tree: its runner script, spec, service and timer."""
    stem = job_unit(name, job)
    return (f"bin/{stem}", f"specs/{job}.json", f"units/{service(stem)}", f"units/{timer(stem)}")


@dataclass(frozen=True)
class JobChange:
    job: str
    new: bool
    keys: tuple[str, ...]
    """The job's config keys that changed; empty when only its generated files did (a new
    vigil, a changed default, secret or model price)."""

    def words(self) -> str:
        if self.new:
            return "new"
        return ", ".join(self.keys) + " changed" if self.keys else "generated files changed"


def changed_jobs(config: Config, tree: Tree, installation: Installation) -> list[JobChange]:
    """Jobs of `config` (rendered as `tree`) that are new or differ from the installed
    generation, in config order."""
    current = installation.current()
    old_tree = installation.load_tree(current) if current is not None else None
    return changes_between(old_tree, tree, config.name, config.jobs)


def changed_job_files(old_tree: Tree, new_tree: Tree) -> dict[str, str]:
    """job -> how it changed, between two stored generations (a rollback's record)."""
    jobs = _jobs_of(new_tree)
    name = json.loads(new_tree["manifest.json"].content).get("name", "")
    if jobs is None:
        return {}
    return {c.job: c.words() for c in changes_between(old_tree, new_tree, name, jobs)}


def changes_between(
    old_tree: Tree | None, tree: Tree, name: str, jobs: dict[str, Job]
) -> list[JobChange]:
    # A fleet host's tree holds only the jobs that host runs.
    jobs = {job: model for job, model in jobs.items() if f"specs/{job}.json" in tree}
    if old_tree is None:
        return [JobChange(job, True, ()) for job in jobs]
    old_jobs = _jobs_of(old_tree)
    changes = []
    for job in jobs:
        files = job_files(name, job)
        if not any(path in old_tree for path in files):
            changes.append(JobChange(job, True, ()))
            continue
        if all(_content(tree, path) == _content(old_tree, path) for path in files):
            continue
        before = old_jobs.get(job) if old_jobs is not None else None
        keys = _changed_keys(before, jobs[job]) if before is not None else ()
        changes.append(JobChange(job, False, keys))
    return changes


def _content(tree: Tree, path: str) -> bytes | None:
    generated = tree.get(path)
    return generated.content if generated is not None else None


def _jobs_of(tree: Tree) -> dict[str, Job] | None:
    """The jobs of the config a generation was made from (None: it no longer validates)."""
    from compiler.language.loader import load_text
    from compiler.language.validate import validate_document

    source = tree.get("config.yaml")
    if source is None:
        return None
    try:
        document = load_text(source.content, "config.yaml")
        return validate_document(document, check_calendar=False).config.jobs
    except VigilError:
        return None


def _changed_keys(before: Job, after: Job) -> tuple[str, ...]:
    old, new = before.model_dump(), after.model_dump()
    return tuple(key for key in type(after).model_fields if old.get(key) != new.get(key))

"""Templates load from the code generated for them ahead of time, and only while it is current:
an edited template is compiled from its text, never rendered stale."""

from __future__ import annotations

import pytest

from compiler.generate import templating

NAMES = templating.ENV.list_templates(extensions=["j2"])
VALUES = {"version": "1", "source": "/vigil.yaml", "name": "demo", "prefix": "/p", "unit": "u"}


@pytest.mark.parametrize("name", NAMES)
def test_every_template_loads_from_its_generated_code(name: str) -> None:
    template = templating.environment().get_template(name)
    assert template.filename is not None
    assert template.filename.endswith(templating.compiled_name(name))


def test_a_template_edited_since_is_compiled_from_its_text(monkeypatch) -> None:
    current = templating.environment().get_template("inbox.path.j2")
    monkeypatch.setattr(templating, "_digest", lambda _source: "edited")
    edited = templating.environment().get_template("inbox.path.j2")
    assert edited.filename is not None and edited.filename.endswith("templates/inbox.path.j2")
    values = {**VALUES, "inbox": "/state/inbox", "purpose": "start u"}
    assert edited.render(values) == current.render(values)

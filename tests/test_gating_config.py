"""`inhibit:`, `maintenance:`, `dedup_key`, `notify_recovered` and `flapping` in the config: what
validates and what the specs hold (the bad cases are in tests/cases/bad/)."""

from __future__ import annotations

from compiler.generate import specs
from compiler.language.loader import load_text
from compiler.language.model import Config
from compiler.language.validate import validate_document
from runner.contract import ALERT_KINDS

CONFIG = """\
name: demo
channels: {sink: {file: ~/out.jsonl}}
jobs:
  gateway-check: {schedule: "*/5 * * * *", run: "true"}
  mail-check: {schedule: "*/5 * * * *", run: "true"}
  backup: {schedule: "0 2 * * *", run: "true"}
coordinator:
  deliver_to: [sink]
  notify_recovered: true
  sources:
    mail-check: {dedup_key: "{host}:{check}", notify_recovered: false}
inhibit:
  gateway-down:
    while: {job: gateway-check, kind: failure}
    hold: {job: ["mail-*", "calendar-*"], kind: "fail*"}
maintenance:
  nightly:
    match: {job: backup, text: "*disk*"}
    start: "23:00"
    end: "01:30"
    days: [sun, mon]
"""


def config_of(text: str) -> Config:
    return validate_document(load_text(text, "demo.yaml")).config


def test_globs_may_match_nothing_yet_and_matchers_become_lists() -> None:
    config = config_of(CONFIG)
    spec = specs.coordinator_spec(config, system=False)
    assert spec["inhibit"] == {
        "gateway-down": {
            "while": {"job": ["gateway-check"], "kind": ["failure"]},
            "hold": {"job": ["mail-*", "calendar-*"], "kind": ["fail*"]},
            "drop": False,
        }
    }
    assert spec["maintenance"]["nightly"] == {
        "match": {"job": ["backup"], "text": ["*disk*"]},
        "start": "23:00",
        "end": "01:30",
        "days": [6, 0],
        "timezone": None,
        "drop": False,
    }
    assert spec["coordinator"]["flapping"] == {"changes": 3, "within": 3600}
    assert spec["coordinator"]["sources"]["mail-check"]["dedup_key"] == "{host}:{check}"


def test_recovery_is_reported_when_announced_or_when_an_inhibit_rule_waits_on_it() -> None:
    config = config_of(CONFIG)
    wanted = {name: specs.job_spec(config, name, job, False)["notify_recovered"]
              for name, job in config.jobs.items()}  # fmt: skip
    assert wanted == {"gateway-check": True, "mail-check": False, "backup": True}
    assert specs.failure_spec(config, False)["notify_recovered"] == ["gateway-check", "backup"]
    quiet = config_of(CONFIG.replace("  notify_recovered: true\n", ""))
    # The inhibit rule holds alerts while gateway-check fails: its recovery releases them.
    assert specs.failure_spec(quiet, False)["notify_recovered"] == ["gateway-check"]
    plain = config_of(CONFIG.split("inhibit:")[0].replace("  notify_recovered: true\n", ""))
    assert specs.failure_spec(plain, False)["notify_recovered"] == []


def test_without_the_keys_nothing_is_gated() -> None:
    config = config_of(CONFIG.split("inhibit:")[0])
    spec = specs.coordinator_spec(config, system=False)
    assert spec["inhibit"] == {} and spec["maintenance"] == {}


def test_vigils_own_alert_kinds_are_all_matchable() -> None:
    from runner import missed, preflight, spike, statefile
    from runner.fleet import silence
    from runner.intake import QUARANTINED
    from runner.replies.ledger import STOPPED_KIND

    own = {"failure", "paused", "budget", missed.ALERT_KIND, preflight.KIND, spike.KIND}
    own |= {statefile.ALERT_KIND, silence.ALERT_KIND, QUARANTINED, "finding-rejected"}
    own |= {STOPPED_KIND}
    assert own <= set(ALERT_KINDS)

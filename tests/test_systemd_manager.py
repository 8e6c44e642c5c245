"""The private systemd user manager works: services, journal, timers and path units.

The systemd tests of the project rely on exactly these behaviours, so they are checked here
first, against the real manager (tests/systemd_manager.py).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.systemd_manager import UserManager, skip_or_fail

# journald looks up which unit a stdout stream belongs to (in /proc/PID) only when it reads the
# first line; if the process has exited by then, the line is stored without unit fields and
# `journalctl --user-unit` misses it (1-2 % of runs of a bare `echo` in measurements).
# Services whose output a test checks therefore stay alive a moment after printing.
LINGER = "sleep 0.1"


def oneshot(command: str, unit_section: str = "") -> str:
    return f'[Unit]\n{unit_section}\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "{command}"\n'


def test_skip_or_fail_skips_unless_ci_requires_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_REQUIRE_SYSTEMD", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no systemd here"):
        skip_or_fail("no systemd here")
    monkeypatch.setenv("VIGIL_REQUIRE_SYSTEMD", "1")
    with pytest.raises(pytest.fail.Exception, match="no systemd here"):
        skip_or_fail("no systemd here")


@pytest.mark.systemd
def test_manager_uses_its_own_home_and_unit_dir(clean_user_manager: UserManager) -> None:
    manager = clean_user_manager
    unit_path = manager.systemctl("show", "--property=UnitPath", "--value").stdout.split()
    assert str(manager.unit_dir) in unit_path
    assert manager.unit_dir.is_relative_to(manager.env["HOME"])
    assert manager.env["HOME"] != os.environ.get("HOME")
    manager.write_unit("probe-env.service", oneshot(f"echo home=$$HOME; {LINGER}"))
    manager.systemctl("daemon-reload")
    manager.systemctl("start", "probe-env.service")
    manager.wait_for_journal("probe-env.service", f"home={manager.env['HOME']}")


@pytest.mark.systemd
def test_oneshot_results_and_journal(clean_user_manager: UserManager) -> None:
    manager = clean_user_manager
    manager.write_unit("probe-ok.service", oneshot(f"echo probe-ok-says-hi; {LINGER}"))
    manager.write_unit("probe-fail.service", oneshot(f"echo probe-fail-says-bye; {LINGER}; exit 3"))
    manager.systemctl("daemon-reload")

    manager.systemctl("start", "probe-ok.service")
    assert manager.show("probe-ok.service", "Result", "ExecMainStatus") == {
        "Result": "success",
        "ExecMainStatus": "0",
    }
    manager.wait_for_journal("probe-ok.service", "probe-ok-says-hi")

    assert manager.systemctl("start", "probe-fail.service", check=False).returncode != 0
    assert manager.show("probe-fail.service", "Result", "ExecMainStatus") == {
        "Result": "exit-code",
        "ExecMainStatus": "3",
    }
    manager.wait_for_journal("probe-fail.service", "probe-fail-says-bye")
    manager.wait_for_journal("probe-fail.service", "Failed with result 'exit-code'")  # manager's


@pytest.mark.systemd
def test_calendar_timer_fires_its_service(clean_user_manager: UserManager, tmp_path: Path) -> None:
    manager = clean_user_manager
    marker = tmp_path / "fired"
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    manager.write_unit("probe-tick.service", oneshot(f"echo tick; touch {marker}; {LINGER}"))
    manager.write_unit(
        "probe-tick.timer",
        f"[Timer]\nOnCalendar={at:%Y-%m-%d %H:%M:%S} UTC\nAccuracySec=1ms\n",
    )
    manager.systemctl("daemon-reload")
    manager.systemctl("start", "probe-tick.timer")

    before = manager.show("probe-tick.timer", "NextElapseUSecRealtime", "LastTriggerUSec")
    assert f"{at:%Y-%m-%d %H:%M:%S}" in before["NextElapseUSecRealtime"]
    assert before["LastTriggerUSec"] == ""  # never triggered

    manager.wait_for(marker.exists, timeout=10, what="the timer's service to run")
    after = manager.show("probe-tick.timer", "LastTriggerUSec")
    assert f"{at:%Y-%m-%d %H:%M:%S}" in after["LastTriggerUSec"]
    manager.wait_for(
        lambda: (
            manager.show("probe-tick.service", "ActiveState", "Result")
            == {"ActiveState": "inactive", "Result": "success"}
        ),
        what="the timer's service to finish",
    )
    manager.wait_for_journal("probe-tick.service", "tick")


@pytest.mark.systemd
def test_list_timers_lists_the_timer(clean_user_manager: UserManager) -> None:
    manager = clean_user_manager
    manager.write_unit("probe-later.service", oneshot("true"))
    manager.write_unit("probe-later.timer", "[Timer]\nOnCalendar=*-*-* 03:00:00 UTC\n")
    manager.systemctl("daemon-reload")
    manager.systemctl("start", "probe-later.timer")
    listing = manager.systemctl("list-timers", "--all", "--no-legend").stdout
    line = next(line for line in listing.splitlines() if "probe-later.timer" in line)
    assert "probe-later.service" in line


@pytest.mark.systemd
def test_path_unit_starts_its_service_on_rename(
    clean_user_manager: UserManager, tmp_path: Path
) -> None:
    manager = clean_user_manager
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    done.mkdir()
    manager.write_unit(
        "probe-inbox.service",
        # Like the coordinator: empty the inbox every run, no start limit for bursts.
        oneshot(f"mv {inbox}/* {done}/", unit_section="StartLimitIntervalSec=0"),
    )
    manager.write_unit(
        "probe-inbox.path", f"[Path]\nDirectoryNotEmpty={inbox}\nMakeDirectory=yes\n"
    )
    manager.systemctl("daemon-reload")
    manager.systemctl("start", "probe-inbox.path")
    assert inbox.is_dir()

    latencies_ms = []
    for number in range(5):
        staged = tmp_path / f".finding-{number}.json"
        staged.write_text("{}", encoding="utf-8")
        renamed_at_us = time.monotonic_ns() // 1000
        staged.rename(inbox / f"finding-{number}.json")
        manager.wait_for((done / f"finding-{number}.json").exists, timeout=10, what="the path unit")
        started_us = int(
            manager.show("probe-inbox.service", "ExecMainStartTimestampMonotonic")[
                "ExecMainStartTimestampMonotonic"
            ]
        )
        latencies_ms.append((started_us - renamed_at_us) / 1000)

    assert not any(inbox.iterdir())
    assert manager.show("probe-inbox.path", "ActiveState")["ActiveState"] == "active"
    print(
        f"path trigger latency (rename -> service exec): median "
        f"{statistics.median(latencies_ms):.1f} ms, all {[round(ms, 1) for ms in latencies_ms]}"
    )


@pytest.mark.systemd
def test_clean_removes_what_a_test_left(clean_user_manager: UserManager) -> None:
    manager = clean_user_manager
    manager.write_unit("probe-left.service", "[Service]\nExecStart=/bin/sleep 300\n")
    manager.systemctl("daemon-reload")
    manager.systemctl("start", "probe-left.service")
    pid = int(manager.show("probe-left.service", "MainPID")["MainPID"])

    manager.clean()

    assert not any(manager.unit_dir.iterdir())
    assert manager.show("probe-left.service", "LoadState")["LoadState"] == "not-found"
    assert not Path(f"/proc/{pid}").exists()

"""A reply source under a real systemd user manager: apply installs, enables and starts its
long-running service, which reads a loopback Telegram Bot API with the token from its
credential; a reply lands in the inbox and the coordinator's path unit takes it; `kill -9`
brings it back (Restart=on-failure) and `vigil status` shows it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import apply_config
from tests.telegram_server import TelegramServer

pytestmark = pytest.mark.systemd

TOKEN = "424242:systemd-test-token"
PERSON = 111
UNIT = "rs-reply-phone.service"
CONFIG = """\
name: rs
state_dir: {state}
secrets: {{bot: {secrets}/bot}}
channels: {{sink: {{file: {state}/deliveries.jsonl}}}}
coordinator: {{deliver_to: [sink]}}
replies:
  phone:
    telegram: {{token: bot, chats: [{person}], api: "{api}"}}
"""


def test_apply_runs_the_reply_source_and_systemd_keeps_it_running(
    vigil, vigil_manager, tmp_path: Path
) -> None:
    manager = vigil_manager
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "bot").write_text(TOKEN)
    with TelegramServer(TOKEN) as server:
        state = apply_config(
            vigil, tmp_path, "rs", CONFIG, secrets=secrets, person=PERSON, api=server.url
        )
        shown = manager.show(UNIT, "ActiveState", "UnitFileState", "MainPID")
        assert shown["ActiveState"] == "active" and shown["UnitFileState"] == "enabled"
        update = server.send(PERSON, "done r7")
        server.wait_for_poll(update + 1)
        stored = json.loads((state / "state" / "reply-phone.json").read_text())
        assert stored["offset"] == update + 1 and stored["received"] == 1
        # The coordinator's path unit takes the finding out of the inbox.
        manager.wait_for(lambda: not os.listdir(state / "inbox"), timeout=20, what="inbox empty")
        manager.wait_for_journal(UNIT, f"reply-phone-{update}")
        assert TOKEN not in manager.journal(UNIT)

        os.kill(int(shown["MainPID"]), signal.SIGKILL)

        def restarted() -> bool:
            now = manager.show(UNIT, "ActiveState", "MainPID", "NRestarts")
            return now["ActiveState"] == "active" and now["MainPID"] not in ("0", shown["MainPID"])

        manager.wait_for(restarted, timeout=20, what="the service restarted")
        assert int(manager.show(UNIT, "NRestarts")["NRestarts"]) >= 1
        later = server.send(PERSON, "snooze r7 2h")
        server.wait_for_poll(later + 1)
        assert server.handed(update) == 1  # the stored offset held across the restart

        status = vigil("status", "-c", tmp_path / "rs.yaml", "--json")
        rows = {row["name"]: row for row in json.loads(status.stdout)}
        assert rows["phone"]["kind"] == "reply"
        assert rows["phone"]["result"] == "active"
        assert "received 2, ignored 0" in rows["phone"]["note"]
        table = vigil("status", "-c", tmp_path / "rs.yaml")
        assert table.exit_code == 0, table.stderr
        assert "phone" in table.stdout and "received 2" in table.stdout

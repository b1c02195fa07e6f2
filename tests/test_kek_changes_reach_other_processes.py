"""A key rotation made by one process switches what every other process seals with, within
the change-visibility bound, so nothing new is sealed under a key about to be retired."""

from __future__ import annotations

import time
from pathlib import Path

from flowcred.broker import open_broker
from flowcred.settings import load_settings


def test_a_running_process_seals_with_the_new_key_after_another_rotates_and_retires(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=database_url)
    with open_broker(settings=settings) as server:
        server.watch_changes()
        with open_broker(settings=settings) as cli:
            cli.rotate_keys()
            cli.retire_keys()
            primary = cli.kek_version
        deadline = time.monotonic() + 10
        while server.kek_version != primary and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.kek_version == primary
        cred = server.credentials.create(
            name="after rotation", type="slack", secret={"token": "xoxb-after-rotation"}
        )
        assert [v.kek_version for v in server.credentials.versions(cred.id)] == [primary]
    # A fresh process (the retired key is gone from the key file) reads it.
    with open_broker(settings=settings) as later:
        assert later.provider().get_password(cred.id) == "xoxb-after-rotation"

"""Issue 8, item 16: rollback writes a new version holding the old secret (append-only history).

Before the fix rollback moved the current pointer back to the old version: the version number
went down, and a later rotation's history no longer read as a sequence.
"""

from __future__ import annotations

from sqlalchemy import select

from flowcred.audit.log import AuditFilter
from flowcred.broker import Broker
from flowcred.crypto import KekRing
from flowcred.store.tables import secret_versions


def _blobs(broker: Broker, cid: int) -> dict[int, tuple[bytes, bytes]]:
    with broker.engine.connect() as conn:
        rows = conn.execute(
            select(
                secret_versions.c.version,
                secret_versions.c.ciphertext,
                secret_versions.c.wrapped_key,
            ).where(secret_versions.c.credential_id == cid)
        ).all()
    return {int(v): (bytes(c), bytes(w)) for v, c, w in rows}


def test_rollback_appends_a_new_version_with_the_old_secret(broker: Broker) -> None:
    cred = broker.credentials.create(name="Slack", type="slack", secret={"token": "xoxb-one"})
    broker.credentials.rotate(cred.id, secret={"token": "xoxb-two"})
    before = _blobs(broker, cred.id)
    back = broker.credentials.rollback(cred.id, 1)
    assert back.current_version == 3
    assert broker.provider().get_password(cred.id) == "xoxb-one"
    versions = broker.credentials.versions(cred.id)
    assert [(v.version, v.current) for v in versions] == [(3, True), (2, False), (1, False)]
    after = _blobs(broker, cred.id)
    assert after[1] == before[1] and after[2] == before[2]  # history untouched
    # Re-sealed, not copied: a fresh data key and nonce, bound to version 3.
    assert after[3][0] != after[1][0] and after[3][1] != after[1][1]
    assert KekRing.kek_version_of(after[3][1]) == broker.kek_version
    event = broker.audit.list(AuditFilter(action="rolled_back"))[-1]
    assert event.details == {"from_version": 2, "restored_version": 1, "version": 3}


def test_rollback_then_rotate_keeps_growing_and_retention_prunes(broker: Broker) -> None:
    cred = broker.credentials.create(name="Slack", type="slack", secret={"token": "xoxb-v1"})
    retention = broker.settings.version_retention
    for i in range(2, retention + 1):
        broker.credentials.rotate(cred.id, secret={"token": f"xoxb-v{i}"})
    broker.credentials.rollback(cred.id, 1)  # version retention + 1, holding v1's secret
    kept = [v.version for v in broker.credentials.versions(cred.id)]
    assert kept == list(range(retention + 1, 1, -1))  # version 1 pruned; its secret lives on
    assert broker.provider().get_password(cred.id) == "xoxb-v1"
    rotated = broker.credentials.rotate(cred.id, secret={"token": "xoxb-next"})
    assert rotated.current_version == retention + 2
    again = broker.credentials.rollback(cred.id, retention + 1)
    assert again.current_version == retention + 3
    assert broker.provider().get_password(cred.id) == "xoxb-v1"

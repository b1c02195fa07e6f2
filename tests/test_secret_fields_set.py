"""``credentials.secret_fields_set``: which secret fields hold a value, for pages that show
*set* / *not set*. Only names leave the call; it is audited like a view, whatever its outcome."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

import flowcred
from flowcred.audit import Actor, AuditFilter
from flowcred.errors import CredentialNotFound


def test_names_only_audited_and_tenant_bound(tmp_path: Path) -> None:
    canary = f"canary-fieldsset-{secrets.token_hex(6)}"
    with flowcred.open(home=str(tmp_path / "home")) as broker:
        cred = broker.credentials.create(
            name="Pair",
            type="basic_auth",
            tenant="acme",
            config={"username": "svc"},
            secret={"password": canary},
        )
        view = broker.acting_as(Actor("api_key", "k1", "viewer"), "127.0.0.1", may_resolve=False)
        assert view.credentials.secret_fields_set(cred.id, tenant="acme") == ["password"]
        assert view.credentials.secret_fields_set(cred.id) == ["password"]
        with pytest.raises(CredentialNotFound):
            view.credentials.secret_fields_set(cred.id, tenant="globex")
        events = broker.audit.list(AuditFilter(actor="k1"), limit=100)
        assert [(e.action, e.result) for e in events] == [
            ("viewed", "success"),
            ("viewed", "success"),
            ("access_denied", "denied"),
        ]
        assert events[0].details == {"secretFields": True}
        assert all(canary not in str(e.to_dict()) for e in events)

"""The live test of a credential: call its configured ``test_url`` with its material.

Used by ``POST /api/credentials/{id}/test`` and ``flowcred credentials test`` through
:meth:`CredentialProvider.test`, which audits one ``tested`` event with the outcome. Live
tests of native connectors (a real database login, an SMTP handshake) come later and plug in
beside this one; vendors' own test endpoints in the catalog are not called from here.
"""

from __future__ import annotations

from typing import Any

import httpx

from flowcred.errors import FieldProblem, InvalidCredential
from flowcred.runtime.material import CredentialMaterial

TIMEOUT = httpx.Timeout(10.0)


def http_check(material: CredentialMaterial) -> tuple[bool, dict[str, Any]]:
    """GET ``test_url`` with the material applied; 2xx means ok.

    Raises InvalidCredential when the credential has no ``test_url``. Redirects are not
    followed, so the material is never sent to a host other than the configured one.
    """
    url = material.fields.get("test_url")
    if not isinstance(url, str) or not url:
        raise InvalidCredential(
            [FieldProblem("config.test_url", "no live test for this type: set test_url")]
        )
    try:
        # A client per test, so the credential's cookies live exactly as long as the call.
        with httpx.Client(
            timeout=TIMEOUT, follow_redirects=False, cookies=material.reveal_cookies()
        ) as client:
            answer = client.get(
                url, headers=material.reveal_headers(), params=material.reveal_query()
            )
    except httpx.HTTPError as exc:
        return False, {"reason": f"request failed: {type(exc).__name__}"}
    return 200 <= answer.status_code < 300, {"status": answer.status_code}


def describe(ok: bool, details: dict[str, Any]) -> str:
    """A one-line outcome for people."""
    status = details.get("status")
    if ok:
        return "credential accepted"
    if status is not None:
        return f"rejected with HTTP {status}"
    return str(details.get("reason", "test failed"))

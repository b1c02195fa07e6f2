"""``flowcred.__all__`` is sorted, explicit and covers the contract of DESIGN §2."""

from __future__ import annotations

import inspect

import flowcred

CONTRACT = {
    "open",
    "FlowcredError",
    "CredentialNotFound",
    "CredentialTypeMismatch",
    "InvalidCredential",
    "AccessDenied",
    "TokenRefreshFailed",
    "CircuitOpen",
    "CredentialMaterial",
    "CredentialProvider",
    "Credential",
    "Secret",
    "DecryptionFailed",
    "VersionConflict",
}


def test_all_is_sorted_and_resolvable() -> None:
    assert flowcred.__all__ == sorted(flowcred.__all__)
    for name in flowcred.__all__:
        assert hasattr(flowcred, name), name


def test_contract_names_exported() -> None:
    assert CONTRACT <= set(flowcred.__all__)


def test_errors_form_one_tree() -> None:
    for name in flowcred.__all__:
        obj = getattr(flowcred, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, flowcred.FlowcredError), name


def test_create_signature_matches_design() -> None:
    params = inspect.signature(flowcred.Credentials.create).parameters
    assert {
        "name",
        "type",
        "tenant",
        "environment",
        "handle",
        "config",
        "secret",
        "secret_value",
    } <= set(params)
    assert params["tenant"].default == "default" and params["environment"].default == "default"

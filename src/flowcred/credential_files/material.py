"""Turn a loaded credentials file into :class:`~flowcred.runtime.material.CredentialMaterial`.

A file is not a stored credential: it has no id and no version. Its material therefore carries
``credential_id=0`` and ``version=0``, and its handle is the caller's handle for it or, when none
is given, the file's path (a name an operator recognises; never the content).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial

_EMPTY: Mapping[str, Secret] = MappingProxyType({})


def file_material(
    *,
    type_name: str,
    path: str,
    handle: str | None,
    fields: Mapping[str, Any],
    headers: Mapping[str, Secret] | None = None,
) -> CredentialMaterial:
    """Material for a file of family ``type_name``; ``None`` field values are left out."""
    return CredentialMaterial(
        credential_id=0,
        handle=handle if handle is not None else path,
        type=type_name,
        version=0,
        headers=MappingProxyType(dict(headers)) if headers else _EMPTY,
        query=_EMPTY,
        cookies=_EMPTY,
        fields=MappingProxyType({k: v for k, v in fields.items() if v is not None}),
        expires_at=None,
    )

"""NATS credentials: ``{"nkey": {"seed": "SU..."}}``.

flowgen's ``nats_jetstream_*`` and ``nats_kv_store`` tasks connect with an NKey seed. A file
without ``nkey`` is an error (a task with no ``credentials_path`` connects without auth; a file
that authenticates nothing is a mistake worth saying).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial


@dataclass(frozen=True, slots=True)
class NatsCredentials:
    """An NKey seed for a NATS connection."""

    nkey_seed: Secret
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="nats", path=self.path, handle=handle, fields={"nkey_seed": self.nkey_seed}
        )


def parse_nats(obj: JsonObject) -> NatsCredentials:
    return NatsCredentials(nkey_seed=obj.object("nkey").secret("seed"), path=obj.path)

"""Google service-account key files, as BigQuery (``gcp_*``) and GCS object stores use them.

The file is the JSON Google hands out: ``type`` (``"service_account"``), ``project_id``,
``private_key_id``, ``private_key`` (PEM), ``client_email``, ``token_uri`` and more. Only the
private key is secret; the key id and e-mail are identifiers and stay readable for logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True, slots=True)
class GcpServiceAccount:
    """A Google service-account key."""

    project_id: str
    private_key_id: str
    private_key: Secret
    client_email: str
    client_id: str | None = None
    token_uri: str = GOOGLE_TOKEN_URI
    path: str = field(default="", compare=False)

    def fields(self) -> dict[str, object]:
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "token_uri": self.token_uri,
        }

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="gcp_service_account", path=self.path, handle=handle, fields=self.fields()
        )


def looks_like_service_account(obj: JsonObject) -> bool:
    """Whether the object claims to be a service-account key (for object-store detection)."""
    return obj.has("type") or (obj.has("private_key") and obj.has("client_email"))


def parse_gcp(obj: JsonObject) -> GcpServiceAccount:
    if obj.string("type") != "service_account":
        obj.fail("field 'type' must be 'service_account'")
    private_key = obj.string("private_key")
    if "PRIVATE KEY-----" not in private_key:
        obj.fail("field 'private_key' is not a PEM private key")
    return GcpServiceAccount(
        project_id=obj.string("project_id"),
        private_key_id=obj.string("private_key_id"),
        private_key=Secret(private_key),
        client_email=obj.string("client_email"),
        client_id=obj.optional_string("client_id"),
        token_uri=obj.optional_string("token_uri") or GOOGLE_TOKEN_URI,
        path=obj.path,
    )

"""Salesforce credentials (OAuth2 client credentials): every field is required.

``{"client_id", "client_secret", "instance_url", "tenant_id"}``; ``instance_url`` must be an
http(s) URL, since the token request goes there with the secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial


@dataclass(frozen=True, slots=True)
class SalesforceCredentials:
    client_id: str
    client_secret: Secret
    instance_url: str
    tenant_id: str
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="salesforce",
            path=self.path,
            handle=handle,
            fields={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "instance_url": self.instance_url,
                "tenant_id": self.tenant_id,
            },
        )


def parse_salesforce(obj: JsonObject) -> SalesforceCredentials:
    client_id = obj.string("client_id")
    client_secret = obj.secret("client_secret")
    instance_url = obj.string("instance_url")
    tenant_id = obj.string("tenant_id")
    if not instance_url.startswith(("https://", "http://")) or len(instance_url) < 9:
        obj.fail("field 'instance_url' must be an http(s) URL")
    return SalesforceCredentials(client_id, client_secret, instance_url, tenant_id, obj.path)

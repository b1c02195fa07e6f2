"""Object-store credentials (``object_store*`` tasks): S3, GCS or Azure, told apart by fields.

* S3: ``{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"?, "aws_region"?}``
* GCS: a Google service-account key file (see :mod:`flowcred.credential_files.gcp`)
* Azure: ``{"azure_storage_account_name", "azure_storage_account_key"}`` or
  ``{"azure_storage_account_name", "azure_storage_sas_token"}`` (short names ``account_name``,
  ``account_key``, ``sas_token`` also accepted, as the Rust ``object_store`` crate does)

A file matching more than one cloud, or none, is malformed: guessing would send one cloud's
secret to another. The access key id is an identifier (AWS says so) and stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.gcp import GcpServiceAccount, looks_like_service_account, parse_gcp
from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial

_AZURE_ACCOUNT = ("azure_storage_account_name", "account_name")
_AZURE_KEY = ("azure_storage_account_key", "account_key")
_AZURE_SAS = ("azure_storage_sas_token", "sas_token")


@dataclass(frozen=True, slots=True)
class S3Credentials:
    aws_access_key_id: str
    aws_secret_access_key: Secret
    aws_session_token: Secret | None = None
    aws_region: str | None = None
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="s3",
            path=self.path,
            handle=handle,
            fields={
                "aws_access_key_id": self.aws_access_key_id,
                "aws_secret_access_key": self.aws_secret_access_key,
                "aws_session_token": self.aws_session_token,
                "aws_region": self.aws_region,
            },
        )


@dataclass(frozen=True, slots=True)
class GcsCredentials:
    service_account: GcpServiceAccount
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="gcs", path=self.path, handle=handle, fields=self.service_account.fields()
        )


@dataclass(frozen=True, slots=True)
class AzureCredentials:
    """An Azure storage account with exactly one of an account key or a SAS token."""

    account_name: str
    account_key: Secret | None = None
    sas_token: Secret | None = None
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="azure_blob",
            path=self.path,
            handle=handle,
            fields={
                "account_name": self.account_name,
                "account_key": self.account_key,
                "sas_token": self.sas_token,
            },
        )


ObjectStoreCredentials = S3Credentials | GcsCredentials | AzureCredentials


def _present(obj: JsonObject, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` the object holds (the long name wins over its alias)."""
    return next((name for name in names if obj.has(name)), None)


def parse_object_store(obj: JsonObject) -> ObjectStoreCredentials:
    clouds = [
        cloud
        for cloud, present in (
            ("S3", obj.has("aws_access_key_id") or obj.has("aws_secret_access_key")),
            ("GCS", looks_like_service_account(obj)),
            ("Azure", _present(obj, _AZURE_ACCOUNT) is not None),
        )
        if present
    ]
    if not clouds:
        obj.fail(
            "cannot tell the object store: expected S3 ('aws_access_key_id'), GCS (a "
            "service-account key file) or Azure ('azure_storage_account_name')"
        )
    if len(clouds) > 1:
        obj.fail(f"fields of more than one object store are present ({', '.join(clouds)})")
    if clouds == ["S3"]:
        return S3Credentials(
            aws_access_key_id=obj.string("aws_access_key_id"),
            aws_secret_access_key=obj.secret("aws_secret_access_key"),
            aws_session_token=obj.optional_secret("aws_session_token"),
            aws_region=obj.optional_string("aws_region"),
            path=obj.path,
        )
    if clouds == ["GCS"]:
        return GcsCredentials(service_account=parse_gcp(obj), path=obj.path)
    return _parse_azure(obj)


def _parse_azure(obj: JsonObject) -> AzureCredentials:
    account = _present(obj, _AZURE_ACCOUNT)
    key = _present(obj, _AZURE_KEY)
    sas = _present(obj, _AZURE_SAS)
    assert account is not None
    if key is not None and sas is not None:
        obj.fail(f"fields '{key}' and '{sas}' exclude each other: give one")
    if key is None and sas is None:
        obj.fail(f"missing field '{_AZURE_KEY[0]}' (or '{_AZURE_SAS[0]}')")
    return AzureCredentials(
        account_name=obj.string(account),
        account_key=obj.secret(key) if key is not None else None,
        sas_token=obj.secret(sas) if sas is not None else None,
        path=obj.path,
    )

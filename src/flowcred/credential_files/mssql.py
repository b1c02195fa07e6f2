"""SQL Server credentials for ``mssql_query``.

``{"host", "port" (1433), "database", "username", "password", "trust_server_certificate"
(false), "encrypt" (true)}``: the defaults are the safe ones (encrypted, certificate checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial


@dataclass(frozen=True, slots=True)
class MssqlCredentials:
    host: str
    database: str
    username: str
    password: Secret
    port: int = 1433
    trust_server_certificate: bool = False
    encrypt: bool = True
    path: str = field(default="", compare=False)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="mssql",
            path=self.path,
            handle=handle,
            fields={
                "host": self.host,
                "port": self.port,
                "database": self.database,
                "username": self.username,
                "password": self.password,
                "trust_server_certificate": self.trust_server_certificate,
                "encrypt": self.encrypt,
            },
        )


def parse_mssql(obj: JsonObject) -> MssqlCredentials:
    return MssqlCredentials(
        host=obj.string("host"),
        database=obj.string("database"),
        username=obj.string("username"),
        password=obj.secret("password"),
        port=obj.integer("port", 1433, low=1, high=65535),
        trust_server_certificate=obj.boolean("trust_server_certificate", False),
        encrypt=obj.boolean("encrypt", True),
        path=obj.path,
    )

"""Which kind of system a credential type connects to: the groups a form picker shows.

The Auth Configs document sorts native connectors into databases, message brokers, file storage
and enterprise systems; ``api_services`` holds the SaaS APIs reached with a static key or token.
A type declares its group with ``category:`` in its YAML file. ``category`` is independent of
``family`` (which says how the credential is obtained and used): a Stripe key and a PostgreSQL
login are both pre-built forms, but one is an HTTP header and the other a driver login.

The types that predate the field do not declare it in their files yet; :data:`LEGACY_CATEGORIES`
supplies theirs at load time, so every connector is grouped today. A file's own ``category``
always wins, and an entry here may be dropped once its file says the same.
"""

from __future__ import annotations

from typing import Literal, get_args

ConnectorCategory = Literal[
    "databases", "message_brokers", "file_storage", "enterprise", "api_services"
]

#: Every category, in the order a picker lists them.
CATEGORIES: tuple[str, ...] = get_args(ConnectorCategory)

#: Categories of catalog types whose YAML files were written before ``category`` existed.
LEGACY_CATEGORIES: dict[str, str] = {
    "bigquery": "databases",
    "elasticsearch": "databases",
    "mariadb": "databases",
    "mongodb": "databases",
    "mssql": "databases",
    "mysql": "databases",
    "oracle": "databases",
    "postgres": "databases",
    "redis": "databases",
    "snowflake": "databases",
    "kafka": "message_brokers",
    "mqtt": "message_brokers",
    "nats": "message_brokers",
    "rabbitmq": "message_brokers",
    "aws_s3": "file_storage",
    "azure_blob": "file_storage",
    "ftp": "file_storage",
    "gcs": "file_storage",
    "sftp": "file_storage",
}

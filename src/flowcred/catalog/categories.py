"""Which kind of system a credential type connects to: the groups a form picker shows.

The Auth Configs document sorts native connectors into databases, message brokers, file storage
and enterprise systems; ``api_services`` holds the SaaS APIs reached with a static key or token.
A type declares its group with ``category:`` in its YAML file. ``category`` is independent of
``family`` (which says how the credential is obtained and used): a Stripe key and a PostgreSQL
login are both pre-built forms, but one is an HTTP header and the other a driver login.

"""

from __future__ import annotations

from typing import Literal, get_args

ConnectorCategory = Literal[
    "databases", "message_brokers", "file_storage", "enterprise", "api_services"
]

#: Every category, in the order a picker lists them.
CATEGORIES: tuple[str, ...] = get_args(ConnectorCategory)

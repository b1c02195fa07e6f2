"""Checks of a Flow Studio node graph: each ``credentialId`` names a fitting credential.

Flow Studio nodes store only an integer ``credentialId`` (``0`` means no auth). For every node
whose ``config`` holds one:

* ``CRED103`` it is not a non-negative integer (a string, a float, a handle);
* ``CRED101`` no credential with that id exists in the tenant (``--tenant``, else the graph's
  ``tenantId``, else ``default``); another tenant's credential is reported the same way;
* ``CRED104`` the node's ``provider`` is not one its type supports (SendSMS: twilio|vonage;
  SendPush: fcm|apns; SendEmail: smtp|sendgrid);
* ``CRED102`` the credential's catalog type does not fit the node's channel and provider
  (a Vonage credential on a Twilio SMS node, a Slack token on a push node).

Nodes of other types are checked for existence only. Credentials are read once per tenant
through ``broker.credentials.list`` (one audited read, metadata only: no secret is touched).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from yaml.nodes import Node

from flowcred.bindings import flow_formats as ff
from flowcred.bindings.findings import Finding
from flowcred.bindings.raw_secret_scan import shown
from flowcred.records import Credential
from flowcred.references import DEFAULT_TENANT

if TYPE_CHECKING:
    from flowcred.broker import Broker

# node type -> provider (None: the node has no provider field) -> catalog types that fit.
NODE_TYPES: dict[str, dict[str | None, frozenset[str]]] = {
    "SendSMS": {"twilio": frozenset({"twilio"}), "vonage": frozenset({"vonage"})},
    "SendPush": {"fcm": frozenset({"fcm"}), "apns": frozenset({"apns"})},
    "SendEmail": {"smtp": frozenset({"smtp"}), "sendgrid": frozenset({"sendgrid"})},
    "SendSlack": {None: frozenset({"slack", "slack_oauth"})},
    "SendSlackMessage": {None: frozenset({"slack", "slack_oauth"})},
}

# tenant -> {credential id: record}; None when no credential store is available.
TenantRecords = Callable[[str], Mapping[int, Credential] | None]


@dataclass(slots=True)
class BrokerCredentials:
    """A tenant's credentials by id, read once per tenant from a broker opened on demand.

    ``open_broker`` is called on first use only, so validating flowgen files never creates or
    opens a store.
    """

    open_broker: Callable[[], Broker] | None
    _cache: dict[str, dict[int, Credential]] = field(default_factory=dict)
    _broker: Broker | None = None

    def broker(self) -> Broker | None:
        if self._broker is None and self.open_broker is not None:
            self._broker = self.open_broker()
        return self._broker

    def close(self) -> None:
        """Close the broker if this object opened it."""
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.close()

    def __call__(self, tenant: str) -> Mapping[int, Credential] | None:
        found = self._cache.get(tenant)
        if found is not None:
            return found
        broker = self.broker()
        if broker is None:
            return None
        records = broker.credentials.list(tenant=tenant)
        found = self._cache[tenant] = {r.id: r for r in records}
        return found


@dataclass(slots=True)
class NodeGraphResult:
    findings: list[Finding]
    flow: str | None
    tenant: str
    tasks: int
    references: list[int]


def check_node_graph(
    root: Node, file: str, records_of: TenantRecords, tenant: str | None
) -> NodeGraphResult:
    findings: list[Finding] = []
    name = ff.text_of(ff.get(root, "name"))
    chosen = tenant or ff.text_of(ff.get(root, "tenantId")) or DEFAULT_TENANT
    nodes = ff.items(ff.get(root, "nodes"))
    refs: list[int] = []
    warned_no_store = False
    for index, node in enumerate(nodes):
        config = ff.get(node, "config")
        id_node = ff.get(config, "credentialId")
        if id_node is None:
            continue
        label = shown(ff.text_of(ff.get(node, "id")) or f"nodes[{index}]")
        node_type = shown(ff.text_of(ff.get(node, "type")) or "?")
        p = ff.pos(id_node)
        value = ff.scalar(id_node)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            findings.append(
                Finding.of(
                    "CRED103",
                    file,
                    p.line,
                    p.column,
                    f"node {label}: credentialId must be a non-negative integer",
                    "put the integer id returned by POST /api/credentials (0 for no auth)",
                )
            )
            continue
        fitting = _fitting_types(node_type, config, file, label, findings)
        if value == 0:  # no auth
            continue
        refs.append(value)
        records = records_of(chosen)
        if records is None:
            if not warned_no_store:
                findings.append(
                    Finding.of(
                        "CRED100",
                        file,
                        p.line,
                        p.column,
                        "credentialIds not checked: no credential store was given",
                        "run with a flowcred store (FLOWCRED_HOME / FLOWCRED_DATABASE_URL)",
                    )
                )
                warned_no_store = True
            continue
        record = records.get(value)
        if record is None:
            findings.append(
                Finding.of(
                    "CRED101",
                    file,
                    p.line,
                    p.column,
                    f"node {label}: no credential {value} in tenant {chosen}",
                    "create it in this tenant (flowcred credentials add) and use its id",
                )
            )
        elif fitting is not None and record.type not in fitting:
            wanted = " or ".join(sorted(fitting))
            findings.append(
                Finding.of(
                    "CRED102",
                    file,
                    p.line,
                    p.column,
                    f"node {label} ({node_type}) needs a {wanted} credential; "
                    f"credential {value} is of type {record.type}",
                    f"use the id of a {wanted} credential",
                )
            )
    return NodeGraphResult(findings, name, chosen, len(nodes), list(dict.fromkeys(refs)))


def _fitting_types(
    node_type: str, config: Node | None, file: str, label: str, findings: list[Finding]
) -> frozenset[str] | None:
    """The catalog types that fit the node, or None when any type may (an unknown node)."""
    table = NODE_TYPES.get(node_type)
    if table is None:
        return None
    if None in table:
        return table[None]
    provider_node = ff.get(config, "provider")
    provider = ff.text_of(provider_node)
    if provider is not None and provider.lower() in table:
        return table[provider.lower()]
    p = ff.pos(provider_node) if provider_node is not None else ff.pos(config) if config else None
    allowed = "|".join(str(k) for k in table)
    findings.append(
        Finding.of(
            "CRED104",
            file,
            p.line if p else 0,
            p.column if p else 0,
            f"node {label} ({node_type}): provider must be one of {allowed}",
            f"set provider to one of {allowed}",
        )
    )
    return frozenset().union(*table.values())

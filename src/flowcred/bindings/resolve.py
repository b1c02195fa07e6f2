"""Turning a binding into :class:`~flowcred.runtime.material.CredentialMaterial`.

``provider.resolve("google_sales")`` lands here when the broker has bindings
(``FLOWCRED_BINDINGS_FILE`` or ``flowcred.open(..., bindings=PATH)``) and ``google_sales`` is one
of them (a binding wins over a stored handle of the same name). Steps:

1. the binding's ``kind`` names a catalog type (:func:`catalog_type_for`: the spec's dotted
   kinds such as ``google.oauth2`` map through :data:`SPEC_KINDS`);
2. each ``<field>_secret`` is read from the binding's sources (its ``sources: [...]`` or the
   global order); every missing secret is reported in one
   :class:`~flowcred.errors.SecretNotFound` naming where it looked (the environment variable);
3. the fields are validated against the type exactly like a stored credential's input;
4. material is built the way stored credentials' is (:func:`~flowcred.runtime.provider.
   static_material`); an OAuth type instead gets an access token through the token request
   machinery (:func:`~flowcred.runtime.token_requests.fetch` on the broker's grant client,
   with its retries and circuit breakers), held in memory until the refresh margin.

Every resolve is audited before material is handed out (fail closed): a ``credential`` /
``resolved`` event with ``resource_type="binding"``, the binding name, the type and the source
of each field, never a value. Failures are audited like any failed resolve.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flowcred.audit.events import CREDENTIAL
from flowcred.bindings.config import Binding, BindingsConfig, load_bindings
from flowcred.catalog import Catalog, CredentialType
from flowcred.clock import Clock
from flowcred.errors import (
    ConfigurationError,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    SecretNotFound,
    UnknownCredentialType,
)
from flowcred.redaction import SecretRegistry
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.provider import static_material
from flowcred.runtime.token_material import token_material
from flowcred.runtime.token_requests import GrantInputs, fetch
from flowcred.runtime.token_set import TokenSet
from flowcred.sources.base import SecretSource
from flowcred.sources.chain import SourceChain
from flowcred.sources.config import configured_sources, ordered
from flowcred.sources.flowcred_store import StoreSource

if TYPE_CHECKING:
    from flowcred.broker import Broker
    from flowcred.runtime.credential_provider import CredentialProvider
    from flowcred.runtime.oauth2_grants import GrantClient

# The Credential Provider spec's kinds -> catalog types (kinds that are already catalog names
# or aliases need no entry: ``api_key``, ``bearer``, ``basic``, ``slack``, ...).
SPEC_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "google.oauth2": "google",
        "google.service_account": "google_service_account",
        "google.service_account_jwt": "google_service_account",
        "oauth2": "oauth2",
        "oauth2.client_credentials": "oauth2_client_credentials",
        "service_account.jwt": "google_service_account",
        "api_token": "bearer_token",
        "static_secret": "bearer_token",
        "http.bearer": "bearer_token",
        "http.basic": "basic_auth",
        "http.api_key": "api_key",
    }
)
# Not a field of any OAuth type: the grant the binding starts from.
REFRESH_TOKEN = "refresh_token"


def catalog_type_for(kind: str, catalog: Catalog) -> CredentialType:
    """The catalog type a binding's ``kind`` means: :data:`SPEC_KINDS`, then the catalog
    name or alias, then ``a.b`` as ``a_b``, then ``x.oauth2`` as ``x``. Raises
    :class:`~flowcred.errors.UnknownCredentialType`."""
    folded = kind.strip().lower()
    candidates = [SPEC_KINDS.get(folded, folded), folded.replace(".", "_")]
    if folded.endswith(".oauth2"):
        candidates.append(folded[: -len(".oauth2")])
    for name in candidates:
        try:
            return catalog.get(name)
        except UnknownCredentialType:
            continue
    raise UnknownCredentialType(kind)


class BindingResolver:
    """The bindings of one broker and the sources they read from."""

    def __init__(
        self,
        config: BindingsConfig,
        sources: Mapping[str, SecretSource],
        *,
        order: Sequence[str],
        catalog: Catalog,
        clock: Clock,
        registry: SecretRegistry,
        grants: GrantClient | None,
        margin: float = 60.0,
    ) -> None:
        self.config = config
        self._sources = dict(sources)
        self.chain = ordered(self._sources, order)  # fails at start-up on a bad order
        self._catalog = catalog
        self._clock = clock
        self._registry = registry
        self._grants = grants
        self._margin = margin
        self._tokens: dict[tuple[str, str, str], TokenSet] = {}
        self._lock = threading.Lock()
        for binding in config.bindings.values():  # bad kinds and source names fail at start
            catalog_type_for(binding.kind, catalog)
            if binding.sources is not None:
                self.chain_for(binding, None)

    def __contains__(self, handle: object) -> bool:
        return handle in self.config.bindings

    def __repr__(self) -> str:
        return f"BindingResolver({len(self.config.bindings)} bindings, sources={self.chain.names})"

    def chain_for(self, binding: Binding, provider: CredentialProvider | None) -> SourceChain:
        """The binding's sources, with ``store`` reading the calling provider's tenant."""
        chain = self.chain
        if binding.sources is not None:
            chain = ordered(self._sources, binding.sources)
        if provider is None or "store" not in chain.names:
            return chain
        return SourceChain(
            [StoreSource(provider) if s.name == "store" else s for s in chain.sources]
        )

    # -- the provider hook -------------------------------------------------------------------

    def resolve(
        self,
        provider: CredentialProvider,
        handle: str,
        action: str,
        execution_id: str | None,
        *,
        forced: bool = False,
    ) -> CredentialMaterial:
        """Material for binding ``handle``, audited on ``provider``'s trail (fail closed)."""
        trail, access = provider.audit
        try:
            binding = self.config.get(handle)
            material, details = self.material(binding, provider, forced=forced)
        except FlowcredError as exc:
            trail.failure(
                access,
                action,
                exc,
                tenant=provider.tenant,
                ref=handle,
                execution_id=execution_id,
            )
            raise
        trail.record(
            access,
            CREDENTIAL,
            action,
            "success",
            tenant=provider.tenant,
            resource_type="binding",
            resource_id=handle,
            execution_id=execution_id,
            details=details,
        )
        return material

    def material(
        self, binding: Binding, provider: CredentialProvider | None, *, forced: bool = False
    ) -> tuple[CredentialMaterial, dict[str, Any]]:
        """The binding's material and its audit details (names only). Not audited."""
        ctype = catalog_type_for(binding.kind, self._catalog)
        values, used = self._read(binding, self.chain_for(binding, provider))
        refresh_token = values.pop(REFRESH_TOKEN, None) if ctype.oauth is not None else None
        config, secret = self._split(binding, ctype, values)
        config, secret = ctype.validate(config, secret)
        details: dict[str, Any] = {
            "binding": binding.handle,
            "kind": binding.kind,
            "type": ctype.name,
            "sources": used,
        }
        if ctype.oauth is None:
            material = static_material(
                ctype,
                config,
                secret,
                self._registry.pin,
                credential_id=0,
                handle=binding.handle,
                type_name=ctype.name,
                version=0,
                expires_at=None,
            )
            return material, details
        tenant = provider.tenant if provider is not None else ""
        tokens = self._token(binding, ctype, config, secret, refresh_token, tenant, forced)
        base = CredentialMaterial(
            credential_id=0,
            handle=binding.handle,
            type=ctype.name,
            version=0,
            headers=MappingProxyType({}),
            query=MappingProxyType({}),
            cookies=MappingProxyType({}),
            fields=MappingProxyType(config),
            expires_at=None,
        )
        return token_material(base, tokens, self._registry), details

    def _read(self, binding: Binding, chain: SourceChain) -> tuple[dict[str, str], dict[str, str]]:
        values: dict[str, str] = {}
        used: dict[str, str] = {}
        missing: list[tuple[str, list[str]]] = []
        for field, secret_name in binding.secret_refs.items():
            found = chain.find(secret_name)
            if found is None:
                missing.append((secret_name, chain.tried(secret_name)))
                continue
            values[field] = found.value.reveal()
            used[field] = found.source
        if missing:
            parts = [
                f"{name} (tried: {', '.join(tried) or 'no source'})" for name, tried in missing
            ]
            raise SecretNotFound(
                missing[0][0],
                missing[0][1],
                f"binding {binding.handle!r}: secret(s) not found: {'; '.join(parts)}",
            )
        return values, used

    def _split(
        self, binding: Binding, ctype: CredentialType, values: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Config and secret by the type's fields; a literal for a secret field is refused
        (a secret belongs in a source, named by ``<field>_secret``)."""
        config: dict[str, Any] = {}
        secret: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        secret_names = {spec.name for spec in ctype.secret_fields}
        for field, literal in binding.literals.items():
            name = ctype.canonical_field_name(field) or field
            if name in secret_names:
                problems.append(
                    FieldProblem(field, f"is secret: name it with {field}_secret, not a literal")
                )
            config[field] = literal
        for field, value in values.items():
            canonical = ctype.canonical_field_name(field)
            if canonical is None:
                problems.append(FieldProblem(f"{field}_secret", f"not a field of {ctype.name}"))
            elif canonical in secret_names:
                secret[field] = value
            else:
                config[field] = value
        if problems:
            raise InvalidCredential(problems, type_name=ctype.name)
        return config, secret

    # -- OAuth kinds ---------------------------------------------------------------------------

    def _token(
        self,
        binding: Binding,
        ctype: CredentialType,
        config: dict[str, Any],
        secret: dict[str, Any],
        refresh_token: str | None,
        tenant: str,
        forced: bool,
    ) -> TokenSet:
        assert ctype.oauth is not None
        if self._grants is None:
            raise ConfigurationError("bindings of OAuth kinds need the broker's token machinery")
        # A changed secret in a source (a rotated refresh token) must not reuse the old token.
        digest = hashlib.sha256(
            repr((sorted(config.items()), sorted(secret.items()), refresh_token)).encode()
        ).hexdigest()
        key = (tenant, binding.handle, digest)
        with self._lock:
            held = self._tokens.get(key)
            if held is not None and not forced and not self._due(held):
                return held
            # A provider that rotates refresh tokens sent a new one with the last token: it
            # replaces the source's (now spent) one for as long as this process runs.
            held_refresh = held.refresh_token if held is not None else None
            tokens, _grant = fetch(
                self._grants,
                GrantInputs(ctype.oauth, config, secret),
                refresh_token=held_refresh or refresh_token,
            )
            for stale in [k for k in self._tokens if k[:2] == key[:2]]:
                del self._tokens[stale]
            self._tokens[key] = tokens
            return tokens

    def _due(self, tokens: TokenSet) -> bool:
        if tokens.expires_at is None:
            return False
        return self._clock.now() >= tokens.expires_at - timedelta(seconds=self._margin)

    def close(self) -> None:
        for source in self._sources.values():
            source.close()


def open_bindings(broker: Broker, path: str | os.PathLike[str] | None) -> BindingResolver | None:
    """The broker's binding resolver for the bindings file at ``path`` (None: no bindings).

    Called while the broker opens, so a bad file, kind or source order stops start-up.
    """
    if path is None:
        return None
    settings = broker.settings
    return BindingResolver(
        load_bindings(Path(path)),
        configured_sources(settings, broker),
        order=settings.sources,
        catalog=broker.catalog,
        clock=broker.clock,
        registry=broker._registry,
        grants=broker.tokens.grants,
        margin=settings.oauth_refresh_margin_seconds,
    )

"""Building the source chain from settings: which sources exist and in what order.

Each source exists only when its settings are given (``store`` when a broker is given, ``env``
always):

=========  =====================================================================================
name       settings (``FLOWCRED_*``)
=========  =====================================================================================
store      (a broker) flowcred's own credentials: ``handle`` or ``handle#field``
env        ``ENV_SECRETS_PREFIX`` (optional): ``gcp_client_id`` -> ``$GCP_CLIENT_ID``
files      ``SECRETS_FILE``: a JSON file (``key``) or a directory of them (``file#key``)
k8s        ``K8S_SECRETS_DIR``: mounted Kubernetes secrets, one file per key
vault      ``VAULT_URL`` + ``VAULT_TOKEN`` or ``VAULT_ROLE_ID``/``VAULT_SECRET_ID``; ``VAULT_MOUNT``
aws        ``AWS_SECRETS_REGION`` and/or ``AWS_SECRETS_ENDPOINT_URL``
=========  =====================================================================================

``FLOWCRED_SOURCES="store,env,k8s"`` fixes the order (and the set); naming a source whose
settings are missing is a :class:`~flowcred.errors.ConfigurationError` at start-up, not a silent
skip. Unset, every configured source is asked, highest ``priority`` first: store, env, files,
k8s, vault, aws. A binding's ``sources: [...]`` picks from the configured ones
(:meth:`SourceChain.only`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowcred.errors import ConfigurationError
from flowcred.settings import FlowcredSettings
from flowcred.sources.base import SecretSource
from flowcred.sources.chain import SourceChain, by_priority
from flowcred.sources.env import EnvSource

if TYPE_CHECKING:
    from flowcred.broker import Broker

SOURCE_NAMES = ("store", "env", "files", "k8s", "vault", "aws")


def configured_sources(
    settings: FlowcredSettings, broker: Broker | None = None
) -> dict[str, SecretSource]:
    """Every source whose settings are present, by name (none connects yet)."""
    found: dict[str, SecretSource] = {}
    if broker is not None:
        from flowcred.sources.flowcred_store import StoreSource

        found["store"] = StoreSource(broker.provider())
    found["env"] = EnvSource(prefix=settings.env_secrets_prefix)
    if settings.secrets_file is not None:
        from flowcred.sources.credentials_files import CredentialsFileSource

        found["files"] = CredentialsFileSource(settings.secrets_file)
    if settings.k8s_secrets_dir is not None:
        from flowcred.sources.kubernetes_secrets import KubernetesSecretsSource

        found["k8s"] = KubernetesSecretsSource(settings.k8s_secrets_dir)
    if settings.vault_url:
        from flowcred.sources.vault_kv import VaultKvSource

        found["vault"] = VaultKvSource(
            settings.vault_url,
            token=settings.vault_token.get_secret_value() if settings.vault_token else None,
            role_id=settings.vault_role_id,
            secret_id=(
                settings.vault_secret_id.get_secret_value() if settings.vault_secret_id else None
            ),
            mount=settings.vault_mount,
            namespace=settings.vault_namespace,
            timeout=settings.source_timeout_seconds,
        )
    if settings.aws_secrets_region or settings.aws_secrets_endpoint_url:
        from flowcred.sources.aws_secrets_manager import AwsSecretsManagerSource

        found["aws"] = AwsSecretsManagerSource(
            region=settings.aws_secrets_region,
            endpoint_url=settings.aws_secrets_endpoint_url,
            timeout=settings.source_timeout_seconds,
        )
    return found


def ordered(available: dict[str, SecretSource], order: Sequence[str] | None) -> SourceChain:
    """The chain of ``order`` (or all of ``available`` by priority when empty)."""
    if not order:
        return SourceChain(by_priority(list(available.values())))
    unknown = [name for name in order if name not in SOURCE_NAMES]
    if unknown:
        raise ConfigurationError(
            f"FLOWCRED_SOURCES: unknown source(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(SOURCE_NAMES)})"
        )
    missing = [name for name in order if name not in available]
    if missing:
        raise ConfigurationError(
            f"FLOWCRED_SOURCES names {', '.join(map(repr, missing))} but its settings are "
            "missing (see flowcred.sources.config for each source's settings)"
        )
    return SourceChain([available[name] for name in order])


def sources_from_settings(
    settings: FlowcredSettings, broker: Broker | None = None, order: Sequence[str] | None = None
) -> SourceChain:
    """The chain configured by ``settings`` (``order`` overrides ``FLOWCRED_SOURCES``)."""
    return ordered(configured_sources(settings, broker), order or settings.sources)

"""Runtime settings, read from ``FLOWCRED_*`` environment variables.

There is no module-level settings instance: every entry point builds one with
:func:`load_settings` (or receives one), so tests can vary settings freely.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flowcred.errors import ConfigurationError
from flowcred.url_masking import mask_url

# Values people paste from examples. A master key equal to one of these is refused outright.
_PLACEHOLDER_KEYS = frozenset({"changethis", "changeme", "secret", "password", "example", "xxx"})


class FlowcredSettings(BaseSettings):
    """Settings of one flowcred process.

    ``home`` holds the embedded default: ``flowcred.db`` (SQLite) and ``master.key`` (the
    key-encryption key file, mode 0600). ``database_url`` switches to PostgreSQL
    (``postgresql+psycopg://...``). ``master_key`` (base64 of 32 bytes; several keys separated by
    commas, newest first, during a key rotation) replaces the key file.
    """

    model_config = SettingsConfigDict(env_prefix="FLOWCRED_", extra="ignore")

    home: Path = Path(".flowcred")
    database_url: str | None = None
    master_key: SecretStr | None = None
    key_file: Path | None = None

    cache_ttl_seconds: float = Field(default=30.0, ge=0)
    # Changes made by other processes reach this one's caches within this many seconds
    # (runtime/invalidation.py); while the change feed cannot be read, the caches stop answering.
    change_visibility_seconds: float = Field(default=1.0, ge=0.05, le=60)
    version_retention: int = Field(default=10, ge=1)
    # A credential whose expires_at is this close shows "expiring soon" (credential_status.py);
    # 0 turns the marker off.
    expiring_soon_days: float = Field(default=7.0, ge=0, le=3650)
    last_used_flush_seconds: float = Field(default=10.0, gt=0)
    rewrap_batch_size: int = Field(default=500, ge=1, le=100_000)

    audit_checkpoint_path: Path | None = None
    audit_checkpoint_seconds: float = Field(default=10.0, ge=0)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    require_https: bool = False
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # /docs, /redoc and /openapi.json are open by default (they describe the API, no data);
    # true makes all three answer 401 without a valid X-API-Key (any role).
    docs_require_key: bool = False

    # OAuth token lifecycle (runtime/token_manager.py). A resolve hands out an access token valid
    # for at least the margin; inside the stale window before the margin it answers at once and
    # starts one background refresh. The window is capped at half of (issue -> margin).
    oauth_refresh_margin_seconds: float = Field(default=60.0, ge=0, le=3600)
    oauth_stale_window_seconds: float = Field(default=300.0, ge=0, le=86400)
    # A refresh lease lapses after this many seconds, so a process killed mid-refresh does not
    # block the credential for longer (it must exceed the token request timeout).
    oauth_lease_seconds: float = Field(default=30.0, ge=0.1, le=600)
    oauth_request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Transient token-endpoint failures: attempts in all, first delay doubling up to the cap,
    # with jitter (Flowker: 5 attempts, 1/2/4/8 s).
    oauth_retry_attempts: int = Field(default=5, ge=1, le=20)
    oauth_retry_base_seconds: float = Field(default=1.0, ge=0, le=60)
    oauth_retry_max_seconds: float = Field(default=8.0, ge=0, le=600)
    # One circuit breaker per token endpoint (Flowker: open after 5 consecutive failures,
    # half-open after 30 s, one probe).
    oauth_breaker_failures: int = Field(default=5, ge=1, le=1000)
    oauth_breaker_reset_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Start-up loads of a task's credentials (runtime/startup_retry.py): attempts in all, the
    # first delay doubling, with jitter, giving up after the total (flowgen: 10, 1 s, ~15 min).
    startup_retry_attempts: int = Field(default=10, ge=1, le=100)
    startup_retry_base_seconds: float = Field(default=1.0, ge=0, le=300)
    startup_retry_max_total_seconds: float = Field(default=900.0, ge=0, le=86400)
    # The externally visible base URL of this service (behind a proxy): the OAuth callback is
    # {public_url}/api/oauth/callback. Empty: http://{host}:{port}.
    public_url: str | None = None
    # Where the OAuth callback sends the browser after success or failure (query: credential,
    # status); empty: the callback answers JSON.
    oauth_done_url: str | None = None

    # The web UI under /ui (flowcred.web): sessions end after this long without a request, and
    # this long after sign-in whatever happens.
    ui_enabled: bool = True
    ui_session_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    ui_session_max_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    # Connection tests (connectors/): extra refused and allowed destinations, as CIDRs or host
    # names ("metadata.internal", ".corp" for a whole domain); deny wins over allow, and allow
    # wins over the built-in refusal of link-local and cloud-metadata addresses.
    test_deny: Annotated[list[str], NoDecode] = Field(default_factory=list)
    test_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    test_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # `serve` re-tests every credential this often (0: never), so statuses stay true.
    retest_interval_seconds: float = Field(default=0.0, ge=0)
    # Secret sources and bindings (flowcred.sources, flowcred.bindings). ``sources``: the order
    # sources are asked in ("store,env,files,k8s,vault,aws"); empty: every configured source,
    # by priority. Each source is configured only when its own settings are set.
    sources: Annotated[list[str], NoDecode] = Field(default_factory=list)
    bindings_file: Path | None = None
    env_secrets_prefix: str = ""
    secrets_file: Path | None = None
    k8s_secrets_dir: Path | None = None
    vault_url: str | None = None
    vault_token: SecretStr | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_mount: str = "secret"
    vault_namespace: str | None = None
    aws_secrets_endpoint_url: str | None = None
    aws_secrets_region: str | None = None
    source_timeout_seconds: float = Field(default=5.0, gt=0, le=120)

    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=1, le=65535)
    log_level: str = "INFO"

    @field_validator(
        "cors_origins", "trusted_proxies", "test_deny", "test_allow", "sources", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # From the environment: "a,b" or a JSON list.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("must be a JSON list or comma-separated values") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("master_key")
    @classmethod
    def _refuse_placeholder_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value().strip()
        if not raw:
            return None
        for part in raw.split(","):
            part = part.strip()
            if part.lower() in _PLACEHOLDER_KEYS:
                raise ValueError("FLOWCRED_MASTER_KEY is a placeholder; generate a real key")
            try:
                decoded = base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "FLOWCRED_MASTER_KEY must be base64 of 32 bytes "
                    "(generate one with: python -c 'import os,base64;"
                    "print(base64.b64encode(os.urandom(32)).decode())')"
                ) from None
            if len(decoded) != 32:
                raise ValueError("FLOWCRED_MASTER_KEY must decode to exactly 32 bytes")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The database URL may hold a password: a repr (in a traceback, a log line, a debugger)
        # shows it masked. ``master_key`` is a SecretStr and masks itself.
        for name, value in super().__repr_args__():
            if name == "database_url" and value is not None:
                value = mask_url(value)
            yield name, value

    @property
    def display_database_url(self) -> str:
        """The database URL with its password masked: the only form to print or log."""
        return mask_url(self.resolved_database_url)

    @property
    def resolved_key_file(self) -> Path:
        """Where the key file lives: ``key_file`` if set, else ``<home>/master.key``."""
        return self.key_file if self.key_file is not None else self.home / "master.key"

    @property
    def resolved_checkpoint_path(self) -> Path:
        """Where the audit checkpoint lives: the setting, else ``<home>/audit.checkpoint``."""
        if self.audit_checkpoint_path is not None:
            return self.audit_checkpoint_path
        return self.home / "audit.checkpoint"

    @property
    def resolved_database_url(self) -> str:
        """``database_url`` if set, else the embedded SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'flowcred.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return not self.database_url


def load_settings(**overrides: object) -> FlowcredSettings:
    """Build settings from the environment plus explicit overrides.

    Raises :class:`~flowcred.errors.ConfigurationError` with the field names on bad values; the
    values themselves are never echoed (one of them may be a key).
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return FlowcredSettings(**overrides)  # type: ignore[arg-type]
    except SettingsError:
        raise ConfigurationError("invalid settings: a FLOWCRED_* value cannot be parsed") from None
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            parts.append(f"FLOWCRED_{loc.upper()}: {err['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(parts)) from None

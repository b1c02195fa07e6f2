"""The ``flowcred`` command.

Every :class:`~flowcred.errors.FlowcredError` is turned into one line on standard error and an
exit code: 2 for bad input (validation, unknown reference or type), 1 for failures (keys, database,
integrity, conflicts). Tracebacks are never shown: a local variable in one could hold a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from flowcred.broker import Broker
from flowcred.cli import apikeys, audit, bindings, credentials, keys
from flowcred.cli.output import console, err_console
from flowcred.cli.resolve import resolve
from flowcred.cli.session import open_cli_broker
from flowcred.cli.types import types
from flowcred.errors import CredentialNotFound, FieldProblem, FlowcredError, InvalidCredential

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def exit_code_for(exc: FlowcredError) -> int:
    return (
        EXIT_BAD_INPUT if isinstance(exc, InvalidCredential | CredentialNotFound) else EXIT_FAILURE
    )


class _ErrorReportingGroup(TyperGroup):
    """Reports flowcred errors as one line and an exit code, for every subcommand."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FlowcredError as exc:
            err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise SystemExit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", markup=False)
            raise SystemExit(130) from None


app = typer.Typer(
    cls=_ErrorReportingGroup,
    help="flowcred: credentials for workflow engines, encrypted, versioned and audited.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(credentials.app, name="credentials")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(apikeys.app, name="apikeys")
app.add_typer(bindings.app, name="bindings")
app.command("resolve")(resolve)
app.command("types")(types)


@app.command("init")
def init() -> None:
    """Create the key file, database (embedded default: ./.flowcred) and first admin API key."""
    with open_cli_broker() as broker:
        settings = broker.settings
        where = (
            str(settings.resolved_database_url)
            if not settings.is_embedded
            else str((settings.home / "flowcred.db").resolve())
        )
        console.print(f"database: {where}")
        console.print(f"key: {broker.key_source.description} (key version {broker.kek_version})")
        created = broker.ensure_admin_key()  # audited; None when keys exist or are configured
        if created is None:
            console.print("admin API key: one already exists (or keys are configured); none made")
        else:
            admin_key, path = created
            console.print(
                f"created the first admin API key (also in {path}, mode 0600):", markup=False
            )
            console.print(admin_key, markup=False, soft_wrap=True)
            err_console.print(f"warning: {apikeys.SHOWN_ONCE}", markup=False)


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8700).")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Private key for --tls-cert (PEM).")
    ] = None,
) -> None:
    """Run the HTTP service; the first run initialises ./.flowcred and prints an admin key."""
    import uvicorn

    from flowcred.api.app import create_app
    from flowcred.settings import load_settings

    if (tls_cert is None) != (tls_key is None):
        raise InvalidCredential(
            [FieldProblem("--tls-key", "give --tls-cert and --tls-key together")]
        )
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings(**overrides)
    # Open once before serving so a wrong key or bad database stops the process with a message
    # instead of a server that answers 500 to everything; this is also where the first admin
    # key of a fresh home is made and shown, once.
    with open_cli_broker() as broker:
        announce_admin_key(broker)
    # TLS: the server context Python builds refuses anything older than TLS 1.2 and prefers 1.3.
    uvicorn.run(
        create_app(settings, freeze_heap=True),
        host=settings.host,
        port=settings.port,
        log_level="info",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        # X-Forwarded-* (scheme, client address) count only from FLOWCRED_TRUSTED_PROXIES;
        # uvicorn's default would trust them from any local peer.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


def announce_admin_key(broker: Broker) -> None:
    """Create the first platform admin key of a fresh store and print it once (else nothing)."""
    created = broker.ensure_admin_key()
    if created is not None:
        key, path = created
        console.print(
            f"created the first admin API key (shown once; also in {path}, mode 0600):",
            markup=False,
        )
        console.print(key, markup=False)
        err_console.print(
            "warning: this API key is shown only once and cannot be shown again: store it now",
            markup=False,
        )


def run() -> None:
    """Console-script entry point."""
    app()

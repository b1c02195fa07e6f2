"""The ``flowcred`` command.

Every :class:`~flowcred.errors.FlowcredError` is turned into one line on standard error and an
exit code: 2 for bad input (validation, unknown reference or type), 1 for failures (keys, database,
integrity, conflicts). Tracebacks are never shown: a local variable in one could hold a secret.

Usage errors (click's) pass through the same funnel: one that would repeat what the user typed
where a secret may have been pasted — an unexpected extra argument, an unknown option or command
that is not shaped like a name, a value that is not a valid number or choice — says what is wrong
without it. Every line is passed through :func:`~flowcred.url_masking.mask_text` (no database
password) and shown with control characters escaped.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import BadParameter, NoSuchOption, UsageError
from typer.core import TyperGroup

from flowcred.broker import Broker
from flowcred.cli import apikeys, audit, bindings, credentials, keys, oauth
from flowcred.cli.output import console, err_console, visible
from flowcred.cli.resolve import resolve
from flowcred.cli.session import open_cli_broker
from flowcred.cli.types import types
from flowcred.cli.validate import validate
from flowcred.errors import (
    CredentialNotFound,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    InvalidInput,
)
from flowcred.url_masking import mask_text

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def exit_code_for(exc: FlowcredError) -> int:
    return (
        EXIT_BAD_INPUT if isinstance(exc, InvalidCredential | CredentialNotFound) else EXIT_FAILURE
    )


# What a plain InvalidCredential raised under a command group is about: the broker's and the
# stores' validation errors say "invalid credential", which is wrong for an audit filter or an
# API key's fields.
_SUBJECTS = {
    "audit": "audit query",
    "apikeys": "API key input",
    "keys": "key option",
    "serve": "serve option",
}

NOT_SHOWN = "not shown: it may be a secret"
# An option or command name as people type them; anything else is not repeated.
_NAME_SHAPED = re.compile(r"-{0,2}[A-Za-z][A-Za-z-]{0,30}")
# click's "<value> is not a valid integer." / "... is not one of ..." / "... does not match ...".
_VALUE_THEN = re.compile(r"^.*(?= is not | does not match )", re.DOTALL)


def error_line(exc: FlowcredError, command: str | None = None) -> str:
    """The one line shown for ``exc``: the right subject, no password, no raw control character."""
    message = str(exc)
    subject = _SUBJECTS.get(command or "")
    if type(exc) is InvalidCredential and exc.type_name is None and subject is not None:
        message = f"invalid {subject}: " + "; ".join(str(p) for p in exc.problems)
    return "error: " + visible(mask_text(message))


def hide_echoed_input(exc: UsageError) -> None:
    """Rewrite a usage error (typer's click) in place so it does not repeat what may be a secret.

    ``credentials add ... sk_live_123`` would otherwise print "Got unexpected extra argument(s)
    (sk_live_123)" to a terminal, a CI log or a screen share.
    """
    if isinstance(exc, NoSuchOption):
        if not _NAME_SHAPED.fullmatch(exc.option_name):
            exc.option_name = NOT_SHOWN
            exc.possibilities = None
            exc.message = f"no such option ({NOT_SHOWN})"
        return
    text = exc.message
    if isinstance(exc, BadParameter) or text.startswith("Value "):
        # "'sk_live_1' does not match the formats ...", "Value 'x' is not a valid ...": the
        # value goes, what was expected stays. Other messages (a missing file) name no value.
        exc.message = _VALUE_THEN.sub(f"the value ({NOT_SHOWN})", text, count=1)
    elif text.startswith("Got unexpected extra argument"):
        exc.message = f"unexpected extra argument ({NOT_SHOWN})"
    elif text.startswith("No such command"):
        name = text.partition("'")[2].rpartition("'")[0]
        if not _NAME_SHAPED.fullmatch(name):
            exc.message = f"no such command ({NOT_SHOWN})"
    else:
        exc.message = visible(mask_text(text))


class _ErrorReportingGroup(TyperGroup):
    """Reports flowcred errors as one line and an exit code, for every subcommand."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            hide_echoed_input(exc)
            raise

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            hide_echoed_input(exc)
            raise
        except FlowcredError as exc:
            err_console.print(error_line(exc, ctx.invoked_subcommand), markup=False, soft_wrap=True)
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
app.add_typer(oauth.app, name="oauth")
app.command("resolve")(resolve)
app.command("types")(types)
app.command("validate")(validate)


@app.command("init")
def init() -> None:
    """Create the key file, database (embedded default: ./.flowcred) and first admin API key."""
    with open_cli_broker() as broker:
        settings = broker.settings
        where = (
            settings.display_database_url  # the password masked
            if not settings.is_embedded
            else str((settings.home / "flowcred.db").resolve())
        )
        console.print(f"database: {where}", markup=False)
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

    from flowcred.api.access_log import uvicorn_log_config
    from flowcred.api.app import create_app
    from flowcred.settings import load_settings

    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput(
            [FieldProblem("--tls-key", "give --tls-cert and --tls-key together")],
            subject="TLS option",
        )
    if tls_cert is not None and tls_key is not None:
        check_tls_files(tls_cert, tls_key)
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
        console.print(f"database: {settings.display_database_url}", markup=False)
        announce_admin_key(broker)
    if settings.ui_enabled:
        scheme = "https" if tls_cert else "http"
        base = (settings.public_url or f"{scheme}://{settings.host}:{settings.port}").rstrip("/")
        console.print(
            f"web UI: {base}/ui/ (sign in with an admin, developer or viewer key)", markup=False
        )
    # TLS: the server context Python builds refuses anything older than TLS 1.2 and prefers 1.3.
    uvicorn.run(
        create_app(settings, freeze_heap=True),
        host=settings.host,
        port=settings.port,
        log_level="info",
        # The access log prints paths only: a query string becomes "?[redacted]".
        log_config=uvicorn_log_config(),
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        # X-Forwarded-* (scheme, client address) count only from FLOWCRED_TRUSTED_PROXIES;
        # uvicorn's default would trust them from any local peer.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


def check_tls_files(cert: Path, key: Path) -> None:
    """Load ``cert`` and ``key`` as uvicorn will, and say which file is wrong if one is.

    Done before the broker opens and uvicorn starts, so a typo in a path or a key in place of a
    certificate is a one-line :class:`~flowcred.errors.InvalidInput` (exit code 2), not a
    traceback from inside the server. An encrypted key is refused: there is nobody to type its
    pass phrase at a server's start.
    """

    def bad(option: str, path: Path, what: str) -> InvalidInput:
        return InvalidInput(
            [FieldProblem(option, f"{visible(str(path))}: {what}")], subject="TLS file"
        )

    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.exists():
            raise bad(option, path, "no such file")
        if not path.is_file():
            raise bad(option, path, "not a file")
        try:
            path.read_bytes()
        except OSError as exc:
            reason = "permission denied" if isinstance(exc, PermissionError) else "cannot read it"
            raise bad(option, path, reason) from None
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(cert))
    except (ssl.SSLError, ValueError):
        raise bad("--tls-cert", cert, "not a PEM certificate") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_pass_phrase)
    except (ssl.SSLError, ValueError) as exc:
        if "KEY_VALUES_MISMATCH" in str(getattr(exc, "reason", "")):
            raise bad("--tls-key", key, "does not belong to the certificate") from None
        raise bad(
            "--tls-key", key, "not a PEM private key (or an encrypted one; give it unencrypted)"
        ) from None


def _no_pass_phrase() -> bytes:
    # Called by OpenSSL only for an encrypted key: answer with an empty pass phrase, which fails
    # cleanly, instead of letting OpenSSL prompt on the terminal.
    return b""


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

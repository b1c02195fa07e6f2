"""``flowcred oauth``: authorize a credential of an OAuth type, show its grant's state.

``authorize REF`` prints the provider's authorization URL; the provider then redirects the
browser to the server's ``/api/oauth/callback``. With ``--listen`` the command is the redirect
target itself, like ``gcloud auth login`` or ``gh auth login``: a one-shot HTTP listener on
127.0.0.1 (``--port``, default a free one) waits up to ``--timeout`` seconds for the browser,
completes the authorization and prints the result. Either way the authorization is audited as
the OS user who ran the command.

``status REF`` prints the grant's state, expiry and scopes (never a token), from the token
manager (``broker.tokens.status``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer

from flowcred.broker import Broker
from flowcred.cli.output import console, err_console, iso_z, key_value_table, print_json
from flowcred.cli.session import open_cli_broker
from flowcred.errors import ConfigurationError, FlowcredError
from flowcred.references import DEFAULT_ENVIRONMENT, DEFAULT_TENANT, parse_ref
from flowcred.runtime.authorization import (
    AuthorizationFlow,
    AuthorizationRefused,
    CompletedAuthorization,
    default_flow,
)

app = typer.Typer(help="Authorize OAuth credentials and show their grants.", no_args_is_help=True)

LISTEN_PATH = "/callback"
MAX_LISTENER_REQUESTS = 20

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant of the credential.")]
EnvOpt = Annotated[
    str, typer.Option("--environment", "-e", help="Environment of a handle reference.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]


class NotAvailable(ConfigurationError):
    """A part of the OAuth machinery this build or store does not have."""


def make_flow(broker: Broker) -> AuthorizationFlow:
    """The flow the commands use (:func:`~flowcred.runtime.authorization.default_flow`)."""
    return default_flow(broker)


class _Listener:
    """A one-shot loopback HTTP server that receives the provider's redirect."""

    def __init__(self, port: int, complete: Callable[[dict[str, str]], str]) -> None:
        self.result: dict[str, str] | None = None
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != LISTEN_PATH or listener.result is not None:
                    self._answer(404, "Not found.")
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
                listener.result = query
                self._answer(200, complete(query))

            def _answer(self, status: int, text: str) -> None:
                body = (
                    f"<!doctype html><meta charset=utf-8><title>flowcred</title><p>{text}</p>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass  # the request line holds the code and the state

        self.server = HTTPServer(("127.0.0.1", port), Handler)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{LISTEN_PATH}"

    def wait(self, timeout: float) -> bool:
        """Serve requests until the callback arrived or ``timeout`` passed (bounded count)."""
        deadline = time.monotonic() + timeout
        for _ in range(MAX_LISTENER_REQUESTS):
            remaining = deadline - time.monotonic()
            if self.result is not None or remaining <= 0:
                break
            self.server.timeout = remaining
            self.server.handle_request()
        return self.result is not None

    def close(self) -> None:
        self.server.server_close()


def _completed_json(done: CompletedAuthorization) -> dict[str, Any]:
    return {
        "credentialId": done.credential_id,
        "tenantId": done.tenant,
        "status": "authorized",
        "scopes": list(done.scopes),
        "expiresAt": iso_z(done.expires_at),
        "hasRefreshToken": done.has_refresh_token,
    }


@app.command("authorize")
def authorize(
    ref: Annotated[str, typer.Argument(help="Credential id or handle.")],
    listen: Annotated[
        bool, typer.Option("--listen", help="Receive the redirect on a 127.0.0.1 listener.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Listener port (0: a free one).")
    ] = 0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, max=3600, help="Seconds to wait for the browser.")
    ] = 300.0,
    tenant: TenantOpt = DEFAULT_TENANT,
    environment: EnvOpt = DEFAULT_ENVIRONMENT,
    as_json: JsonOpt = False,
) -> None:
    """Print REF's authorization URL; with --listen, also wait for the browser and finish."""
    reference = parse_ref(ref)
    with open_cli_broker() as broker:
        flow = make_flow(broker)
        if not listen:
            url = flow.start(reference, caller=broker, tenant=tenant, environment=environment)
            if as_json:
                print_json({"authorizationUrl": url})
            else:
                console.print(url, markup=False, soft_wrap=True)
            return
        outcome: list[CompletedAuthorization | FlowcredError] = []

        def complete(query: dict[str, str]) -> str:
            try:
                outcome.append(
                    flow.complete(
                        query.get("state"),
                        query.get("code"),
                        query.get("error"),
                        source="127.0.0.1",
                    )
                )
            except FlowcredError as exc:
                outcome.append(exc)
                reason = getattr(exc, "reason", "failed")
                return f"Authorization failed ({reason}). You can close this window."
            return "Authorized. You can close this window and return to the terminal."

        try:
            listener = _Listener(port, complete)
        except OSError:
            raise NotAvailable(f"cannot listen on 127.0.0.1:{port}") from None
        try:
            url = flow.start(
                reference,
                caller=broker,
                tenant=tenant,
                environment=environment,
                redirect_uri=listener.redirect_uri,
            )
            err_console.print(
                f"Open this URL in a browser (waiting up to {timeout:g} s on "
                f"{listener.redirect_uri}):",
                markup=False,
            )
            # With --json, stdout carries only the result object.
            (err_console if as_json else console).print(url, markup=False, soft_wrap=True)
            got = listener.wait(timeout)
        finally:
            listener.close()
        if not got or not outcome:
            raise AuthorizationRefused("timeout", "no redirect from the browser in time")
        result = outcome[0]
        if isinstance(result, FlowcredError):
            raise result
        if as_json:
            print_json(_completed_json(result))
            return
        expiry = iso_z(result.expires_at) or "never"
        console.print(
            f"authorized credential {result.credential_id} (tenant {result.tenant}); "
            f"scopes: {' '.join(result.scopes) or '-'}; access token expires: {expiry}",
            markup=False,
        )


@app.command("status")
def status(
    ref: Annotated[str, typer.Argument(help="Credential id or handle.")],
    tenant: TenantOpt = DEFAULT_TENANT,
    environment: EnvOpt = DEFAULT_ENVIRONMENT,
    as_json: JsonOpt = False,
) -> None:
    """Show REF's grant: state, expiry, scopes, refresh token present (never a token)."""
    with open_cli_broker() as broker:
        tokens = getattr(broker, "tokens", None)
        if tokens is None:
            raise NotAvailable("token status needs the token manager, which this build lacks")
        record = broker.credentials.get(parse_ref(ref), tenant=tenant, environment=environment)
        grant = tokens.status(record.id, record.tenant)
    data = {
        "credentialId": record.id,
        "state": grant.state,
        "expiresAt": iso_z(grant.expires_at),
        "issuedAt": iso_z(grant.issued_at),
        "refreshedAt": iso_z(getattr(grant, "refreshed_at", None)),
        "scopes": list(grant.scopes),
        "hasRefreshToken": bool(grant.has_refresh_token),
        "lastError": grant.last_error,
    }
    if as_json:
        print_json(data)
        return
    console.print(
        key_value_table(
            (name, "-" if value in (None, []) else str(value)) for name, value in data.items()
        ),
        markup=False,
    )


__all__ = ["app", "make_flow"]

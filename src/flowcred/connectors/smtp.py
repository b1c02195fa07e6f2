"""SMTP: EHLO, STARTTLS where configured (or implicit TLS), then AUTH with smtplib.

A login is the proof; no mail is sent. ``use_tls`` opens TLS from the first byte (port 465);
otherwise ``starttls`` (default on) requires the server to offer STARTTLS and upgrades before
AUTH, so the password never crosses the network in the clear unless the config says so.
Certificates are checked against the system trust store (``SSL_CERT_FILE`` works). smtplib
picks the strongest mechanism the server offers of CRAM-MD5, PLAIN and LOGIN; the message
names the one used.
"""

from __future__ import annotations

import smtplib
import ssl

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure

_TRUE = ("true", "1", "yes", "on")
_SMTPLIB_PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")


def _flag(value: object, default: bool) -> bool:
    return default if value is None else str(value).lower() in _TRUE


@register("smtp")
class SmtpTest(ConnectionTest):
    """Log in and QUIT; nothing is sent."""

    live_types = frozenset({"smtp"})

    def check(self, target: TestTarget, timeout: float) -> str:
        host = str(target.config["host"])
        implicit = _flag(target.config.get("use_tls"), False)
        starttls = _flag(target.config.get("starttls"), True) and not implicit
        port = config_port(target.config.get("port"), 465 if implicit else 587)
        user = str(target.config.get("username") or target.config.get("from_address") or "")
        if not user:
            raise ConnectionTestError("no username (or from_address) to log in with")
        context = ssl.create_default_context()
        try:
            server = (
                smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
                if implicit
                else smtplib.SMTP(host, port, timeout=timeout)
            )
            with server:
                server.ehlo()
                if starttls:
                    if not server.has_extn("starttls"):
                        raise ConnectionTestError(
                            f"starttls is configured but {host}:{port} does not offer STARTTLS"
                        )
                    server.starttls(context=context)
                    server.ehlo()
                if not server.has_extn("auth"):
                    raise ConnectionTestError(f"{host}:{port} offers no AUTH on this connection")
                offered = server.esmtp_features.get("auth", "").upper().split()
                mechanism = next((m for m in _SMTPLIB_PREFERENCE if m in offered), "?")
                server.login(user, target.reveal("password") or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise auth_failed(user, f"the server answered {exc.smtp_code}") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionTestError(
                f"the TLS certificate of {host}:{port} is not trusted ({exc.verify_message})"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ConnectionTestError(
                f"{host}:{port} supports none of the AUTH mechanisms CRAM-MD5, PLAIN, LOGIN"
            ) from None
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error
            text = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            raise ConnectionTestError(
                f"the server refused the login with {exc.smtp_code} {text[:120]}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            shared = network_failure(exc, host, port, timeout)
            raise shared or ConnectionTestError(
                f"SMTP connection to {host}:{port} failed: {type(exc).__name__}"
            ) from None
        tls = "implicit TLS" if implicit else ("STARTTLS" if starttls else "no TLS")
        return f"logged in to {host}:{port} as '{user}' with AUTH {mechanism} ({tls})"

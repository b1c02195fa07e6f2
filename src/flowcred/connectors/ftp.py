"""FTP and explicit FTPS: ``USER``/``PASS`` with ftplib, then ``PWD``.

A 530 answer to ``PASS`` (or ``USER``) is a refused login. With ``tls`` the control connection
is upgraded with ``AUTH TLS`` before the password is sent (certificate checked against the
system trust store) and the data channel protected with ``PROT P``; a server that does not
offer AUTH TLS fails the test rather than receiving the password in the clear.
"""

from __future__ import annotations

import ftplib
import ssl

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure

_TRUE = ("true", "1", "yes", "on")


@register("ftp")
class FtpTest(ConnectionTest):
    """Log in, ask for the working directory, QUIT."""

    live_types = frozenset({"ftp"})

    def check(self, target: TestTarget, timeout: float) -> str:
        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 21)
        user = str(target.config.get("username") or "")
        tls = str(target.config.get("tls", False)).lower() in _TRUE
        client: ftplib.FTP = (
            ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=timeout)
            if tls
            else ftplib.FTP(timeout=timeout)
        )
        try:
            client.connect(host, port, timeout=timeout)
            if isinstance(client, ftplib.FTP_TLS):
                try:
                    client.auth()
                except ftplib.error_perm:
                    raise ConnectionTestError(
                        f"tls is configured but {host}:{port} does not offer AUTH TLS"
                    ) from None
            client.login(user, target.reveal("password") or "")
            if isinstance(client, ftplib.FTP_TLS):
                client.prot_p()
            where = client.pwd()
        except ftplib.error_perm as exc:
            if str(exc).startswith("530"):
                raise auth_failed(user, "the server answered 530") from None
            raise ConnectionTestError(f"the FTP server refused: {str(exc)[:120]}") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionTestError(
                f"the TLS certificate of {host}:{port} is not trusted ({exc.verify_message})"
            ) from None
        except (OSError, EOFError, ftplib.Error) as exc:
            shared = network_failure(exc, host, port, timeout)
            raise shared or ConnectionTestError(
                f"FTP connection to {host}:{port} failed: {type(exc).__name__}"
            ) from None
        finally:
            try:
                client.quit()
            except (OSError, EOFError, ftplib.Error, AttributeError):
                client.close()
        return (
            f"FTP login as '{user}' ok at {host}:{port} (in {where}; {'TLS' if tls else 'no TLS'})"
        )

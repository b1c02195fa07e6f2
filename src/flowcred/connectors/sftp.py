"""SFTP: an SSH login with asyncssh (password or private key), then open the SFTP subsystem.

Logging in is not enough: many servers accept SSH but have no SFTP subsystem for the user, so
the test starts the SFTP client and asks for the real path of ``.``. A private key is parsed
locally first, so a wrong passphrase is reported as such, not as a refused login. When
``host_key`` is set (an OpenSSH public key line, as in ``known_hosts``) the server must present
it; otherwise the host key is not checked, which the success message says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure, timed_out


@register("sftp")
class SftpTest(ConnectionTest):
    """SSH authentication plus ``realpath('.')`` over SFTP."""

    live_types = frozenset({"sftp"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import asyncssh

        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 22)
        user = str(target.config.get("username") or "")
        options: dict[str, Any] = {
            "username": user,
            "connect_timeout": timeout,
            "agent_path": None,  # only the credential under test, never the broker's agent
            "ignore_encrypted": False,
        }
        key_text, password = target.reveal("private_key"), target.reveal("password")
        if key_text:
            try:
                key = asyncssh.import_private_key(
                    key_text, target.reveal("private_key_passphrase") or None
                )
            except asyncssh.KeyImportError as exc:
                raise ConnectionTestError(f"the private key cannot be read: {exc}") from None
            options["client_keys"] = [key]
            options["password"] = password
            method = "key"
        else:
            options["client_keys"] = []
            options["password"] = password or ""
            method = "password"
        host_key = str(target.config.get("host_key") or "").strip()
        if host_key:
            try:
                options["known_hosts"] = ([asyncssh.import_public_key(host_key)], [], [])
            except asyncssh.KeyImportError:
                raise ConnectionTestError("host_key is not an OpenSSH public key") from None
        else:
            options["known_hosts"] = None
        try:
            where = asyncio.run(asyncio.wait_for(_login(host, port, options), timeout))
        except asyncssh.PermissionDenied:
            raise auth_failed(user, f"the server refused the {method}") from None
        except asyncssh.HostKeyNotVerifiable:
            raise ConnectionTestError(
                f"the host key of {host}:{port} does not match the configured host_key"
            ) from None
        except asyncssh.ChannelOpenError as exc:
            raise ConnectionTestError(f"the SFTP subsystem is not available: {exc}") from None
        except asyncssh.SFTPError as exc:
            raise ConnectionTestError(f"SFTP refused to resolve the home path: {exc}") from None
        except TimeoutError:
            raise timed_out(timeout, host, port) from None
        except (OSError, asyncssh.Error) as exc:
            shared = network_failure(exc, host, port, timeout)
            raise shared or ConnectionTestError(
                f"SSH connection to {host}:{port} failed: {type(exc).__name__}"
            ) from None
        checked = "host key checked" if host_key else "host key not checked"
        return f"SFTP login as '{user}' by {method} ok at {host}:{port} (home {where}; {checked})"


async def _login(host: str, port: int, options: dict[str, Any]) -> str:
    import asyncssh

    async with (
        asyncssh.connect(host, port, **options) as conn,
        conn.start_sftp_client() as sftp,
    ):
        return str(await sftp.realpath("."))

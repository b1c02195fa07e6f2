"""Private live servers for the NATS, MQTT, S3, SMTP, SFTP and FTP connection tests.

Each is a context manager parametrised by the login it accepts, so the per-family tests
(``test_live_<family>.py``) and the CLI end-to-end tests (``test_live_cli_more.py``) start the
same servers from one definition, each with its own canary password. Servers listen on free
loopback ports and are stopped on exit. The ones needing a binary (``nats-server``,
``mosquitto``) call ``require_service``: skipped locally, a failure under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import require_service
from tests.connectors.failure_endpoints import free_port, wait_for_port
from tests.tls_certificates import self_signed


@dataclass(frozen=True)
class NatsServers:
    users_port: int
    token_port: int
    nkey_seed: str


@dataclass(frozen=True)
class Moto:
    url: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class SmtpServers:
    tls_port: int
    plain_port: int
    ca_file: Path


@dataclass(frozen=True)
class SshServer:
    port: int
    host_key: str  # the server's public host key, OpenSSH line
    client_key: str  # the authorised private key, OpenSSH PEM
    encrypted_key: str  # the same key, PKCS#8 encrypted with the passphrase
    stranger_key: str  # a key the server does not know


def _start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
    except AssertionError:
        process.kill()
        process.wait(timeout=5)
        raise
    return process


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        process.wait(timeout=5)


@contextlib.contextmanager
def nats_servers(folder: Path, user: str, password: str, token: str) -> Iterator[NatsServers]:
    """Two ``nats-server`` processes: one with ``user``/``password`` and an NKey user, one with
    ``token`` (NATS allows only one of users or token per server)."""
    if shutil.which("nats-server") is None:
        require_service("nats-server binary not found (needed for servers with auth)")
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    users_port, token_port = free_port(), free_port()
    users = folder / "users.conf"
    users.write_text(
        f"listen: 127.0.0.1:{users_port}\n"
        "authorization { users = [\n"
        f'  {{user: {user}, password: "{password}"}},\n'
        f"  {{nkey: {public}}}\n"
        "] }\n"
    )
    token_conf = folder / "token.conf"
    token_conf.write_text(f'listen: 127.0.0.1:{token_port}\nauthorization {{ token: "{token}" }}\n')
    processes = [_start(["nats-server", "-c", str(users)], users_port)]
    try:
        processes.append(_start(["nats-server", "-c", str(token_conf)], token_port))
        yield NatsServers(users_port, token_port, seed.decode())
    finally:
        _stop(processes)


@contextlib.contextmanager
def mosquitto(folder: Path, user: str, password: str) -> Iterator[int]:
    """A private ``mosquitto`` with ``allow_anonymous false`` and a password file holding only
    ``user``; yields its port."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        require_service("mosquitto / mosquitto_passwd binaries not found")
    passwords = folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), user, password],
        check=True,
        capture_output=True,
        timeout=10,
    )
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\npersistence false\n"
        # Started as root, mosquitto drops to its own user, who cannot read pytest's tmp dir.
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    processes = [_start(["mosquitto", "-c", str(config)], port)]
    try:
        yield port
    finally:
        _stop(processes)


@contextlib.contextmanager
def moto_s3(bucket: str, user: str | None = None) -> Iterator[Moto]:
    """moto's S3 server with IAM checks on: ``user`` with an S3 policy, its access key and
    ``bucket`` are made while checks are off, then every request is verified (count 0).

    moto keeps its accounts in process-wide state that outlives a server, so the user's name
    is unique per call (two modules on one test worker would otherwise collide)."""
    user = user or f"alice-{secrets.token_hex(4)}"
    import boto3
    import moto.settings
    from moto.server import ThreadedMotoServer

    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    before = moto.settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        admin = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        yield Moto(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()


class _Sink:
    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        return "250 OK"


@contextlib.contextmanager
def smtp_servers(folder: Path, user: str, password: str) -> Iterator[SmtpServers]:
    """Two aiosmtpd servers accepting exactly ``user``/``password``: one offers STARTTLS (a
    certificate made here, ``ca_file``) and refuses AUTH before it; one has no TLS and offers
    only AUTH LOGIN. aiosmtpd warns (UserWarning) about AUTH without TLS: callers filter it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
    ) -> Any:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    cert, key = self_signed(folder, ca=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=True,
        tls_context=context,
        require_starttls=True,
    )
    plain = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN"],
    )
    tls.start()
    try:
        plain.start()
        try:
            yield SmtpServers(tls.port, plain.port, cert)
        finally:
            plain.stop()
    finally:
        tls.stop()


@contextlib.contextmanager
def ssh_server(root: Path, user: str, password: str, passphrase: str) -> Iterator[SshServer]:
    """An asyncssh server (own event loop thread) accepting ``user`` by ``password`` or by one
    authorised key, serving SFTP chrooted to ``root``."""
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    authorised = client_key.export_public_key().decode()

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, given: str) -> bool:
            return username == user and given == password

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: Any) -> bool:
            return username == user and key.export_public_key().decode() == authorised

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        return await asyncssh.create_server(
            Server,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        )

    async def close(listener: Any) -> None:
        listener.close()
        await listener.wait_closed()

    try:
        listener = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield SshServer(
                port=listener.sockets[0].getsockname()[1],
                host_key=host_key.export_public_key().decode().strip(),
                client_key=client_key.export_private_key().decode(),
                encrypted_key=client_key.export_private_key("pkcs8-pem", passphrase).decode(),
                stranger_key=stranger.export_private_key().decode(),
            )
        finally:
            asyncio.run_coroutine_threadsafe(close(listener), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def ftp_server(home: Path, user: str, password: str) -> Iterator[int]:
    """A pyftpdlib server (own thread) knowing ``user`` with ``password`` and home ``home``;
    failed logins answer at once. Yields its port. pyftpdlib imports asyncore, which warns
    (DeprecationWarning) on Python 3.11: callers filter it."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(home), perm="elr")

    class Handler(FTPHandler):  # a subclass, so the settings stay with this server
        pass

    Handler.authorizer = authorizer
    Handler.auth_failed_timeout = 0
    server = FTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"timeout": 0.05, "blocking": True}, daemon=True
    )
    thread.start()
    try:
        yield server.address[1]
    finally:
        server.close_all()
        thread.join(10)

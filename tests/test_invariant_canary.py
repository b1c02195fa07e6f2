"""DESIGN §5, invariant 1: no secret value appears anywhere except a resolve (or ``--reveal``).

A distinct canary (:func:`flowcred.testing.make_canary`) is planted in every secret field of one
credential of every catalog type that has secret fields (which covers every family). Values that
must match a pattern or a format carry the canary inside a valid value: ``xoxb-<canary>``, a PEM
block with the canary as its body, a service-account JSON whose ``private_key`` holds it.

Then a whole session runs through the Python API (on SQLite and on PostgreSQL) and through the
CLI, and every capture is scanned for every canary in every likely encoding: CLI stdout and
stderr, every log line (a root handler at DEBUG with a real formatter, plus caplog), the repr and
str of every returned object and raised error, the raw bytes of the SQLite file and its WAL (while
open and after closing) and every column of every table on PostgreSQL.

Each scan is paired with a positive control that must find canaries: revealed material,
``get_password``, ``resolve --reveal``, and a plaintext-by-design metadata canary in the database
file, so a scanner that silently looks at nothing cannot make these tests pass.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

import flowcred
from flowcred.broker import Broker
from flowcred.catalog import CredentialType, FieldSpec
from flowcred.cli.main import app
from flowcred.store.tables import secret_versions
from flowcred.testing import CanaryScanner

TENANT = "acme"
OTHER_TENANT = "globex"

# --- valid values for every catalog field ---------------------------------------------------


def literal_prefix(pattern: str | None) -> str:
    """The literal text an anchored pattern forces at the start of a value.

    Handles what catalog patterns use: escapes (``^SG\\.``), optional groups that can be skipped
    (``^mongodb(\\+srv)?://``) and alternations, of which the first branch is taken
    (``^(nats|tls)://``). Stops at the first other metacharacter. The caller validates the result,
    so a pattern this cannot read makes the test fail loudly rather than pass vacuously.
    """
    if not pattern or not pattern.startswith("^"):
        return ""
    out: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch == "(":
            depth, j = 1, i + 1
            while j < len(pattern) and depth:
                if pattern[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                j += 1
            group = pattern[i + 1 : j - 1].removeprefix("?:")
            if j < len(pattern) and pattern[j] in "?*":
                i = j + 1
                continue
            out.append(literal_prefix("^" + group.split("|")[0]))
            i = j + 1 if j < len(pattern) and pattern[j] == "+" else j
            continue
        if ch in ".[]{}*+?|$)":
            break
        out.append(ch)
        i += 1
    return "".join(out)


def pem_block(body: str) -> str:
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"


def service_account_json(canary: str) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "canary-project",
            "private_key_id": "0123456789abcdef",
            "private_key": pem_block(canary),
            "client_email": "svc@canary-project.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def secret_value_for(ctype: CredentialType, spec: FieldSpec, canary: str) -> Any:
    """A value of ``spec`` that passes its checks and contains ``canary``."""
    if spec.kind == "json":
        value: Any = {"secret": canary}
    elif spec.format == "service_account_json":
        value = service_account_json(canary)
    elif spec.format == "pem":
        value = pem_block(canary)
    else:
        value = literal_prefix(spec.pattern) + canary
    _, problem = spec.normalize(value)
    assert problem is None, (
        f"cannot build a valid {ctype.name}.{spec.name} around a canary ({problem}); "
        "teach tests/test_invariant_canary.py this field's format"
    )
    return value


def config_value_for(ctype: CredentialType, spec: FieldSpec) -> Any:
    """A valid, canary-free value for a non-secret field (config is plaintext by design)."""
    if spec.enum:
        value: Any = spec.default if spec.default is not None else spec.enum[0]
        if spec.kind == "list":
            value = [value] if isinstance(value, str) else value
    elif spec.kind == "integer":
        value = spec.default if spec.default is not None else max(spec.minimum or 1, 1)
    elif spec.kind == "boolean":
        value = True
    elif spec.kind == "json":
        value = {"note": "canary-free"}
    else:
        one = {
            "hostname": "db.example.com",
            "url": "https://auth.example.com/token",
            "email": "ops@example.com",
            "host_list": "broker1.example.com:9092",
        }.get(spec.format or "", "")
        if not one and spec.pattern:
            # A host-and-port pattern (NATS) takes the first; a plain-name pattern (an OAuth
            # provider's {shop} or {tenant}) the second.
            prefix = literal_prefix(spec.pattern)
            candidates = (prefix + "example.com:4222", prefix + "cfg")
            one = next((c for c in candidates if spec.normalize(c)[1] is None), candidates[0])
        elif not one:
            one = "cfg"
        value = [one] if spec.kind == "list" else one
    _, problem = spec.normalize(value)
    assert problem is None, f"cannot build a valid {ctype.name}.{spec.name} ({problem})"
    return value


def config_for(ctype: CredentialType) -> dict[str, Any]:
    """Required config fields and every config member of a ``one_of`` group."""
    wanted = {spec.name for spec in ctype.config_fields if spec.required}
    for group in ctype.one_of:
        wanted.update(name for name in group if not ctype.field(name).secret)
    return {
        spec.name: config_value_for(ctype, spec)
        for spec in ctype.config_fields
        if spec.name in wanted
    }


def as_cli_set(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def resolvable(types: list[CredentialType]) -> list[CredentialType]:
    """The types whose resolve returns their stored secrets (not OAuth types), and at least
    one of every family that has such types."""
    return [t for t in types if t.oauth is None]


def secret_types() -> list[CredentialType]:
    catalog = flowcred.default_catalog()
    types = [catalog.get(name) for name in catalog.names()]
    with_secrets = [t for t in types if t.secret_fields]
    # Every family must be represented, or a whole family of outputs would go unscanned.
    assert {t.family for t in with_secrets} == {t.family for t in types}
    return with_secrets


# Types the CLI session below refers to by name.
CLI_NAMED_TYPES = ("api_key", "basic_auth", "sendgrid", "slack", "twilio")


def secret_shape(ctype: CredentialType) -> tuple[Any, ...]:
    """What the CLI's output code can tell apart about a type: its family and category, how its
    secret is shaped (composite, each secret field's kind, format, pattern and requiredness),
    its request style, whether it has alternatives and whether it is an OAuth type."""
    return (
        ctype.family,
        ctype.category,
        ctype.is_composite,
        ctype.request.style,
        bool(ctype.one_of),
        ctype.oauth is not None,
        tuple((s.kind, s.format, s.pattern is not None, s.required) for s in ctype.secret_fields),
    )


def cli_types() -> list[CredentialType]:
    """One type of every secret shape, plus the types the session names.

    The CLI renders every type through the same code, so a second type of the same shape adds
    minutes (about a dozen in-process invocations each) and no new path; the Python API test
    still plants canaries in every type. Bounding the CLI session this way keeps its run time
    from growing with the catalog (150+ types since the connectors issue).
    """
    chosen: dict[tuple[Any, ...], CredentialType] = {}
    types = secret_types()
    for ctype in types:
        if ctype.name in CLI_NAMED_TYPES:
            chosen[(ctype.name,)] = ctype
    for ctype in types:
        chosen.setdefault(secret_shape(ctype), ctype)
    return sorted({t.name: t for t in chosen.values()}.values(), key=lambda t: t.name)


class Planted:
    """The canaries of one credential: field -> (label, canary, value stored in the field)."""

    def __init__(
        self, scanner: CanaryScanner, ctype: CredentialType, suffix: str, origin: str
    ) -> None:
        self.ctype = ctype
        self.fields: dict[str, tuple[str, str, Any]] = {}
        for spec in ctype.secret_fields:
            label = f"{origin}:{ctype.name}.{spec.name}{suffix}"
            canary = scanner.plant(label)
            self.fields[spec.name] = (label, canary, secret_value_for(ctype, spec, canary))

    @property
    def secret(self) -> dict[str, Any]:
        return {name: value for name, (_, _, value) in self.fields.items()}

    @property
    def labels(self) -> set[str]:
        return {label for label, _, _ in self.fields.values()}

    def secret_value(self) -> str:
        """The Flow Studio ``secretValue`` string (what the CLI reads from stdin)."""
        if self.ctype.is_composite:
            return json.dumps(self.secret)
        (value,) = self.secret.values()
        return value if isinstance(value, str) else json.dumps(value)


# --- captures ---------------------------------------------------------------------------------


class LogCapture:
    """A root handler at DEBUG with a real Formatter writing into a StringIO."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def root_log(caplog: pytest.LogCaptureFixture) -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(old_level)


def scan_logs(
    scanner: CanaryScanner, root_log: LogCapture, caplog: pytest.LogCaptureFixture
) -> None:
    scanner.scan_text("root log handler (DEBUG, formatted)", root_log.text)
    scanner.scan_text("caplog.text", caplog.text)
    for i, record in enumerate(caplog.records):
        scanner.scan_text(f"caplog record {i} message", record.getMessage())
        if record.exc_text:
            scanner.scan_text(f"caplog record {i} exc_text", record.exc_text)


def deliberate_leaks_are_redacted(
    scanner: CanaryScanner,
    root_log: LogCapture,
    caplog: pytest.LogCaptureFixture,
    values: list[str],
) -> None:
    """Log resolved secret values on purpose; the redaction filter must mask every one."""
    child = logging.getLogger("some.child")
    for value in values:
        child.warning("token=%s", value)
        child.info(f"f-string {value}")  # formatted before logging, on purpose
        try:
            raise RuntimeError(f"upstream rejected credential {value}")
        except RuntimeError:
            child.exception("call failed")
    # Positive control: the lines were written (masked), so the scan below looks at real output.
    assert root_log.text.count("token=***") >= len(values)
    assert "call failed" in root_log.text and "upstream rejected credential ***" in root_log.text
    assert "upstream rejected credential ***" in caplog.text


def table_dump(broker: Broker) -> tuple[str, bytes]:
    """Every column of every table: the repr of each row, and the raw bytes of binary columns."""
    texts: list[str] = []
    blobs: list[bytes] = []
    with broker.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                texts.append(f"{table}: {row!r} {tuple(str(v) for v in row)}")
                blobs.extend(bytes(v) for v in row if isinstance(v, bytes | memoryview))
                blobs.extend(str(v).encode() for v in row if not isinstance(v, bytes | memoryview))
    return "\n".join(texts), b"\n".join(blobs)


def sqlite_bytes(db_path: Path) -> bytes:
    parts = [db_path.read_bytes()]
    for suffix in ("-wal", "-journal"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            parts.append(side.read_bytes())
    return b"".join(parts)


# --- the Python API session -------------------------------------------------------------------


def test_no_canary_leaks_through_the_python_api(
    broker: Broker,
    database_url: str,
    root_log: LogCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scanner = CanaryScanner()
    control = CanaryScanner()  # plaintext-by-design metadata, to prove the database scan works
    name_canary = control.plant("control:credential-name")
    creds = broker.credentials
    provider = broker.provider(tenant=TENANT)
    scan = scanner.scan_object

    types = secret_types()
    planted: dict[str, Planted] = {}
    ids: dict[str, int] = {}
    for ctype in types:
        plants = Planted(scanner, ctype, "", "api")
        planted[ctype.name] = plants
        record = creds.create(
            name=f"{ctype.name} {name_canary}",
            type=ctype.name,
            tenant=TENANT,
            config=config_for(ctype),
            secret=plants.secret,
        )
        ids[ctype.name] = record.id
        scan(f"create {ctype.name}", record)
        scanner.scan_text(f"create {ctype.name} to_dict", json.dumps(record.to_dict()))
    no_auth = creds.create(name="open", type="no_auth", tenant=TENANT)
    scan("create no_auth", no_auth)
    other = creds.create(
        name="other tenant", type="api_key", tenant=OTHER_TENANT, secret={"api_key": "x" * 24}
    )

    # Reads of metadata.
    for ctype in types:
        cid = ids[ctype.name]
        scan(f"get {ctype.name}", creds.get(cid, tenant=TENANT))
        scan(f"get by handle {ctype.name}", creds.get(creds.get(cid).handle, tenant=TENANT))
        scan(f"versions {ctype.name}", creds.versions(cid))
    for family in sorted({t.family for t in types}):
        scan(f"list family={family}", creds.list(family=family))
    listed = creds.list()
    scan("list", listed)
    scanner.scan_text("list to_dict", json.dumps([r.to_dict() for r in listed]))
    scan("update config", creds.update(ids["postgres"], config={"database": "renamed"}))
    scan("update name", creds.update(ids["slack"], name="Renamed bot"))

    # Resolve: the only place secrets come out, wrapped in Secret unless revealed. OAuth types
    # resolve to access tokens from their provider, never to their stored secrets; their token
    # canaries are scanned against the loopback authorization server in
    # tests/runtime/test_token_manager.py (no test calls a real provider).
    revealed: list[str] = []
    for ctype in resolvable(types):
        cid = ids[ctype.name]
        material = provider.resolve(cid)
        assert material.version == 1
        scan(f"resolve {ctype.name}", material)
        scan(f"resolve {ctype.name} headers", dict(material.headers))
        scan(f"resolve {ctype.name} fields", dict(material.fields))
        for name, value in material.fields.items():
            scan(f"resolve {ctype.name} field {name}", value)
        scanner.scan_text(f"resolve {ctype.name} to_dict", json.dumps(material.to_dict()))
        password = provider.get_password(cid)
        full = json.dumps(material.to_dict(reveal=True)) + password
        revealed.append(full)
        # Positive control: the revealed material holds every canary of the credential.
        missing = {
            label for label in planted[ctype.name].labels if not scanner.contains(full, label)
        }
        assert not missing, f"revealed {ctype.name} material lacks canaries {missing}"
    async_material = asyncio.run(provider.aresolve(ids["api_key"]))
    scan("aresolve api_key", async_material)
    assert scanner.contains(
        asyncio.run(provider.aget_password(ids["api_key"])), "api:api_key.api_key"
    )

    # Rotate every credential to new canaries; v2 must be what resolve returns.
    rotated: dict[str, Planted] = {}
    for ctype in types:
        cid = ids[ctype.name]
        plants = Planted(scanner, ctype, ".v2", "api")
        rotated[ctype.name] = plants
        record = creds.rotate(cid, tenant=TENANT, secret=plants.secret)
        assert record.current_version == 2
        scan(f"rotate {ctype.name}", record)
        if ctype.oauth is None:
            password = provider.get_password(cid)
            assert all(scanner.contains(password, label) for label in plants.labels)
            assert not any(
                scanner.contains(password, label) for label in planted[ctype.name].labels
            )
        scan(f"versions after rotate {ctype.name}", creds.versions(cid))
    # secret_value form of a rotation, for a composite type.
    twilio = Planted(scanner, flowcred.default_catalog().get("twilio"), ".v3", "api")
    scan(
        "rotate twilio secret_value",
        creds.rotate(ids["twilio"], tenant=TENANT, secret_value=twilio.secret_value()),
    )
    assert all(scanner.contains(provider.get_password(ids["twilio"]), lb) for lb in twilio.labels)

    # Rollback to version 1 brings the v1 canaries back (and nothing else changes).
    scan("rollback slack", creds.rollback(ids["slack"], 1, tenant=TENANT))
    assert scanner.contains(provider.get_password(ids["slack"]), "api:slack.token")
    scan("versions after rollback", creds.versions(ids["slack"]))

    # Errors raised during the session, several carrying canaries in their input.
    errors: list[BaseException] = []

    def expect(exc_type: type[BaseException], call: Any) -> None:
        with pytest.raises(exc_type) as info:
            call()
        errors.append(info.value)

    bad = {
        label: scanner.plant(f"invalid:{label}")
        for label in (
            "slack-no-prefix",
            "secret-in-config",
            "port",
            "secret-as-config",
            "json-text",
            "rotate-pattern",
            "update-secret",
            "stale-rotate",
            "sendgrid",
            "unknown-type-secret",
        )
    }
    pg = flowcred.default_catalog().get("postgres")
    pg_config = config_for(pg)
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad slack", type="slack", tenant=TENANT, secret={"token": bad["slack-no-prefix"]}
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad pg",
            type="postgres",
            tenant=TENANT,
            config={**pg_config, "password": bad["secret-in-config"]},
            secret={"password": "p" * 20},
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad port",
            type="postgres",
            tenant=TENANT,
            config={**pg_config, "port": bad["port"]},
            secret={"password": "p" * 20},
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad side",
            type="postgres",
            tenant=TENANT,
            config=pg_config,
            secret={"password": "p" * 20, "username": bad["secret-as-config"]},
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad twilio",
            type="twilio",
            tenant=TENANT,
            secret_value='{"accountSid": "AC' + bad["json-text"] + '", authToken: oops',
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.rotate(ids["slack"], tenant=TENANT, secret={"token": bad["rotate-pattern"]}),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.update(
            ids["postgres"], tenant=TENANT, config={"password": bad["update-secret"]}
        ),
    )
    expect(
        flowcred.InvalidCredential,
        lambda: creds.create(
            name="bad sg", type="sendgrid", tenant=TENANT, secret_value=bad["sendgrid"]
        ),
    )
    expect(
        flowcred.UnknownCredentialType,
        lambda: creds.create(
            name="bad type",
            type="no_such_type",
            tenant=TENANT,
            secret={"token": bad["unknown-type-secret"]},
        ),
    )
    expect(
        flowcred.VersionConflict,
        lambda: creds.rotate(
            ids["api_key"],
            tenant=TENANT,
            expected_version=1,
            secret={"api_key": bad["stale-rotate"]},
        ),
    )
    expect(flowcred.CredentialNotFound, lambda: provider.get_password(999_999))
    expect(flowcred.CredentialNotFound, lambda: provider.resolve(other.id))
    expect(flowcred.CredentialNotFound, lambda: creds.get(other.id, tenant=TENANT))
    expect(flowcred.CredentialNotFound, lambda: provider.resolve("no-such-handle"))
    for i, error in enumerate(errors):
        scan(f"error {i} {type(error).__name__}", error)
        scanner.scan_text(f"error {i} args", repr(error.args))
        scanner.scan_text(f"error {i} attributes", repr(vars(error)))
        scanner.scan_text(f"error {i} traceback", "".join(traceback.format_exception(error)))
    # The stale rotation changed nothing.
    assert scanner.contains(provider.get_password(ids["api_key"]), "api:api_key.api_key.v2")

    # Delete one; it is gone, and its secret with it.
    creds.delete(ids["basic_auth"], tenant=TENANT)
    with pytest.raises(flowcred.CredentialNotFound) as gone:
        provider.get_password(ids["basic_auth"])
    scan("error after delete", gone.value)

    # Objects that hold a broker's state.
    scan("broker", broker)
    scan("provider", provider)
    scan("key source", broker.key_source)
    scan("settings", broker.settings)

    # Logs, including values logged on purpose after they were resolved.
    deliberate = [
        provider.get_password(ids["api_key"]),  # the bare canary (api_key has no pattern)
        provider.get_password(ids["slack"]),  # xoxb-<canary>
        provider.resolve(ids["bearer_token"]).reveal_headers()["Authorization"],
    ]
    deliberate_leaks_are_redacted(scanner, root_log, caplog, deliberate)
    scan_logs(scanner, root_log, caplog)

    # The audit trail, as a reader of it sees it (the table itself is in the dump below).
    exported = io.StringIO()
    count = broker.audit.export_jsonl(exported)
    assert count >= 3 * len(types), "control: every create, resolve and rotate is audited"
    scanner.scan_text("audit export (jsonl)", exported.getvalue())
    scan("audit list", broker.audit.list(limit=1000))
    scan("audit verify", broker.audit.verify())

    # Every file flowcred keeps in its home directory (key file, audit checkpoint, ...).
    home = Path(broker.settings.home)
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        scanner.scan_bytes(f"home file {path.name}", path.read_bytes())

    # The database: raw bytes on SQLite (open, then closed), every column on PostgreSQL.
    if broker.engine.dialect.name == "sqlite":
        db_path = Path(str(broker.engine.url.database))
        while_open = sqlite_bytes(db_path)
        scanner.scan_bytes("sqlite file + wal (open)", while_open)
        assert control.find_bytes(while_open), "control: metadata canary not seen in the db"
        dump, blobs = table_dump(broker)
        broker.close()
        closed = sqlite_bytes(db_path)
        scanner.scan_bytes("sqlite file + wal (closed)", closed)
        assert control.find_bytes(closed), "control: metadata canary not seen in the db"
    else:
        assert database_url.startswith("postgresql")
        dump, blobs = table_dump(broker)
        with broker.engine.connect() as conn:
            stored = conn.execute(select(secret_versions.c.version)).all()
        assert len(stored) >= 2 * len(types), "control: the dump must see every secret version"
    scanner.scan_text("table dump (repr of every row)", dump)
    scanner.scan_bytes("table dump (raw column bytes)", blobs)
    assert control.find(dump), "control: metadata canary not seen in the table dump"

    assert len(scanner.scanned) > 10 * len(types)
    scanner.assert_clean()
    # Positive control on the same scanner: what get_password returned does contain canaries.
    assert all(scanner.find(full) for full in revealed)


# --- the CLI session --------------------------------------------------------------------------


class Cli:
    """Runs ``flowcred`` in-process and scans every stdout and stderr."""

    def __init__(self, scanner: CanaryScanner) -> None:
        self.runner = CliRunner()
        self.scanner = scanner

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> str:
        result = self.runner.invoke(app, list(args), input=input)
        where = "flowcred " + " ".join(args)
        assert result.exit_code == code, (where, result.output, result.exception)
        # flowcred's own error path ends in SystemExit; any other exception is a crash.
        assert result.exception is None or isinstance(result.exception, SystemExit), where
        self.scanner.scan_text(f"{where} (stdout)", result.stdout)
        self.scanner.scan_text(f"{where} (stderr)", result.stderr)
        assert "Traceback" not in result.output
        return result.stdout

    def reveal(self, *args: str) -> str:
        """Run a command whose output is allowed to contain secrets; scanned by the caller."""
        result = self.runner.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output)
        return result.stdout


def test_no_canary_leaks_through_the_cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    root_log: LogCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "cli-home"
    monkeypatch.setenv("FLOWCRED_HOME", str(home))
    scanner = CanaryScanner()
    cli = Cli(scanner)
    types = cli_types()

    cli("init")
    handles: dict[str, str] = {}
    planted: dict[str, Planted] = {}
    for ctype in types:
        plants = Planted(scanner, ctype, "", "cli")
        planted[ctype.name] = plants
        sets: list[str] = []
        for key, value in config_for(ctype).items():
            sets += ["--set", f"{key}={as_cli_set(value)}"]
        out = cli(
            "credentials",
            "add",
            "--type",
            ctype.name,
            "--name",
            f"cli {ctype.name}",
            "--tenant",
            TENANT,
            *sets,
            "--secret-stdin",
            "--json",
            input=plants.secret_value() + "\n",
        )
        handles[ctype.name] = json.loads(out)["handle"]
    cli("credentials", "add", "--type", "no_auth", "--name", "open", "--tenant", TENANT)

    cli("credentials", "list")
    cli("credentials", "list", "--json")
    cli("credentials", "list", "--tenant", TENANT, "--family", "messaging")
    cli("types")
    cli("types", "--json")
    for ctype in types:
        handle = handles[ctype.name]
        cli("types", ctype.name)
        cli("credentials", "show", handle, "--tenant", TENANT)
        cli("credentials", "show", handle, "--tenant", TENANT, "--json")
        if ctype.oauth is not None:
            continue  # resolves through its provider (see the Python API test)
        out = cli("resolve", handle, "--tenant", TENANT)
        assert "[secure]" in out
        cli("resolve", handle, "--tenant", TENANT, "--json")
        # Positive control: --reveal shows every canary of the credential.
        revealed = cli.reveal("resolve", handle, "--tenant", TENANT, "--json", "--reveal")
        missing = {lb for lb in planted[ctype.name].labels if not scanner.contains(revealed, lb)}
        assert not missing, f"resolve --reveal of {ctype.name} lacks {missing}"

    # Rotate everything to new canaries through stdin, then roll one back.
    for ctype in types:
        handle = handles[ctype.name]
        plants = Planted(scanner, ctype, ".v2", "cli")
        cli(
            "credentials",
            "rotate",
            handle,
            "--tenant",
            TENANT,
            "--secret-stdin",
            input=plants.secret_value(),
        )
        cli("credentials", "show", handle, "--tenant", TENANT)
        if ctype.oauth is not None:
            continue
        cli("resolve", handle, "--tenant", TENANT)
        revealed = cli.reveal("resolve", handle, "--tenant", TENANT, "--json", "--reveal")
        assert all(scanner.contains(revealed, lb) for lb in plants.labels)
        assert not any(scanner.contains(revealed, lb) for lb in planted[ctype.name].labels)
    cli("credentials", "rollback", handles["slack"], "1", "--tenant", TENANT)
    cli("credentials", "rollback", handles["twilio"], "1", "--tenant", TENANT, "--json")
    table = cli.reveal("resolve", handles["api_key"], "--tenant", TENANT, "--reveal")
    assert scanner.contains(table, "cli:api_key.api_key.v2"), "control: table --reveal"
    cli("resolve", handles["slack"], "--tenant", TENANT)
    cli("credentials", "delete", handles["basic_auth"], "--tenant", TENANT, "--yes")
    cli("keys", "rotate")
    cli("keys", "status")
    out = cli("audit", "list", "--json", "--limit", "1000")
    assert len(json.loads(out)) >= 3 * len(types), "control: the CLI session is audited"
    cli("audit", "list", "--limit", "1000")
    cli("audit", "export")
    cli("audit", "verify")
    cli("resolve", handles["twilio"], "--tenant", TENANT)

    # Failing commands with canaries in their input: one line on stderr, never the input.
    bad = scanner.plant("cli:invalid:slack")
    cli(
        "credentials",
        "add",
        "--type",
        "slack",
        "--name",
        "bad",
        "--secret-stdin",
        input=bad,
        code=2,
    )
    bad_json = scanner.plant("cli:invalid:twilio-json")
    cli(
        "credentials",
        "add",
        "--type",
        "twilio",
        "--name",
        "bad twilio",
        "--secret-stdin",
        input='{"accountSid": "AC' + bad_json + '", broken',
        code=2,
    )
    bad_rotate = scanner.plant("cli:invalid:sendgrid-rotate")
    cli(
        "credentials",
        "rotate",
        handles["sendgrid"],
        "--tenant",
        TENANT,
        "--secret-stdin",
        input=bad_rotate,
        code=2,
    )
    bad_conflict = scanner.plant("cli:invalid:stale")
    cli(
        "credentials",
        "rotate",
        handles["api_key"],
        "--tenant",
        TENANT,
        "--secret-stdin",
        "--expected-version",
        "1",
        input=bad_conflict,
        code=1,
    )
    cli("resolve", "999999", code=2)
    cli("credentials", "show", handles["slack"], "--tenant", OTHER_TENANT, code=2)

    scan_logs(scanner, root_log, caplog)
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        scanner.scan_bytes(f"cli home file {path.name}", path.read_bytes())
    scanner.scan_bytes("cli sqlite file + wal", sqlite_bytes(home / "flowcred.db"))
    scanner.assert_clean()


# --- a secret typed where a field name goes ---------------------------------------------------


def test_a_secret_pasted_as_a_field_name_is_not_echoed(
    sqlite_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who pastes the token itself as the JSON key must not see it echoed back.

    ``{"xoxb-...": ""}`` or ``{"AC...": "..."}`` for Twilio are easy mistakes when a composite
    secret is typed by hand. The catalog means to report such keys "without being repeated"
    (catalog/schema.py), but real tokens look like field names (letters, digits, ``-``, ``_``),
    so the key is echoed into the InvalidCredential message, the CLI's stderr and any API 422.
    """
    scanner = CanaryScanner()
    as_key = scanner.plant("pasted-as-key")
    with pytest.raises(flowcred.InvalidCredential) as info:
        sqlite_broker.credentials.create(
            name="typo", type="twilio", secret_value=json.dumps({as_key: "x", "authToken": "y"})
        )
    # Control: the problem is still reported, against the secret as a whole.
    assert "accountSid" in str(info.value)
    scanner.scan_object("InvalidCredential for a pasted key (secret_value)", info.value)
    with pytest.raises(flowcred.InvalidCredential) as info2:
        sqlite_broker.credentials.create(name="typo2", type="slack", secret={as_key: "x"})
    scanner.scan_object("InvalidCredential for a pasted key (secret)", info2.value)

    monkeypatch.setenv("FLOWCRED_HOME", str(tmp_path / "cli-home"))
    cli = Cli(scanner)
    cli(
        "credentials", "add", "--type", "twilio", "--name", "typo", "--secret-stdin",
        input=json.dumps({as_key: "x"}), code=2,
    )  # fmt: skip
    scanner.assert_clean()

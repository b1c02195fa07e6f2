"""Shared by the validator tests: the examples copied to a tmp dir, seeded credentials, sources.

git keeps no file mode but the executable bit, so a checkout's credential files are 0644 and
``flowcred validate`` warns (FILE005) about them. The tests copy ``examples/`` to a tmp dir and
``chmod 600`` the credential files, as an operator would, before asserting a clean run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flowcred.broker import Broker
from flowcred.sources.chain import SourceChain
from flowcred.sources.env import EnvSource, variable_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLOWGEN = "flowgen/secure-webhook.yaml"
STUDIO = "flow_studio/order-notifications.json"
PROVIDER = "credential_provider/sales-sync.yaml"

# The secrets the Credential Provider example's bindings name.
PROVIDER_SECRETS = {
    "gcp_client_id": "1234-example.apps.googleusercontent.com",
    "gcp_client_secret": "example-client-secret",
    "gcp_refresh_token": "example-refresh-token",
    "reporting_api_token": "example-reporting-token",
}


def copy_examples(tmp_path: Path) -> Path:
    """``examples/`` copied under ``tmp_path``, credential files 0600; returns the copy's root."""
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root)
    for path in (root / "flowgen" / "credentials").glob("*.json"):
        path.chmod(0o600)
    return root


def seed_studio_credentials(broker: Broker, tenant: str = "default") -> dict[str, int]:
    """The credentials the Flow Studio example references: ids 1, 2, 3 in a fresh store."""
    twilio = broker.credentials.create(
        name="Orders SMS",
        type="twilio",
        tenant=tenant,
        secret={"accountSid": "AC" + "0" * 32, "authToken": "example-auth-token"},
    )
    slack = broker.credentials.create(
        name="Orders Slack", type="slack", tenant=tenant, secret_value="xoxb-example-0001"
    )
    sendgrid = broker.credentials.create(
        name="Orders mail",
        type="sendgrid",
        tenant=tenant,
        secret_value="SG.example-key-0000000.example-secret-00000000",
    )
    ids = {"twilio": twilio.id, "slack": slack.id, "sendgrid": sendgrid.id}
    assert list(ids.values()) == [1, 2, 3], ids  # the ids the example graph holds
    return ids


def example_sources(values: dict[str, str]) -> SourceChain:
    """A real source chain holding ``values`` (the environment source over a given mapping)."""
    environ = {variable_for(name): value for name, value in values.items()}
    return SourceChain([EnvSource(environ=environ)])


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")
